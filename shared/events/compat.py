"""Compatibility of two JSON Schemas of one event type and version.

Under one ``dataschemaversion`` old and new producers and consumers meet in both directions: a new consumer
reads old events (replays, the stream's history) and an old consumer reads new events (a rolling deploy). So
the only compatible change is **adding an optional property** (consumers ignore unknown fields). Everything else
is reported: a property removed, a new required property, a property made required or made optional, a type
changed (including nullability, array items, dictionary values, nested objects), the allowed values of an enum
or const changed (narrowed *or* widened: an old consumer refuses a new value), a format or a validation
constraint changed. Annotations (title, description, default, examples) are ignored.

``$ref`` is resolved into each schema's own ``$defs`` (or ``definitions``), recursively and cycle-safe.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]

_REFS = "x-compat-refs"  # private marker: which definitions a resolved node came from

# Keywords that restrict values (type and enum are handled apart); annotations are not listed on purpose.
_CONSTRAINTS = (
    "format",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minProperties",
    "maxProperties",
)


def incompatibilities(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every change from ``old_schema`` to ``new_schema`` that breaks a producer or consumer of either.

    Returns messages such as ``"data.authors[].share: type changed number -> string"``; an empty list means
    the new schema may keep the old version.
    """
    problems: list[str] = []
    _Comparer(old_schema, new_schema, problems).compare("data", old_schema, new_schema)
    return list(dict.fromkeys(problems))


class _Comparer:
    def __init__(self, old_root: Schema, new_root: Schema, problems: list[str]) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems = problems
        self.seen: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------------------------------- resolution

    @staticmethod
    def _resolve(root: Schema, node: Any, refs: list[str]) -> Schema:
        """Follow ``$ref`` (and a lone ``allOf``) to the schema it names; keep sibling keywords."""
        if node is True or node is None:
            return {}
        if node is False:
            return {"not": {}}
        current: Schema = dict(node)
        for _ in range(64):
            if "$ref" in current:
                ref = current.pop("$ref")
                refs.append(ref)
                target = _lookup(root, ref)
                merged = dict(target)
                merged.update({k: v for k, v in current.items() if k not in merged})
                current = merged
            elif isinstance(current.get("allOf"), list) and len(current["allOf"]) == 1:
                (only,) = current.pop("allOf")
                merged = dict(only)
                merged.update({k: v for k, v in current.items() if k not in merged})
                current = merged
            else:
                return current
        raise ValueError(f"$ref chain too deep near {refs[-1] if refs else '?'}")

    # ------------------------------------------------------------------------------------------- comparison

    def compare(self, path: str, old: Any, new: Any) -> None:
        old_refs: list[str] = []
        new_refs: list[str] = []
        old = self._resolve(self.old_root, old, old_refs)
        new = self._resolve(self.new_root, new, new_refs)
        if old_refs:
            old[_REFS] = "|".join(old_refs)
        if new_refs:
            new[_REFS] = "|".join(new_refs)

        old_variants = self._variants(self.old_root, old)
        new_variants = self._variants(self.new_root, new)
        old_kinds = {k for k, _ in old_variants}
        new_kinds = {k for k, _ in new_variants}
        if old_kinds != new_kinds:
            self.problems.append(f"{path}: type changed {_kinds(old_variants)} -> {_kinds(new_variants)}")
        new_by_kind = dict(new_variants)
        for kind, old_variant in old_variants:
            if kind in new_by_kind:
                where = f"{path}<{kind.removeprefix('object ')}>" if kind.startswith("object ") else path
                self._compare_same_kind(where, kind, old_variant, new_by_kind[kind])

    def _variants(self, root: Schema, node: Schema) -> list[tuple[str, Schema]]:
        """Split a schema into its alternatives, each keyed by what kind of JSON value it accepts."""
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                shared = {k: v for k, v in node.items() if k not in (key, "discriminator")}
                out: list[tuple[str, Schema]] = []
                for alternative in node[key]:
                    refs: list[str] = []
                    merged = {**shared, **self._resolve(root, alternative, refs)}
                    if refs:
                        merged[_REFS] = "|".join(refs)
                    out.extend(self._variants(root, merged))
                objects = [v for k, v in out if k == "object"]
                if len(objects) > 1:  # several models in one union: tell them apart by their titles
                    out = [(f"object {v.get('title', '?')}" if k == "object" else k, v) for k, v in out]
                return _unique_kinds(out)
        types = node.get("type")
        if "const" in node and types is None:
            types = _json_type(node["const"])
        if "enum" in node and types is None:
            found = sorted({_json_type(v) for v in node["enum"]})
            types = found if len(found) != 1 else found[0]
        if types is None:
            if "properties" in node or "additionalProperties" in node:
                types = "object"
            elif "items" in node or "prefixItems" in node:
                types = "array"
            else:
                return [("any", node)]
        if isinstance(types, str):
            types = [types]
        out = []
        for t in types:
            variant = dict(node)
            variant["type"] = t
            out.append((t, variant))
        return _unique_kinds(out)

    def _compare_same_kind(self, path: str, kind: str, old: Schema, new: Schema) -> None:
        old_values = _allowed_values(old)
        new_values = _allowed_values(new)
        if old_values != new_values:
            if old_values is None or new_values is None:
                before = "any value" if old_values is None else _values(old_values)
                after = "any value" if new_values is None else _values(new_values)
                self.problems.append(f"{path}: allowed values changed {before} -> {after}")
            else:
                removed = old_values - new_values
                added = new_values - old_values
                if removed:
                    self.problems.append(f"{path}: enum narrowed, no longer allows {_values(removed)}")
                if added:
                    self.problems.append(
                        f"{path}: enum widened, now allows {_values(added)} (old consumers refuse them)"
                    )
        for keyword in _CONSTRAINTS:
            if old.get(keyword) != new.get(keyword):
                self.problems.append(
                    f"{path}: {keyword} changed {_show(old.get(keyword))} -> {_show(new.get(keyword))}"
                )
        if kind.startswith("object"):
            self._compare_objects(path, old, new)
        elif kind == "array":
            self._compare_arrays(path, old, new)

    def _compare_objects(self, path: str, old: Schema, new: Schema) -> None:
        if _REFS in old and _REFS in new:
            # each pair of definitions is compared once: ends recursion in self-referencing models
            key = (old[_REFS], new[_REFS])
            if key in self.seen:
                return
            self.seen.add(key)
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", []))
        new_required = set(new.get("required", []))
        for name in old_props:
            if name not in new_props:
                self.problems.append(f"{path}.{name}: removed")
        for name, new_prop in new_props.items():
            if name not in old_props:
                if name in new_required:
                    self.problems.append(f"{path}.{name}: new required property")
                elif old.get("additionalProperties") is False:
                    self.problems.append(
                        f"{path}.{name}: added to an object that refuses unknown properties "
                        "(additionalProperties: false)"
                    )
                continue
            if name in new_required and name not in old_required:
                self.problems.append(f"{path}.{name}: made required")
            elif name in old_required and name not in new_required:
                self.problems.append(f"{path}.{name}: made optional (old consumers require it)")
            self.compare(f"{path}.{name}", old_props[name], new_prop)
        for name in sorted(new_required - set(new_props) - old_required):
            self.problems.append(f"{path}.{name}: new required property")
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if isinstance(old_extra, dict) and isinstance(new_extra, dict):
            self.compare(f"{path}.<key>", old_extra, new_extra)
        elif old_extra != new_extra:
            self.problems.append(
                f"{path}: additionalProperties changed {_show(old_extra)} -> {_show(new_extra)}"
            )

    def _compare_arrays(self, path: str, old: Schema, new: Schema) -> None:
        old_prefix = old.get("prefixItems", [])
        new_prefix = new.get("prefixItems", [])
        if len(old_prefix) != len(new_prefix):
            self.problems.append(f"{path}: tuple length changed {len(old_prefix)} -> {len(new_prefix)}")
        for i, (o, n) in enumerate(zip(old_prefix, new_prefix, strict=False)):
            self.compare(f"{path}[{i}]", o, n)
        old_items = old.get("items")
        new_items = new.get("items")
        if old_items is None and new_items is None:
            return
        if (
            isinstance(old_items, bool)
            or isinstance(new_items, bool)
            or old_items is None
            or new_items is None
        ):
            if old_items != new_items:
                self.problems.append(f"{path}[]: items changed {_show(old_items)} -> {_show(new_items)}")
            return
        self.compare(f"{path}[]", old_items, new_items)


def _lookup(root: Schema, ref: str) -> Schema:
    if not ref.startswith("#"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise ValueError(f"unresolvable $ref {ref!r}") from None
    if not isinstance(node, dict):
        raise TypeError(f"$ref {ref!r} does not name a schema")
    return node


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _allowed_values(node: Schema) -> frozenset[str] | None:
    if "const" in node:
        values = [node["const"]]
    elif "enum" in node:
        values = list(node["enum"])
    else:
        return None
    # compare JSON encodings so 1 and True, 1 and 1.0 stay distinct only where JSON distinguishes them
    return frozenset(
        json.dumps(v, sort_keys=True) for v in values if _json_type(v) == node.get("type", _json_type(v))
    )


def _unique_kinds(variants: list[tuple[str, Schema]]) -> list[tuple[str, Schema]]:
    seen: dict[str, int] = {}
    out: list[tuple[str, Schema]] = []
    for kind, schema in variants:
        n = seen.get(kind, 0)
        seen[kind] = n + 1
        out.append((kind if n == 0 else f"{kind} #{n + 1}", schema))
    return out


def _kinds(variants: list[tuple[str, Schema]]) -> str:
    return "|".join(sorted(k for k, _ in variants)) or "nothing"


def _values(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _show(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return repr(value)

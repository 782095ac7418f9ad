"""The committed JSON Schemas of the event catalogue: ``shared/events/schemas/<type>.v<version>.json``.

``python -m shared.events.schemas`` rewrites them from the models. It refuses to overwrite a committed schema
with an incompatible one (that change needs a new version, see ``shared.events.catalogue``) unless
``--allow-incompatible`` is given.

A schema describes what a consumer accepts through ``parse_data``: unknown properties are ignored at every
depth, so ``additionalProperties: false`` (emitted for the strict directory and edition documents) is left out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from shared.events.catalogue import VERSIONS, EventType
from shared.events.compat import incompatibilities

SCHEMA_DIR = Path(__file__).parent / "schemas"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_filename(type: str, version: int) -> str:
    return f"{type}.v{version}.json"


def data_schema(spec: EventType) -> dict[str, Any]:
    """The JSON Schema of one catalogue entry's ``data``, as committed."""
    schema: dict[str, Any] = _without_closed_objects(spec.data.model_json_schema(mode="validation"))
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = f"urn:hoithi:event:{spec.type}:v{spec.version}"
    about = f"{spec.summary} CloudEvent subject: {spec.subject}. Producer: {spec.producer}."
    schema["description"] = f"{about}\n\n{schema['description']}" if schema.get("description") else about
    return schema


def render(schema: dict[str, Any]) -> str:
    """The committed text of a schema: sorted keys, indent 2, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path = SCHEMA_DIR, *, allow_incompatible: bool = False) -> list[Path]:
    """Write the schema of every known (type, version) into ``directory``; returns every path written.

    Raises ``ValueError`` listing the problems if an existing file would change incompatibly, unless
    ``allow_incompatible``; nothing is written then.
    """
    directory = Path(directory)
    planned: list[tuple[Path, str]] = []
    problems: list[str] = []
    for (type_, version), spec in sorted(VERSIONS.items()):
        path = directory / schema_filename(type_, version)
        schema = data_schema(spec)
        if path.exists() and not allow_incompatible:
            committed = json.loads(path.read_text(encoding="utf-8"))
            problems += [f"{type_} v{version}: {p}" for p in incompatibilities(committed, schema)]
        planned.append((path, render(schema)))
    if problems:
        raise ValueError(
            "incompatible change under an existing dataschemaversion (add a new version instead):\n  "
            + "\n  ".join(problems)
        )
    directory.mkdir(parents=True, exist_ok=True)
    for path, text in planned:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return [path for path, _ in planned]


def _without_closed_objects(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _without_closed_objects(v)
            for k, v in node.items()
            if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_without_closed_objects(v) for v in node]
    return node


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shared.events.schemas", description=__doc__.split("\n")[0]
    )
    parser.add_argument("directory", nargs="?", type=Path, default=SCHEMA_DIR)
    parser.add_argument("--allow-incompatible", action="store_true")
    args = parser.parse_args(argv)
    try:
        paths = write_schemas(args.directory, allow_incompatible=args.allow_incompatible)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 1
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

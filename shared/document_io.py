"""Reading and writing the documents: YAML (or JSON) files into the models and back, and their JSON Schemas.

Run ``python -m shared.document_io [DIR]`` (or ``python -m shared.documents [DIR]``) to (re)write the JSON
Schemas of both documents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
)

from shared.directory import Directory
from shared.edition import Edition

SCHEMA_DIR = Path(__file__).parent / "schemas" / "documents"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


# ---------------------------------------------------------------------------------------------- loading / dumping


class _Loader(yaml.SafeLoader):
    """SafeLoader without implicit timestamps: dates stay strings and the models parse them (keeping tz)."""


class _Dumper(yaml.SafeDumper):
    pass


for _cls in (_Loader, _Dumper):
    _cls.yaml_implicit_resolvers = {
        k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
        for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }


class YamlRefused(yaml.YAMLError):
    """A YAML document refused before it is built: too many aliases, or too large once they are expanded (the
    "billion laughs"). ``line`` is 1-based."""

    def __init__(self, en: str, vi: str, line: int) -> None:
        super().__init__(f"line {line}: {en}")
        self.en, self.vi, self.line = en, vi, line


class _BoundedLoader(_Loader):
    """``_Loader`` that counts aliases while composing, and the nodes they stand for, and stops at the limits."""

    max_aliases = 100
    max_expanded = 100_000

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0
        self._expanded = 0
        self._sizes: dict[int, int] = {}

    def _size(self, node: yaml.Node) -> int:
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, yaml.SequenceNode):
            size += sum(self._size(n) for n in node.value)
        elif isinstance(node, yaml.MappingNode):
            size += sum(self._size(k) + self._size(v) for k, v in node.value)
        self._sizes[id(node)] = size
        return size

    def compose_node(self, parent: Any, index: Any) -> Any:
        if not self.check_event(yaml.AliasEvent):
            return super().compose_node(parent, index)
        line = self.peek_event().start_mark.line + 1
        self._aliases += 1
        if self._aliases > self.max_aliases:
            raise YamlRefused(
                f"more than {self.max_aliases} aliases (*name); write the values out.",
                f"quá {self.max_aliases} tham chiếu (*tên); hãy viết đầy đủ giá trị.",
                line,
            )
        node = super().compose_node(parent, index)
        self._expanded += self._size(node)
        if self._expanded > self.max_expanded:
            raise YamlRefused(
                f"the aliases expand to more than {self.max_expanded} values.",
                f"các tham chiếu (*tên) mở rộng thành quá {self.max_expanded} giá trị.",
                line,
            )
        return node


def load_yaml(text: str | bytes, *, max_aliases: int = 100, max_expanded: int = 100_000) -> Any:
    """Untrusted YAML into plain data (safe tags only, dates kept as strings); raises ``YamlRefused`` for a
    document with more than ``max_aliases`` aliases or whose aliases stand for more than ``max_expanded``
    nodes, before anything is built. CPU-bound on a large document: call it off the event loop."""
    loader = _BoundedLoader(text)
    loader.max_aliases, loader.max_expanded = max_aliases, max_expanded
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


M = TypeVar("M", bound=BaseModel)


def load_document_data(path: str | Path) -> Any:
    """Read a YAML (.yaml/.yml, default) or JSON (.json) file into plain data."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() == ".json":
        return json.loads(text)
    return load_yaml(text)


def load_directory(path: str | Path) -> Directory:
    return Directory.model_validate(load_document_data(path))


def load_edition(path: str | Path) -> Edition:
    return Edition.model_validate(load_document_data(path))


def dump_yaml(model: BaseModel) -> str:
    """YAML of a document that loads back into an equal model (durations and dates kept as written)."""
    data = model.model_dump(mode="json", by_alias=True, exclude_none=True)
    return yaml.dump(data, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=110)


# ---------------------------------------------------------------------------------------------- JSON Schema


def document_schemas() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, model in (("directory", Directory), ("edition", Edition)):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        out[f"{name}.schema.json"] = {"$schema": JSON_SCHEMA_DIALECT, **schema}
    return out


def write_document_schemas(directory: str | Path = SCHEMA_DIR) -> list[Path]:
    """Write directory.schema.json and edition.schema.json into ``directory``; returns the paths written."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in document_schemas().items():
        path = target / filename
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # python -m shared.document_io [DIR]
    for written_path in write_document_schemas(sys.argv[1] if len(sys.argv) > 1 else SCHEMA_DIR):
        print(written_path)

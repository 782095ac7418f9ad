"""The parts of the READMEs that the code already knows, generated so they cannot drift.

The main README's table of the settings every process shares comes from ``shared.settings.Settings``; its
diagram (Mermaid) of the services and the events between them, and its event table, come from
``shared/streams.py`` (who consumes what: the durable consumers' filters) and the catalogue (who produces
what, and what it means). Each service's README has the same outline — what it owns, events in and out, HTTP
routes, settings, CLI — and the last four are generated from the consumer filters, the catalogue, the service's
OpenAPI document, its settings class and its commands. Prose stays hand-written around them.

A generated part sits between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``; ``python -m
shared.readme`` rewrites every one in place, and a test fails when a README differs from what this writes.
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from shared.events.catalogue import CATALOGUE, EventType
from shared.settings import SERVICES, Settings, load, registry, service_settings
from shared.streams import CONSUMERS, ConsumerSpec

ROOT = Path(__file__).resolve().parent.parent
MAIN_README = ROOT / "README.md"
# The outline every service README follows, in this order.
SERVICE_OUTLINE: tuple[str, ...] = (
    "## What it owns",
    "## Events in and out",
    "## HTTP routes",
    "## Settings",
    "## CLI",
)

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.DOTALL
)
_EVERY_CONSUMER = "any"  # the catalogue's producer of deadletter.recorded


# ------------------------------------------------------------------------------------------------ the facts


def consumers_of_type() -> dict[str, list[str]]:
    """Event type → the services whose durable consumers are filtered on it (registry order)."""
    found: dict[str, set[str]] = defaultdict(set)
    for spec in CONSUMERS:
        for t in spec.types:
            found[t].add(spec.service)
    return {t: [s for s in SERVICES if s in found.get(t, set())] for t in CATALOGUE}


def flows() -> dict[tuple[str, str], list[str]]:
    """(producer, consumer) → the event types that travel between them (catalogue order)."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t, consumers in consumers_of_type().items():
        producer = CATALOGUE[t].producer
        if producer == _EVERY_CONSUMER:
            continue
        for c in consumers or ["audit"]:
            out[(producer, c)].append(t)
    return dict(out)


def _short(types: list[str], producer: str) -> list[str]:
    """``edition.*`` where every type of a family the producer emits travels on the edge; else each type."""
    by_family: dict[str, list[str]] = defaultdict(list)
    for t in types:
        by_family[t.split(".")[0]].append(t)
    out = []
    for family, members in by_family.items():
        every = [t for t, e in CATALOGUE.items() if t.split(".")[0] == family and e.producer == producer]
        out += [f"{family}.*"] if len(members) > 1 and members == every else members
    return out


# ------------------------------------------------------------------------------------------------ main README


def mermaid_diagram() -> str:
    lines = ["```mermaid", "flowchart LR"]
    for s in SERVICES:
        lines.append(f"  {s}[{s}]")
    lines.append("  audit[(stream only: audit)]")
    for (producer, consumer), types in flows().items():
        label = "<br/>".join(_short(types, producer))
        arrow = "-.->" if consumer == "audit" else "-->"
        lines.append(f'  {producer} {arrow}|"{label}"| {consumer}')
    lines.append("```")
    return "\n".join(lines) + "\n"


def _producer(e: EventType) -> str:
    return "every consumer" if e.producer == _EVERY_CONSUMER else e.producer


def event_table() -> str:
    rows = ["| type | producer | consumed by | means |", "|---|---|---|---|"]
    for t, consumers in consumers_of_type().items():
        e = CATALOGUE[t]
        if e.producer == _EVERY_CONSUMER:
            who = "ops (`hoithi deadletters`)"
        else:
            who = ", ".join(consumers) or "(stream only: audit)"
        rows.append(f"| `{t}` v{e.version} | {_producer(e)} | {who} | {e.summary} |")
    return "\n".join(rows) + "\n"


def shared_settings_table() -> str:
    """Every field of ``shared.settings.Settings``, as the environment variable that sets it."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field, info in Settings.model_fields.items():
        default: Any = info.default
        if info.default_factory is not None or default is PydanticUndefined:
            shown = "(see meaning)"
        elif field == "jwt_secret":
            shown = "(public, development only)"
        else:
            shown = "" if default is None else f"`{default}`"
        rows.append(f"| `HOITHI_{field.upper()}` | {shown} | {info.description or ''} |")
    return "\n".join(rows) + "\n"


def main_sections() -> dict[str, str]:
    return {
        "settings": shared_settings_table(),
        "event-diagram": mermaid_diagram(),
        "event-table": event_table(),
    }


# ------------------------------------------------------------------------------------------------ service READMEs


def events_in_out(name: str) -> str:
    lines = ["**In** (durable consumers, declared in `shared/streams.py`):", ""]
    specs: list[ConsumerSpec] = [c for c in CONSUMERS if c.service == name]
    for spec in specs:
        lines.append(f"- `{spec.durable}`: " + ", ".join(f"`{t}`" for t in spec.types))
    if not specs:
        lines.append("- none")
    lines += ["", "**Out** (through its outbox; catalogue: `shared/events/catalogue.py`):", ""]
    consumers = consumers_of_type()
    produced = [e for e in CATALOGUE.values() if e.producer == name]
    for e in produced:
        to = ", ".join(consumers[e.type]) or "stream only (audit)"
        lines.append(f"- `{e.type}` v{e.version} → {to}: {e.summary}")
    if not produced:
        lines.append("- none")
    lines.append("- `deadletter.recorded` → ops, for a fact it could not apply")
    return "\n".join(lines) + "\n"


def _one_line(text: str) -> str:
    first = text.strip().split("\n\n")[0]
    return " ".join(first.split()).replace("|", "\\|")


def http_routes(name: str) -> str:
    app = load(registry()[name].app)()
    rows = [
        (
            "Conventions (tenant and edition in the path, tokens, `Idempotency-Key`, problem details in English "
            "and Vietnamese): the main README's HTTP section. Interactive documentation: `/docs`; events: "
            "`/asyncapi`."
        ),
        "",
        "| method | path | what |",
        "|---|---|---|",
    ]
    for path, operations in app.openapi()["paths"].items():
        for method, op in operations.items():
            what = _one_line(op.get("description") or op.get("summary") or "")
            rows.append(f"| {method.upper()} | `{path}` | {what} |")
    return "\n".join(rows) + "\n"


def settings_table(name: str) -> str:
    own = type(service_settings(name))
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field, info in own.model_fields.items():
        if field == "name":
            continue
        default: Any = info.default
        if field == "database_url":
            default = f"sqlite+aiosqlite:///.hoithi/{name}.db"
        elif field == "port":
            default = registry()[name].port
        shown = "" if default is None else f"`{default}`"
        rows.append(f"| `HOITHI_{name.upper()}_{field.upper()}` | {shown} | {info.description or ''} |")
    return (
        "\n".join(rows)
        + "\n\nAnd the settings every process shares (`HOITHI_…`: NATS, streams, clock, auth, logging): "
        + "`shared/settings.py`.\n"
    )


def cli_commands(name: str) -> str:
    import typer
    import typer.main

    entry = registry()[name]
    module = load(entry.cli) if entry.cli else None
    lines = []
    for command, sub in (getattr(module, "commands", {}) if module else {}).items():
        if isinstance(sub, typer.Typer):
            group = typer.main.get_command(sub)
            for sub_name, cmd in sorted(getattr(group, "commands", {}).items()):
                lines.append(f"- `hoithi {command} {sub_name}`: {_one_line(cmd.help or '')}")
        else:
            lines.append(f"- `hoithi {command}`: {_one_line(sub.__doc__ or '')}")
    lines.append(
        f"- `hoithi serve {name}`, `hoithi migrate {name}`: run it, bring its database to the latest schema"
    )
    return "\n".join(lines) + "\n"


def service_sections(name: str) -> dict[str, str]:
    return {
        "events": events_in_out(name),
        "routes": http_routes(name),
        "settings": settings_table(name),
        "cli": cli_commands(name),
    }


def service_readme(name: str) -> Path:
    return Path(registry()[name].migrations).parent / "README.md"


# ------------------------------------------------------------------------------------------------ rewriting


def render(text: str, sections: dict[str, str]) -> str:
    """``text`` with every generated block replaced by its section (a block with no section is kept)."""

    def replace(m: re.Match[str]) -> str:
        body = sections.get(m["name"], m["body"])
        return f"{m.group(1)}{body}{m.group(4)}"

    return _BLOCK.sub(replace, text)


def blocks(text: str) -> list[str]:
    return [m["name"] for m in _BLOCK.finditer(text)]


def every_readme() -> dict[Path, dict[str, str]]:
    out = {MAIN_README: main_sections()}
    for name in SERVICES:
        out[service_readme(name)] = service_sections(name)
    return out


def main() -> int:
    for path, sections in every_readme().items():
        text = path.read_text(encoding="utf-8")
        new = render(text, sections)
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The AsyncAPI 3.0 document of the event catalogue, and a small self-contained HTML page of it.

One channel per event type (address ``<prefix>.{tenant}.<type>``), one message per accepted
``dataschemaversion`` (a CloudEvent in structured JSON mode whose ``data`` is the catalogue model), one ``send``
operation for the producer and one ``receive`` operation per main consumer. Schemas live in
``components.schemas`` (AsyncAPI's default schema format, a superset of JSON Schema draft 07).
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from pydantic.json_schema import models_json_schema

from shared.events.catalogue import CATALOGUE, VERSIONS, EventType
from shared.events.envelope import Envelope

_REF_PREFIX = "#/components/schemas/"
CONTENT_TYPE = "application/cloudevents+json"


def message_id(spec: EventType) -> str:
    return f"{spec.type}.v{spec.version}"


def asyncapi_document(prefix: str = "hoithi", tenant_placeholder: str = "{tenant}") -> dict[str, Any]:
    """The AsyncAPI 3.0 document (plain JSON data) of every event type and version in the catalogue."""
    specs = sorted(VERSIONS.values(), key=lambda s: (s.type, s.version))
    models = [(spec.data, "validation") for spec in specs] + [(Envelope, "validation")]
    key_map, top = models_json_schema(models, ref_template=_REF_PREFIX + "{model}")  # type: ignore[arg-type]
    schemas: dict[str, Any] = {
        name: _open_objects(schema) for name, schema in sorted(top.get("$defs", {}).items())
    }
    envelope_ref = key_map[(Envelope, "validation")]["$ref"]
    envelope_name = envelope_ref.removeprefix(_REF_PREFIX)
    schemas[envelope_name] = _envelope_schema(schemas[envelope_name])

    parameter = re.fullmatch(r"\{(\w+)\}", tenant_placeholder)
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for spec in specs:
        mid = message_id(spec)
        data_ref = key_map[(spec.data, "validation")]["$ref"]
        messages[mid] = {
            "name": spec.type,
            "title": f"{spec.type} v{spec.version}",
            "summary": spec.summary,
            "description": (
                f"CloudEvent `type` {spec.type}, `dataschemaversion` {spec.version}. `subject`: {spec.subject}. "
                f"Producer: {spec.producer}. Main consumers: {', '.join(spec.consumers) or 'none (audit)'}."
            ),
            "contentType": CONTENT_TYPE,
            "headers": {
                "type": "object",
                "properties": {
                    "Nats-Msg-Id": {
                        "type": "string",
                        "description": "the CloudEvent id: the stream drops a re-publish inside its duplicate window",
                    }
                },
            },
            "correlationId": {"location": "$message.payload#/correlationid"},
            "payload": {
                "allOf": [
                    {"$ref": envelope_ref},
                    {
                        "type": "object",
                        "properties": {
                            "type": {"const": spec.type},
                            "dataschemaversion": {"const": spec.version},
                            "subject": {"type": "string", "description": spec.subject},
                            "data": {"$ref": data_ref},
                        },
                    },
                ]
            },
            "tags": [{"name": spec.producer}],
        }
        channel_id = spec.type
        channel = channels.setdefault(
            channel_id,
            {
                "address": f"{prefix}.{tenant_placeholder}.{spec.type}",
                "title": spec.type,
                "summary": CATALOGUE[spec.type].summary,
                "messages": {},
            },
        )
        if parameter:
            channel["parameters"] = {parameter.group(1): {"description": "tenant id, e.g. soctrang-stnmt"}}
        channel["messages"][mid] = {"$ref": f"#/components/messages/{mid}"}

    for type_, spec in sorted(CATALOGUE.items()):
        channel_messages = [
            {"$ref": f"#/channels/{type_}/messages/{mid}"} for mid in channels[type_]["messages"]
        ]
        operations[f"{spec.producer}.send.{type_}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{type_}"},
            "title": f"{spec.producer} publishes {type_}",
            "summary": spec.summary,
            "messages": channel_messages,
            "tags": [{"name": spec.producer}],
            "x-producer": spec.producer,
        }
        for consumer in spec.consumers:
            operations[f"{consumer}.receive.{type_}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{type_}"},
                "title": f"{consumer} consumes {type_}",
                "messages": channel_messages,
                "tags": [{"name": consumer}],
            }

    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "hoithi events",
            "version": "1.0.0",
            "description": (
                "Every fact the hoithi services exchange over NATS JetStream (stream HOITHI), as CloudEvents 1.0 "
                "in structured JSON mode. `time` is the business instant of the fact; `subject` the id of the "
                "aggregate; `sequence` numbers that aggregate's facts at the producer (expect gaps); `id` travels "
                "as the Nats-Msg-Id header. Adding an optional field keeps `dataschemaversion`; anything else is "
                "a new version, and consumers accept both until the old one is retired."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas, "messages": messages},
    }


def asyncapi_html(doc: dict[str, Any]) -> str:
    """A minimal self-contained HTML page (no scripts, no CDN) listing the channels, types and schemas."""
    components = doc.get("components", {})
    schemas: dict[str, Any] = components.get("schemas", {})
    messages: dict[str, Any] = components.get("messages", {})
    esc = html.escape
    rows: list[str] = []
    sections: list[str] = []
    for channel_id, channel in doc.get("channels", {}).items():
        for ref in channel.get("messages", {}).values():
            mid = ref["$ref"].rsplit("/", 1)[-1]
            message = messages.get(mid, {})
            anchor = "m-" + re.sub(r"[^A-Za-z0-9_-]", "-", mid)
            producer = ", ".join(t["name"] for t in message.get("tags", []))
            rows.append(
                f"<tr><td><code>{esc(channel.get('address', ''))}</code></td>"
                f'<td><a href="#{anchor}">{esc(channel_id)}</a></td><td>{esc(mid.rsplit(".v", 1)[-1])}</td>'
                f"<td>{esc(producer)}</td><td>{esc(message.get('summary', ''))}</td></tr>"
            )
            data_ref = _data_ref(message)
            shown = {name: schemas[name] for name in _referenced(data_ref, schemas)} if data_ref else {}
            sections.append(
                f'<section id="{anchor}"><h3>{esc(message.get("title", mid))}</h3>'
                f"<p>{esc(message.get('summary', ''))}</p><p>{esc(message.get('description', ''))}</p>"
                f"<p>data: <code>{esc(data_ref.removeprefix(_REF_PREFIX) if data_ref else '?')}</code></p>"
                f"<details><summary>JSON Schema of data</summary><pre>{esc(json.dumps(shown, indent=2, ensure_ascii=False))}"
                "</pre></details></section>"
            )
    envelope = {name: s for name, s in schemas.items() if name == "Envelope"}
    info = doc.get("info", {})
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(info.get('title', 'events'))}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:80rem}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;"
        "vertical-align:top}pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:.8rem}"
        "section{border-top:1px solid #ddd;margin-top:1rem}</style></head><body>"
        f"<h1>{esc(info.get('title', 'events'))} <small>AsyncAPI {esc(doc.get('asyncapi', ''))}</small></h1>"
        f"<p>{esc(info.get('description', ''))}</p>"
        f"<p>Content type: <code>{esc(doc.get('defaultContentType', ''))}</code></p>"
        "<h2>Channels</h2><table><thead><tr><th>subject</th><th>type</th><th>version</th><th>producer</th>"
        f"<th>means</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "<h2>Envelope</h2><details><summary>CloudEvent envelope schema</summary>"
        f"<pre>{esc(json.dumps(envelope, indent=2, ensure_ascii=False))}</pre></details>"
        f"<h2>Messages</h2>{''.join(sections)}</body></html>\n"
    )


def _envelope_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The envelope as it travels: every attribute ``Envelope.to_json`` always writes is required."""
    out = dict(schema)
    properties = dict(out.get("properties", {}))
    properties["data"] = {"type": "object", "description": "the event type's data (see each message)"}
    out["properties"] = properties
    always = {"specversion", "id", "source", "type", "time", "subject", "datacontenttype", "data", "tenant",
              "sequence", "correlationid", "dataschemaversion"}  # fmt: skip
    out["required"] = sorted(always & set(properties) | set(out.get("required", [])))
    out["description"] = (
        "CloudEvents 1.0, structured JSON mode, with the extensions tenant, edition, sequence, correlationid, "
        "causationid, dataschemaversion, and the distributed-tracing extension's traceparent and tracestate "
        "(W3C trace context, only when tracing is on) (optional attributes are left out when empty)."
    )
    return out


def _open_objects(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: _open_objects(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)
        }
    if isinstance(node, list):
        return [_open_objects(v) for v in node]
    return node


def _data_ref(message: dict[str, Any]) -> str | None:
    for part in message.get("payload", {}).get("allOf", []):
        ref = part.get("properties", {}).get("data", {}).get("$ref")
        if ref:
            return str(ref)
    return None


def _referenced(ref: str, schemas: dict[str, Any]) -> list[str]:
    """The schema ``ref`` names and every schema it reaches, in discovery order."""
    order: list[str] = []
    pending = [ref.removeprefix(_REF_PREFIX)]
    while pending:
        name = pending.pop(0)
        if name in order or name not in schemas:
            continue
        order.append(name)
        pending += [r.removeprefix(_REF_PREFIX) for r in _refs(schemas[name])]
    return order


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _refs(value)
        return found
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []

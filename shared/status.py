"""``hoithi status``: what an operator looks at first on a deadline evening, in one screen.

Each service's readiness (``/health/ready``), outbox depth and oldest unpublished age and clock (its
``/metrics``); each durable's lag straight from NATS (pending, ack pending, redelivered); the dead letters (the
dead-letter stream's message count). ``--json`` prints the same as one JSON object for scripts.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import SERVICES, Settings, service_settings
from shared.streams import consumer_configs


def service_url(name: str, settings: Settings) -> str:
    own = service_settings(name, settings)
    host = "127.0.0.1" if own.host in ("0.0.0.0", "::", "") else own.host
    return f"http://{host}:{own.port}"


def _samples(text: str) -> dict[str, float]:
    """Unlabelled samples of a /metrics text by name (the gauges status shows carry no labels)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not s.labels:
                out[s.name] = s.value
    return out


async def _service(client: httpx.AsyncClient, name: str, settings: Settings) -> dict[str, Any]:
    url = service_url(name, settings)
    row: dict[str, Any] = {"service": name, "url": url, "ready": False, "checks": {}}
    try:
        r = await client.get(f"{url}/health/ready")
        row["ready"] = r.status_code == 200
        row["checks"] = r.json().get("checks", {})
    except (httpx.HTTPError, ValueError) as exc:
        row["checks"] = {"http": f"unreachable: {type(exc).__name__}"}
        return row
    try:
        m = _samples((await client.get(f"{url}/metrics")).text)
    except (httpx.HTTPError, ValueError):
        return row
    row["outbox_depth"] = int(m.get("hoithi_outbox_depth", 0))
    row["outbox_oldest_age_seconds"] = round(m.get("hoithi_outbox_oldest_unpublished_age_seconds", 0.0), 1)
    if "hoithi_clock_seconds" in m:
        row["clock"] = datetime.fromtimestamp(m["hoithi_clock_seconds"], UTC).isoformat()
    return row


async def _nats(settings: Settings) -> dict[str, Any]:
    import nats

    from shared.nats_auth import connect_options

    out: dict[str, Any] = {"consumers": [], "deadletters": None, "nats": "ok"}
    try:
        # the operator's credentials (NATS refuses anonymous clients), like every other command
        nc = await nats.connect(**connect_options(settings), connect_timeout=3, max_reconnect_attempts=1)
    except Exception as exc:  # noqa: BLE001 - shown, not raised: the rest of the table still helps
        out["nats"] = f"unreachable: {type(exc).__name__}"
        return out
    try:
        js = nc.jetstream()
        for stream, cc in consumer_configs(settings):
            row: dict[str, Any] = {"durable": cc.durable_name, "stream": stream}
            try:
                info = await js.consumer_info(stream, cc.durable_name or "")
                row |= {
                    "pending": info.num_pending or 0,
                    "ack_pending": info.num_ack_pending or 0,
                    "redelivered": info.num_redelivered or 0,
                }
            except Exception as exc:  # noqa: BLE001 - missing until `hoithi streams`
                row["error"] = type(exc).__name__
            out["consumers"].append(row)
        try:
            out["deadletters"] = (await js.stream_info(settings.deadletter_stream)).state.messages
        except Exception as exc:  # noqa: BLE001
            out["deadletters_error"] = type(exc).__name__
    finally:
        await nc.close()
    return out


async def collect(settings: Settings) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=3) as client:
        services, messaging = await asyncio.gather(
            asyncio.gather(*(_service(client, n, settings) for n in SERVICES)), _nats(settings)
        )
    return {"services": list(services), **messaging}


def _vn(iso: str | None) -> str:
    if not iso:
        return "?"
    from shared.clock import VN

    return datetime.fromisoformat(iso).astimezone(VN).strftime("%d/%m/%Y %H:%M:%S")


def render(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    services = Table(title="Services (dịch vụ)")
    services.add_column("service", no_wrap=True)
    for col in ("ready", "outbox depth", "oldest unpublished", "not ok"):
        services.add_column(col)
    for s in report["services"]:
        bad = ", ".join(f"{k}: {v}" for k, v in s["checks"].items() if v != "ok")
        age = s.get("outbox_oldest_age_seconds")
        services.add_row(
            s["service"],
            "[green]ready[/]" if s["ready"] else "[red]NOT READY[/]",
            str(s.get("outbox_depth", "?")),
            "?" if age is None else f"{age:.0f} s",
            bad,
        )
    console.print(services)
    clocks: dict[str, list[str]] = {}
    for s in report["services"]:
        clocks.setdefault(_vn(s.get("clock")), []).append(s["service"])
    for shown, names in clocks.items():  # one line when every service agrees (they follow one clock file)
        console.print(f"Clock (+07:00): [bold]{shown}[/]  ({', '.join(names)})", soft_wrap=True)
    consumers = Table(title=f"Durable consumers (NATS: {report['nats']})")
    consumers.add_column("durable", no_wrap=True)
    for col in ("stream", "pending", "ack pending", "redelivered"):
        consumers.add_column(col)
    for c in report["consumers"]:
        if "error" in c:
            consumers.add_row(c["durable"], c["stream"], f"[red]{c['error']}[/]", "", "")
            continue
        consumers.add_row(
            c["durable"], c["stream"], str(c["pending"]), str(c["ack_pending"]), str(c["redelivered"])
        )
    console.print(consumers)
    dl = report.get("deadletters")
    style = "green" if dl == 0 else "red"
    console.print(f"Dead letters: [{style}]{'?' if dl is None else dl}[/]  (hoithi deadletters list)")

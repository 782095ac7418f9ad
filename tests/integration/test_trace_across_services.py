"""One receipt is one trace across the four services: the four services as real processes on real NATS, with
tracing turned on the way an operator does (``OTEL_EXPORTER_OTLP_ENDPOINT``), exporting to an OTLP/HTTP
receiver in the test. One POST of an experience report gives a server span in submissions whose descendants
are campaign's, rewards' and notify's consumer spans and notify's email delivery span; a request with a
malformed ``traceparent`` is answered and its fact flows all the same, under a new root."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PbSpan

from shared.settings import SERVICES
from tests.support.system import EDITION, TENANT, System, report_body
from tests.support.wait import eventually_sync

UPSTREAM_TRACE = "0af7651916cd43dd8448eb211c80319c"
UPSTREAM_SPAN = "b7ad6b7169203331"
AUTHOR = "p-0002"  # an official of the seed
OTHER_AUTHOR = "p-0006"


@dataclass(frozen=True)
class Got:
    service: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]


class OtlpReceiver:
    """An OTLP/HTTP (protobuf) trace receiver: every span the services export, with its service's name."""

    def __init__(self) -> None:
        self.spans: list[Got] = []
        lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                got = []
                for rs in req.resource_spans:
                    service = next(
                        (a.value.string_value for a in rs.resource.attributes if a.key == "service.name"), "?"
                    )
                    for ss in rs.scope_spans:
                        for s in ss.spans:
                            got.append(
                                Got(
                                    service,
                                    s.name,
                                    s.kind,
                                    s.trace_id.hex(),
                                    s.span_id.hex(),
                                    s.parent_span_id.hex(),
                                    {a.key: _value(a.value) for a in s.attributes},
                                )
                            )
                with lock:
                    receiver.spans.extend(got)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def trace(self, trace_id: str) -> list[Got]:
        return [s for s in list(self.spans) if s.trace_id == trace_id]


def _value(v: Any) -> Any:
    return getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") else None


def _descends(span: Got, ancestor: Got, spans: list[Got]) -> bool:
    by_id = {s.span_id: s for s in spans}
    seen = set()
    while span.parent_id and span.parent_id not in seen:
        if span.parent_id == ancestor.span_id:
            return True
        seen.add(span.parent_id)
        parent = by_id.get(span.parent_id)
        if parent is None:
            return False
        span = parent
    return False


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as r:
        yield r


@pytest.fixture(scope="module")
def system(
    test_servers: Any, otlp: OtlpReceiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    import secrets

    work: Path = tmp_path_factory.mktemp("traced")
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix="t" + secrets.token_hex(4),
        workdir=work,
        database_urls={s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES},
        extra_env={"OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url, "OTEL_BSP_SCHEDULE_DELAY": "200"},
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def _post(system: System, person: str, traceparent: str) -> httpx.Response:
    with system.client("submissions", person) as c:
        return c.post(
            f"/tenants/{TENANT}/editions/{EDITION}/experience-reports",
            json=report_body(),
            headers={"traceparent": traceparent},
        )


def test_one_submission_is_one_trace_across_the_four_services(system: System, otlp: OtlpReceiver) -> None:
    r = _post(system, AUTHOR, f"00-{UPSTREAM_TRACE}-{UPSTREAM_SPAN}-01")
    assert r.status_code == 201, r.text

    def complete() -> tuple[Got, list[Got]] | None:
        spans = otlp.trace(UPSTREAM_TRACE)
        http = [s for s in spans if s.service == "hoithi-submissions" and s.kind == PbSpan.SPAN_KIND_SERVER]
        if len(http) != 1:
            return None
        below = [s for s in spans if _descends(s, http[0], spans)]
        consumers = {s.service for s in below if s.kind == PbSpan.SPAN_KIND_CONSUMER}
        delivered = [
            s
            for s in below
            if s.name == "notify deliver email"
            and s.attributes.get("hoithi.template") == "submission.received"
        ]
        if {"hoithi-campaign", "hoithi-rewards", "hoithi-notify"} <= consumers and delivered:
            return http[0], below
        return None

    found = eventually_sync(complete, timeout=90, interval=0.5, message="the trace of one submission")
    assert found is not None
    http, below = found
    assert http.name == "POST /tenants/{tenant}/editions/{edition}/experience-reports"
    assert http.parent_id == UPSTREAM_SPAN  # the caller's traceparent was honoured
    assert http.attributes["http.response.status_code"] == 201
    # the receipt's fact: published under a producer span, the HTTP span's child, consumed under its children
    # (FastStream's telemetry middleware on the broker opens the producer span: the relay publishes in the
    # envelope's context)
    producers = [
        s
        for s in below
        if s.kind == PbSpan.SPAN_KIND_PRODUCER
        and str(s.attributes.get("messaging.destination.name", "")).endswith(".submission.received")
    ]
    received = [s for s in producers if s.service == "hoithi-submissions" and s.parent_id == http.span_id]
    assert len(received) == 1, producers
    by_service = {
        s.service: s
        for s in below
        if s.kind == PbSpan.SPAN_KIND_CONSUMER
        and s.attributes.get("cloudevents.event_type") == "submission.received"
    }
    for service in ("hoithi-campaign", "hoithi-rewards", "hoithi-notify"):
        assert by_service[service].parent_id == received[0].span_id, service
        assert by_service[service].attributes["hoithi.tenant"] == TENANT
    # The receipt's email; rewards tells a title gained by it (reward.priority.changed) in the receipt's own
    # transaction, so that email, if any, is of this trace too.
    emails = [s for s in below if s.name == "notify deliver email"]
    assert {s.attributes["hoithi.template"] for s in emails} <= {
        "submission.received",
        "reward.priority.changed",
    }
    (email,) = [s for s in emails if s.attributes["hoithi.template"] == "submission.received"]
    assert email.service == "hoithi-notify" and email.attributes["hoithi.sent"] is True


def test_a_malformed_traceparent_is_answered_and_its_fact_flows_under_a_new_root(
    system: System, otlp: OtlpReceiver
) -> None:
    r = _post(system, OTHER_AUTHOR, "00-not-a-trace-01")
    assert r.status_code == 201, r.text
    receipt = r.json()["submission_id"]

    def flowed() -> tuple[Got, list[Got]] | None:
        spans = list(otlp.spans)
        for s in spans:
            if (
                s.service == "hoithi-notify"
                and s.kind == PbSpan.SPAN_KIND_CONSUMER
                and s.attributes.get("cloudevents.event_subject") == receipt
            ):
                return s, [x for x in spans if x.trace_id == s.trace_id]
        return None

    found = eventually_sync(flowed, timeout=90, interval=0.5, message="notify applied the fact")
    assert found is not None
    consumed, trace = found
    (http,) = [s for s in trace if s.kind == PbSpan.SPAN_KIND_SERVER]
    assert http.parent_id == "" and http.trace_id != UPSTREAM_TRACE  # a new root
    assert _descends(consumed, http, trace)

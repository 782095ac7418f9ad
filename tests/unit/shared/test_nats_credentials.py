"""Which credentials a process connects to NATS with (shared/nats_auth.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.nats_auth import connect_options, ensure_credentials, server_config, service_permissions
from shared.settings import Settings


def test_a_given_deployment_takes_a_creds_file_from_nats_creds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    creds = tmp_path / "submissions.creds"
    monkeypatch.setenv("NATS_CREDS", str(creds))
    assert connect_options(Settings(nats_url="nats://nats.example:4222")) == {
        "servers": "nats://nats.example:4222",
        "user_credentials": str(creds),
    }


def test_a_user_and_password_setting_wins_over_credentials_in_the_url() -> None:
    s = Settings(nats_url="nats://admin:x@127.0.0.1:4222", nats_user="notify", nats_password="p")
    assert connect_options(s) == {"servers": "nats://127.0.0.1:4222", "user": "notify", "password": "p"}


def test_under_hoithi_up_each_service_connects_as_itself_and_commands_as_the_admin(tmp_path: Path) -> None:
    kept = ensure_credentials(tmp_path)
    s = Settings(data_dir=tmp_path)
    assert connect_options(s, "rewards")["user"] == "rewards"
    assert connect_options(s, "rewards")["password"] == kept["rewards"]
    assert connect_options(s)["user"] == "admin"
    assert ensure_credentials(tmp_path) == kept  # made once, kept


def test_the_dev_server_configuration_names_every_user_and_no_anonymous_access(tmp_path: Path) -> None:
    conf = server_config(ensure_credentials(tmp_path), Settings())
    assert "authorization {" in conf and "no_auth_user" not in conf
    for user in ("admin", "campaign", "submissions", "rewards", "notify"):
        assert f"{{user: {user}, " in conf
    assert "hoithi.*.submission.received" in service_permissions("submissions", Settings())["publish"]
    assert "hoithi.*.submission.received" not in service_permissions("campaign", Settings())["publish"]


def test_a_ca_makes_the_connection_tls_and_a_password_file_stands_for_the_password(tmp_path: Path) -> None:
    import ssl

    from shared.nats_tls import ensure_dev_tls

    files, _ = ensure_dev_tls(tmp_path / "tls", ["nats"])
    (tmp_path / "password").write_text("s3cret\n", encoding="utf-8")
    s = Settings(
        nats_url="tls://nats:4222",
        nats_user="rewards",
        nats_password_file=tmp_path / "password",
        nats_ca=files.ca,
    )
    options = connect_options(s)
    assert options["user"] == "rewards" and options["password"] == "s3cret"
    context = options["tls"]
    assert isinstance(context, ssl.SSLContext) and context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname and context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert len(context.get_ca_certs()) == 1  # the deployment's CA, not the system's trust store
    # plaintext stays plaintext only without a CA and a tls:// URL
    assert "tls" not in connect_options(Settings(nats_url="nats://127.0.0.1:4222"))

"""Who may do what on NATS: one generator of users and permissions, from the catalogue and ``shared/streams.py``.

Every deployment uses it: the Kubernetes prod account (``deploy/k8s/nats_accounts.py`` renders it with passwords
from the pods' environment), the nats-server ``hoithi up`` runs and the ``own`` test server (``server_config``,
with passwords created on first run and kept in ``<data_dir>/nats/users.json``, mode 0600).

Each service may publish only its own event types (the catalogue's producer), its dead letters, the object-store
bucket it owns (``object_store_configs``), and on its own durable consumers only — this release's and the
previous release's versions, so a rolling update runs under authentication — ``$JS.API.CONSUMER.INFO`` and
``$JS.API.CONSUMER.MSG.NEXT``, and ``$JS.ACK`` for their deliveries — never the whole ``$JS.API.>``. A producer
of a type with more than one version may list the stream's consumers (their accepted versions). The admin
user (``hoithi streams``, ``seed``, ``deadletters``, ``events tail``, rebuilds) may do anything.

``any_names=True`` is for a server shared by tests that each pick their own prefixes and stream names: those
tokens become ``*``, while what tells the services apart (event types, durable names) stays exact.
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shared.events.catalogue import CATALOGUE
from shared.events.versions import negotiated
from shared.pacing import INTAKE_SERVICES
from shared.settings import FRONTENDS, SERVICES, Settings
from shared.streams import consumers_of, object_store_configs, replay_durable

ADMIN = "admin"
USERS: tuple[str, ...] = (ADMIN, *SERVICES, *FRONTENDS)


def reader_permissions(settings: Settings, *, any_names: bool = False) -> dict[str, list[str]]:
    """A front end's user (the portal): it reads the stream of facts through an ordered ephemeral consumer
    (created by the client, pushed to an inbox, never acked) and publishes no event, no dead letter, nothing
    on a durable consumer: the JetStream API calls an ordered consumer makes, on the facts' stream only."""
    stream = "*" if any_names else settings.stream
    return {
        "publish": [
            f"$JS.API.STREAM.INFO.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}",
            f"$JS.API.CONSUMER.CREATE.{stream}.>",
            f"$JS.API.CONSUMER.INFO.{stream}.>",
            f"$JS.API.CONSUMER.DELETE.{stream}.>",
            f"$JS.FC.{stream}.>",
        ],
        "subscribe": ["_INBOX.>"],
    }


def _bucket_permissions(bucket: str, any_names: bool) -> list[str]:
    obj = "*" if any_names else f"OBJ_{bucket}"
    return [
        f"$O.{'*' if any_names else bucket}.>",
        f"$JS.API.STREAM.INFO.{obj}",
        f"$JS.API.STREAM.MSG.GET.{obj}",
        f"$JS.API.DIRECT.GET.{obj}.>",
        f"$JS.API.STREAM.PURGE.{obj}",
        f"$JS.API.CONSUMER.CREATE.{obj}",
        f"$JS.API.CONSUMER.CREATE.{obj}.>",
        f"$JS.FC.{obj}.>",
        "$JS.API.STREAM.NAMES",  # nats-py looks the object stream up by subject to read from it (names only)
        f"$JS.API.CONSUMER.DELETE.{obj}.>",
    ]


def service_permissions(service: str, settings: Settings, *, any_names: bool = False) -> dict[str, list[str]]:
    """The publish/subscribe allow-lists of one service's user."""
    event_prefix = "*" if any_names else settings.event_prefix
    dl_prefix = "*" if any_names else settings.deadletter_prefix
    produced = sorted({t.type for t in CATALOGUE.values() if t.producer == service})
    # this release's durables and the previous release's (a rolling update runs both: ConsumerSpec.rolling_durables)
    durables = [(settings.stream, d) for c in consumers_of(service) for d in c.rolling_durables]
    durables.append((settings.replay_stream, replay_durable(service)))
    publish = [f"{event_prefix}.*.{t}" for t in produced]
    if any(negotiated(t) for t in produced):  # which versions the durables accept (shared/events/versions.py)
        publish.append(f"$JS.API.CONSUMER.LIST.{'*' if any_names else settings.stream}")
    publish.append(f"{dl_prefix}.*.{service}")
    pressure = "*.intake" if any_names else settings.pressure_subject
    if service in INTAKE_SERVICES:  # only intake may ask the consumers to yield (shared/pacing.py)
        publish.append(pressure)
    for owner, oc in object_store_configs(settings):
        if owner == service:
            publish += _bucket_permissions(oc.bucket or "", any_names)
    for stream, durable in durables:
        stream = "*" if any_names else stream
        publish += [
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    # read-only stream sizes for the service's metrics (lag, dead letters, storage near max_bytes)
    for stream in (settings.stream, settings.deadletter_stream, settings.replay_stream):
        publish.append(f"$JS.API.STREAM.INFO.{'*' if any_names else stream}")
    # read-only dead letters for the secretariat's view (shared/deadletters.py); filtered by service and tenant
    publish.append(f"$JS.API.STREAM.MSG.GET.{'*' if any_names else settings.deadletter_stream}")
    return {"publish": publish, "subscribe": ["_INBOX.>", pressure]}


def _user_line(user: str, password: str, settings: Settings, any_names: bool) -> str:
    if user == ADMIN:
        permissions = '{publish: ">", subscribe: ">"}'
    else:
        perms = (
            reader_permissions(settings, any_names=any_names)
            if user in FRONTENDS
            else service_permissions(user, settings, any_names=any_names)
        )
        pub = ", ".join(f'"{s}"' for s in perms["publish"])
        sub = ", ".join(f'"{s}"' for s in perms["subscribe"])
        permissions = f"{{publish: {{allow: [{pub}]}}, subscribe: {{allow: [{sub}]}}}}"
    return f"{{user: {user}, password: {password}, permissions: {permissions}}}"


def users_block(
    passwords: Mapping[str, str],
    settings: Settings,
    *,
    any_names: bool = False,
    users: tuple[str, ...] = USERS,
) -> list[str]:
    """One line per user (admin first), ``passwords`` being literal (quoted) values or ``$VARIABLES``."""
    return [_user_line(u, passwords[u], settings, any_names) for u in users]


def server_config(passwords: Mapping[str, str], settings: Settings, *, any_names: bool = False) -> str:
    """A nats-server configuration refusing anonymous clients: the admin and one user per service."""
    quoted = {u: json.dumps(p) for u, p in passwords.items()}
    lines = [
        "# Generated by shared/nats_auth.py: anonymous clients are refused.",
        "authorization {",
        "  users: [",
    ]
    lines += [f"    {line}" for line in users_block(quoted, settings, any_names=any_names)]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


# -- credentials kept on disk (hoithi up, own test servers) ---------------------------------------------------


def credentials_file(data_dir: Path) -> Path:
    return data_dir / "nats" / "users.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, 0o600)  # an older file with looser rights too


def read_credentials(data_dir: Path) -> dict[str, str]:
    path = credentials_file(data_dir)
    if not path.exists():
        return {}
    data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    return data


def ensure_credentials(data_dir: Path) -> dict[str, str]:
    """The password of every user, created on first run (and for a user added since); the file is mode 0600."""
    current = read_credentials(data_dir)
    missing = [u for u in USERS if u not in current]
    if missing or not credentials_file(data_dir).exists():
        current.update({u: secrets.token_urlsafe(24) for u in missing})
        _write_private(credentials_file(data_dir), json.dumps(current, indent=2) + "\n")
    return current


def write_server_config(data_dir: Path, settings: Settings, *, any_names: bool = False) -> Path:
    """Write ``<data_dir>/nats/server.conf`` (mode 0600) from the kept credentials; return its path."""
    path = data_dir / "nats" / "server.conf"
    _write_private(path, server_config(ensure_credentials(data_dir), settings, any_names=any_names))
    return path


# -- connecting -----------------------------------------------------------------------------------------------


def without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host))


def with_userinfo(url: str, user: str, password: str) -> str:
    parts = urlsplit(without_userinfo(url))
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The client side of TLS to NATS: verify the server against ``HOITHI_NATS_CA`` (a ``tls://`` URL without
    one trusts the system's CAs); None for a plaintext server (``nats://`` and no CA)."""
    if settings.nats_ca is None and urlsplit(settings.nats_url).scheme != "tls":
        return None
    context = ssl.create_default_context(cafile=str(settings.nats_ca) if settings.nats_ca else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _password(settings: Settings) -> str:
    if settings.nats_password is None and settings.nats_password_file is not None:
        return settings.nats_password_file.read_text(encoding="utf-8").strip()
    return settings.nats_password or ""


def _credentials(settings: Settings, user: str) -> dict[str, Any]:
    url = settings.nats_url
    if settings.nats_creds:
        return {"servers": url, "user_credentials": str(settings.nats_creds)}
    if settings.nats_user:
        return {"servers": without_userinfo(url), "user": settings.nats_user, "password": _password(settings)}
    if "@" in urlsplit(url).netloc:
        return {"servers": url}
    kept = read_credentials(settings.data_dir)
    if user in kept:
        return {"servers": url, "user": user, "password": kept[user]}
    return {"servers": url}


def connect_options(settings: Settings, user: str = ADMIN) -> dict[str, Any]:
    """``servers``, credentials and TLS for ``nats.connect`` / ``NatsBroker``, acting as ``user`` where it has a
    choice. Every connection to NATS (services, CLI, rebuilds) is built from here.

    Credentials, in order: a creds file (``NATS_CREDS`` / ``HOITHI_NATS_CREDS``); ``HOITHI_NATS_USER`` and
    ``HOITHI_NATS_PASSWORD`` (or ``HOITHI_NATS_PASSWORD_FILE``); credentials in the URL; else ``user``'s
    password kept under the data directory by ``hoithi up``; else anonymous (which an authenticated server
    refuses). TLS: ``tls_context``, with ``HOITHI_NATS_TLS_HOSTNAME`` when the certificate names another host,
    handshake first (before the server's INFO: a client that waited for INFO to ask for TLS would send its
    password in clear to a man in the middle who stripped that ask; the server must set ``handshake_first``).
    """
    options = _credentials(settings, user)
    context = tls_context(settings)
    if context is not None:
        options["tls"] = context
        options["tls_handshake_first"] = True
        if settings.nats_tls_hostname:
            options["tls_hostname"] = settings.nats_tls_hostname
    return options


def broker_options(settings: Settings, user: str = ADMIN) -> dict[str, Any]:
    """``connect_options`` shaped for FastStream's ``NatsBroker``: credentials and TLS go in as ``security``."""
    from faststream.nats.security import NatsCredentials, NatsSecurity, NatsUserPassword

    options = connect_options(settings, user)
    context = options.pop("tls", None)
    common: dict[str, Any] = {
        "ssl_context": context,
        "use_ssl": context is not None,
        "tls_hostname": options.pop("tls_hostname", None),
        "tls_handshake_first": options.pop("tls_handshake_first", False),
    }
    if "user" in options:
        options["security"] = NatsUserPassword(options.pop("user"), options.pop("password"), **common)
    elif "user_credentials" in options:
        options["security"] = NatsCredentials(options.pop("user_credentials"), **common)
    elif context is not None:
        options["security"] = NatsSecurity(**common)
    return options

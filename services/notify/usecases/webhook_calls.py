"""Where a webhook may point, and how it is called so that it cannot reach inside (SSRF).

A subscription's URL is the secretariat's input, and notify runs next to NATS, the databases and a cloud
metadata endpoint. So:

- registration refuses credentials in the URL, plain ``http`` in production, and hosts that are (or name)
  loopback, private, link-local, multicast, reserved or unspecified addresses — in any spelling: the URL parser
  turns ``0x7f000001``, ``2130706433`` and ``127.1`` into ``127.0.0.1``, and IPv4-mapped IPv6 is judged by its
  IPv4 address;
- delivery checks the URL again, resolves the host itself, refuses if any answer is not public, and connects
  to the address it vetted (no second resolution: a DNS answer that changes between the check and the connect
  — rebinding — cannot redirect the call); TLS still verifies the certificate for the URL's host name;
- redirects are never followed (a 3xx is a failure), no proxy from the environment is used, and only the
  status code of an answer is ever recorded, never its body.

The one escape hatch is ``HOITHI_NOTIFY_WEBHOOK_ALLOWED_HOSTS`` (comma-separated host names, addresses or
networks such as ``127.0.0.1`` or ``10.1.0.0/16``): those hosts may be internal and may use plain ``http``.
It exists for development and tests (a receiver on 127.0.0.1); leave it empty in production.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpcore

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT = 5.0
# Names that only ever mean something inside a network (RFC 6761/6762, cloud metadata, Kubernetes).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".cluster.local")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class WebhookRefused(Exception):
    """The URL or the address it resolves to may not be called. ``str()`` is the English reason."""

    def __init__(self, en: str, vi: str) -> None:
        super().__init__(en)
        self.vi = vi


@dataclass(frozen=True)
class AllowList:
    """The explicit exceptions: host names (exact, lower case) and networks."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> AllowList:
        names: set[str] = set()
        networks: list[Network] = []
        for item in (text or "").split(","):
            item = item.strip().lower().strip("[]")
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                names.add(item.rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def allows_name(self, host: str) -> bool:
        return host in self.names

    def allows_address(self, address: Address) -> bool:
        return any(address in net for net in self.networks if net.version == address.version)

    def allows_host(self, host: str) -> bool:
        address = _literal(host)
        return self.allows_name(host) if address is None else self.allows_address(address)


def not_public(address: Address) -> str | None:
    """Why this address may not be called (``loopback``, ``private``…), or None when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return not_public(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((why for why, hit in checks if hit), None)


def _literal(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, *, production: bool, allow: AllowList) -> None:
    """Refuse what a webhook URL may never be, without any network look-up (registration and delivery)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("http", "https") or not host:
        raise WebhookRefused("only http(s) URLs with a host", "Chỉ nhận địa chỉ http(s) có tên máy chủ")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused(
            "credentials in the URL are not accepted (use the shared secret)",
            "Không được ghi thông tin đăng nhập trong địa chỉ (hãy dùng khóa bí mật chung)",
        )
    allowed = allow.allows_host(host)
    if parts.scheme == "http" and production and not allowed:
        raise WebhookRefused("only https in production", "Môi trường vận hành chỉ nhận địa chỉ https")
    if allowed:
        return
    address = _literal(host)
    if address is not None:
        why = not_public(address)
        if why:
            raise WebhookRefused(
                f"{address} is a {why} address", f"{address} không phải địa chỉ công khai ({_vi(why)})"
            )
    elif "." not in host or host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
        raise WebhookRefused(
            f"{host} is an internal host name", f"{host} là tên máy chủ nội bộ, không được phép"
        )


def _vi(why: str) -> str:
    return {
        "unspecified": "địa chỉ không xác định",
        "loopback": "địa chỉ nội bộ máy",
        "link-local": "địa chỉ liên kết cục bộ",
        "multicast": "địa chỉ multicast",
        "private": "địa chỉ mạng riêng",
        "reserved": "địa chỉ dành riêng",
    }.get(why, "địa chỉ không định tuyến công khai")


async def vetted_addresses(host: str, port: int, allow: AllowList) -> list[str]:
    """Resolve ``host`` once and return the addresses to connect to; refuse if any answer is not public."""
    host = host.lower().rstrip(".").strip("[]")
    address = _literal(host)
    if address is not None:
        found: Iterable[Address] = [address]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
            )
        except (OSError, TimeoutError) as exc:
            raise WebhookRefused(
                f"{host} does not resolve", f"Không phân giải được tên máy chủ {host}"
            ) from exc
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    out: list[str] = []
    for a in found:
        why = not_public(a)
        if why and not (allow.allows_name(host) or allow.allows_address(a)):
            raise WebhookRefused(f"{host} resolves to a {why} address", f"{host} trỏ tới {_vi(why)}")
        if str(a) not in out:
            out.append(str(a))
    if not out:
        raise WebhookRefused(f"{host} does not resolve", f"Không phân giải được tên máy chủ {host}")
    return out


class _VettedBackend(httpcore.AsyncNetworkBackend):
    """Opens every connection to an address vetted by ``vetted_addresses`` (the TLS name stays the URL's)."""

    def __init__(self, allow: AllowList) -> None:
        self._allow = allow
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await vetted_addresses(host, port, self._allow)
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise WebhookRefused("unix sockets are not webhooks", "Không gọi webhook qua unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    production: bool,
    allow: AllowList,
    timeout: float,
) -> int:
    """POST once to a vetted address and return the status code (the answer's body is read and dropped).

    No redirect is followed and no environment proxy is used.
    """
    check_url(url, production=production, allow=allow)
    async with httpcore.AsyncConnectionPool(
        ssl_context=ssl.create_default_context(), network_backend=_VettedBackend(allow), max_connections=1
    ) as pool:
        response = await pool.request(
            "POST",
            url,
            headers=[(k.encode(), v.encode()) for k, v in headers.items()],
            content=body,
            extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
        )
        return int(response.status)

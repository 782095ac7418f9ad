"""A webhook cannot reach inside (SSRF): what registration refuses, and what delivery connects to."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import HttpUrl

from services.notify.usecases import webhook_calls as webhooks
from services.notify.usecases.webhook_calls import AllowList, WebhookRefused
from tests.support.notify import WebhookReceiver

NONE = AllowList.parse("")


def _as_registered(url: str) -> str:
    return str(HttpUrl(url))  # the route's own parsing: 0x7f000001, 2130706433, 127.1 become 127.0.0.1


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
        "http://127.1/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[::ffff:a00:1]/hook",
        "http://10.0.0.1/hook",
        "http://192.168.1.10/hook",
        "http://172.16.0.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[fc00::1]/hook",
        "http://224.0.0.1/hook",
        "http://0.0.0.0/hook",
        "http://100.64.0.1/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://localhost:4222/",
        "http://nats:4222/",
        "http://127.0.0.1:8222/varz",
    ],
)
def test_internal_addresses_in_any_spelling_are_refused(url: str) -> None:
    with pytest.raises(WebhookRefused):
        webhooks.check_url(_as_registered(url), production=False, allow=NONE)


def test_credentials_in_the_url_and_http_in_production_are_refused() -> None:
    with pytest.raises(WebhookRefused, match="credentials") as e:
        webhooks.check_url(
            _as_registered("https://user:pw@hooks.example.com/x"), production=False, allow=NONE
        )
    assert "đăng nhập" in e.value.vi
    with pytest.raises(WebhookRefused, match="https"):
        webhooks.check_url("http://hooks.example.com/x", production=True, allow=NONE)
    webhooks.check_url("https://hooks.example.com/x", production=True, allow=NONE)
    webhooks.check_url("http://hooks.example.com/x", production=False, allow=NONE)


def test_the_allow_list_admits_only_what_it_names() -> None:
    allow = AllowList.parse("127.0.0.1, 10.1.0.0/16 ,receiver.local")
    webhooks.check_url("http://127.0.0.1:9999/x", production=True, allow=allow)
    webhooks.check_url("http://10.1.2.3/x", production=True, allow=allow)
    webhooks.check_url("http://receiver.local/x", production=True, allow=allow)
    for url in ("http://127.0.0.2/x", "http://10.2.0.1/x", "http://[::1]/x", "http://other.local/x"):
        with pytest.raises(WebhookRefused):
            webhooks.check_url(url, production=False, allow=allow)


def _post(url: str, allow: AllowList) -> int:
    return asyncio.run(
        webhooks.post(
            url, b"{}", {"Content-Type": "application/json"}, production=False, allow=allow, timeout=5
        )
    )


def test_delivery_to_loopback_is_refused_without_the_allow_list(receiver: WebhookReceiver) -> None:
    with pytest.raises(WebhookRefused, match="loopback"):
        _post(receiver.url + "/hooks", NONE)
    port = receiver.url.rsplit(":", 1)[1]
    # a name that resolves to loopback is refused at connect time too (the address is what counts)
    with pytest.raises(WebhookRefused, match="loopback"):
        asyncio.run(webhooks.vetted_addresses("localhost", int(port), NONE))
    assert receiver.requests == []
    assert _post(receiver.url + "/hooks", AllowList.parse("127.0.0.1")) == 200
    assert [r.path for r in receiver.requests] == ["/hooks"]


def test_redirects_are_not_followed(receiver: WebhookReceiver) -> None:
    receiver.redirects["/moved"] = receiver.url + "/hooks"
    assert _post(receiver.url + "/moved", AllowList.parse("127.0.0.1")) == 302
    assert [r.path for r in receiver.requests] == ["/moved"]


def test_delivery_connects_to_the_address_it_vetted(
    receiver: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name is resolved once, vetted, and that very address is connected to."""
    answers = iter(["127.0.0.1", "10.9.9.9"])  # a second look-up would get another address
    calls: list[str] = []

    async def getaddrinfo(self: object, host: str, port: int, **kw: object) -> list[tuple[object, ...]]:
        calls.append(host)
        return [(2, 1, 6, "", (next(answers), port))]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", getaddrinfo)
    port = receiver.url.rsplit(":", 1)[1]
    status = _post(f"http://hooks.example.test:{port}/hooks", AllowList.parse("127.0.0.1"))
    assert status == 200 and calls == ["hooks.example.test"]
    assert receiver.requests[0].headers["Host"] == f"hooks.example.test:{port}"

"""Probing a NATS server as an attacker would: a plaintext session, an anonymous or untrusting client."""

from __future__ import annotations

import json
import socket

import nats
import pytest


def plaintext_answer(port: int, user: str, password: str, host: str = "127.0.0.1") -> tuple[str, bool]:
    """What the server says to ``user`` sending CONNECT (right password) and PING in clear, without waiting for
    an INFO (a server doing TLS first sends none), and whether it then closed the connection (rather than leaving
    it open until the client's timeout)."""
    with socket.create_connection((host, port), timeout=10) as s:
        connect = json.dumps({"verbose": False, "user": user, "pass": password})
        answer, closed = b"", False
        try:
            s.sendall(f"CONNECT {connect}\r\nPING\r\n".encode())
            while chunk := s.recv(4096):
                answer += chunk
            closed = True
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        except TimeoutError:
            pass
    return answer.decode(errors="replace"), closed


async def refused(url: str, **options: object) -> str:
    """The error a client gets; fails the test if it is let in."""
    try:
        nc = await nats.connect(
            url, connect_timeout=5, max_reconnect_attempts=0, allow_reconnect=False, **options
        )
    except Exception as error:  # noqa: BLE001 - nats-py raises several types for a refused connection
        return f"{type(error).__name__}: {error}"
    await nc.close()
    pytest.fail(f"{url} let in a client with {sorted(options)}")

"""The image's HEALTHCHECK: GET /health/ready of the service this container runs (``HOITHI_SERVICE``).

Plain sockets, run with ``python3 -S -I`` (no site, no urllib): a health check must stay cheap on a busy node.
A container that is not a service (setup, mail sink) has no HOITHI_SERVICE and is healthy while it runs.
"""

import os
import socket
import sys

PORTS = {"campaign": 8101, "submissions": 8102, "rewards": 8103, "notify": 8104, "portal": 8100}
service = os.environ.get("HOITHI_SERVICE", "")
if service not in PORTS:
    sys.exit(0)
port = int(os.environ.get(f"HOITHI_{service.upper()}_PORT") or PORTS[service])
try:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /health/ready HTTP/1.0\r\nHost: localhost\r\n\r\n")
        status = s.recv(64).split(b" ", 2)[1]
except (OSError, IndexError):
    sys.exit(1)
sys.exit(0 if status == b"200" else 1)

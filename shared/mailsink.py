"""A real local SMTP server that keeps every message it receives as an ``.eml`` file.

notify hands email to SMTP exactly as in production; the demo and the tests point it at this sink and read
the files back. Each message is ``<dir>/<YYYYmmddTHHMMSSffffff>-<short uuid>.eml`` (UTC, so names sort in
arrival order), written to a temporary name and renamed, so a reader never sees half a message.

The file holds the bytes received after ``DATA``, preceded by two trace headers recording the SMTP envelope
(``Return-Path`` and ``X-Envelope-To``), because Bcc recipients appear nowhere else.

    python -m shared.mailsink --dir .hoithi/mail --port 1025
"""

from __future__ import annotations

import argparse
import asyncio
import email.policy
import logging
import os
import signal
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

__all__ = ["MailSink", "main"]

log = logging.getLogger(__name__)


class _EmlWriter:
    """aiosmtpd handler: one atomic ``.eml`` file per accepted message."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        trace = (
            f"Return-Path: <{envelope.mail_from or ''}>\r\nX-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
        )
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        final = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        fd, temp = tempfile.mkstemp(dir=self.directory, prefix=".incoming-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(trace.encode("utf-8") + raw)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, final)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        subject = BytesParser(policy=email.policy.default).parsebytes(raw, headersonly=True)["Subject"] or ""
        log.info("mail to %s: %s (%s)", ", ".join(envelope.rcpt_tos), subject, final.name)
        return "250 Message accepted for delivery"


class _Controller(Controller):
    """A Controller that can listen on port 0: it learns the port the kernel gave before triggering the server."""

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> asyncio.Server:
        server = await super()._create_server()
        assert isinstance(server, asyncio.Server)
        self.port = server.sockets[0].getsockname()[1]
        return server


class MailSink:
    """SMTP on ``host:port`` (0 = a free port, see ``.port`` after ``start()``), storing into ``directory``."""

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.directory = Path(directory)
        self.host = host
        self._requested_port = port
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        if self._controller is None:
            return self._requested_port
        port: int = self._controller.port
        return port

    def start(self) -> Self:
        if self._controller is not None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        controller = _Controller(
            _EmlWriter(self.directory),
            hostname=self.host,
            port=self._requested_port,
            enable_SMTPUTF8=True,  # Vietnamese addresses/headers may arrive raw UTF-8
            server_hostname="hoithi-mailsink",
            ready_timeout=10.0,
        )
        # aiosmtpd's session chatter (peers, EHLO, EOF, connection lost) is for debugging the sink, not for the
        # operator watching `make run` nor a test's log: one line per message kept is what they need. Its
        # warnings and errors still go through.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def paths(self) -> list[Path]:
        """Stored ``.eml`` files, oldest first."""
        return sorted(self.directory.glob("*.eml"))

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first, parsed so encoded (e.g. Vietnamese) headers come back decoded."""
        parser = BytesParser(_class=EmailMessage, policy=email.policy.default)
        result: list[EmailMessage] = []
        for path in self.paths():
            message = parser.parsebytes(path.read_bytes())
            assert isinstance(message, EmailMessage)
            result.append(message)
        return result

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """Run the sink in the foreground until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m shared.mailsink", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(".hoithi/mail"), help="where .eml files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")

    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    sink = MailSink(args.dir, host=args.host, port=args.port).start()
    log.info("mail sink listening on %s:%d, writing to %s", sink.host, sink.port, sink.directory.resolve())
    try:
        done.wait()
    finally:
        sink.stop()
        log.info("mail sink stopped")


if __name__ == "__main__":
    main()

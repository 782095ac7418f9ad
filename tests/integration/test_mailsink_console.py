"""The mail catcher `make run` starts prints what an operator needs — one line per message kept, with its
recipient and (decoded, Vietnamese) subject — not aiosmtpd's session chatter."""

from __future__ import annotations

import signal
import smtplib
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

from shared.devserver import free_port
from tests.support.system import ROOT
from tests.support.wait import eventually_sync


def test_the_mail_catcher_prints_one_readable_line_per_message(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shared.mailsink", "--dir", str(tmp_path / "mail"), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def send() -> bool:
            msg = EmailMessage()
            msg["From"] = "hoithi@example.vn"
            msg["To"] = "minh.tv@example.vn"
            msg["Subject"] = "Biên nhận hồ sơ 2023-TN-000001"
            msg.set_content("Kính gửi Ông/Bà Trần Văn Minh")
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=5) as smtp:
                    smtp.send_message(msg)
                return True
            except OSError:
                return False

        eventually_sync(send, timeout=20, message="the catcher accepts a message")
        eventually_sync(
            lambda: list((tmp_path / "mail").glob("*.eml")), timeout=10, message="the message kept"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    lines = [line for line in out.splitlines() if line.strip()]
    kept = [line for line in lines if "minh.tv@example.vn" in line]
    assert len(kept) == 1 and "Biên nhận hồ sơ 2023-TN-000001" in kept[0], out
    noise = ("Peer:", "handling connection", "EOF received", "Connection lost", ">> b'", "sender:")
    assert not [line for line in lines if any(n in line for n in noise)], out
    assert len(lines) <= 3, out  # listening, the message, stopped

"""notify's pure rules and templates: receipt content, idempotent ids, retry policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from services.notify import domain
from services.notify.domain import rendering
from shared.documents import load_edition
from shared.events.catalogue import SubmissionReceived

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"


@pytest.fixture(scope="module")
def received() -> SubmissionReceived:
    return SubmissionReceived(
        submission_id="sub-1",
        kind="experience_report",
        part="experience",
        receipt_number="2023-EXP-000042",
        # 16:59:59 UTC is 23:59:59 in Vietnam: the last second of 25/10/2023
        received_at=datetime(2023, 10, 25, 16, 59, 59, tzinfo=UTC),
        author_id="p-0002",
        unit_id="u-vpdkdd-cn1",
        authors=[{"person_id": "p-0002", "name": "Trần Văn Minh", "share": 100}],  # type: ignore[list-item]
        procedures=["1.004227", "1.000494", "1.011442", "1.001234", "1.002345"],
    )


@pytest.fixture(scope="module")
def message(received: SubmissionReceived) -> rendering.Message:
    receipt = domain.receipt_of(
        received,
        edition="2023",
        document=load_edition(SEED / "edition.yaml"),
        person_name="Trần Văn Minh",
        unit_name="Chi nhánh Văn phòng Đăng ký đất đai thành phố Sóc Trăng",
    )
    return rendering.render_receipt(receipt)


def test_receipt_subject_names_the_receipt_and_the_edition(message: rendering.Message) -> None:
    assert message.subject == "Biên nhận hồ sơ số 2023-EXP-000042 — Hội thi Cải cách hành chính 2023"


def test_receipt_text_has_vietnamese_time_and_what_was_submitted(message: rendering.Message) -> None:
    text = message.text
    assert "Kính gửi Trần Văn Minh," in text
    assert "Số biên nhận: 2023-EXP-000042" in text
    assert "Thời điểm tiếp nhận: 25/10/2023 23:59:59 (+07:00)" in text
    assert "Phần thi: Trình bày trải nghiệm thực tế về chất lượng dịch vụ công trực tuyến" in text
    assert "Số thủ tục hành chính đã trải nghiệm: 5" in text
    assert "Mã thủ tục: 1.004227, 1.000494, 1.011442, 1.001234, 1.002345" in text
    assert "{{" not in text and "{%" not in text


def test_receipt_html_is_escaped_and_keeps_diacritics(received: SubmissionReceived) -> None:
    receipt = domain.receipt_of(received, edition="2023", person_name="Lê <Thị> Hoa & Cộng sự")
    msg = rendering.render_receipt(receipt)
    assert "Lê &lt;Thị&gt; Hoa &amp; Cộng sự" in msg.html
    assert "Lê <Thị> Hoa & Cộng sự" in msg.text  # plain text is not HTML
    assert "25/10/2023 23:59:59 (+07:00)" in msg.html
    assert "<code>1.004227</code>" in msg.html
    # without the edition document, the part id stands in for its title
    assert "Phần thi: experience" in msg.text


def test_a_cause_notifies_each_recipient_once_per_channel() -> None:
    a = domain.notification_id("evt-1", "p-0002", domain.EMAIL)
    assert a == domain.notification_id("evt-1", "p-0002", domain.EMAIL)
    assert a != domain.notification_id("evt-1", "p-0002", domain.IN_APP)
    assert a != domain.notification_id("evt-2", "p-0002", domain.EMAIL)
    assert domain.sent_event_id(a) == domain.sent_event_id(a)
    assert domain.failed_event_id(a, 1) != domain.failed_event_id(a, 2)


def test_retries_back_off_and_give_up() -> None:
    delays = [domain.retry_delay(n) for n in range(1, 12)]
    assert delays[0] == timedelta(seconds=5) and delays[1] == timedelta(seconds=10)
    assert delays == sorted(delays) and max(delays) == timedelta(hours=1)
    assert not domain.gives_up(domain.MAX_ATTEMPTS - 1) and domain.gives_up(domain.MAX_ATTEMPTS)


def test_an_email_is_dated_by_the_deployments_clock_in_vietnam_time() -> None:
    """The demo runs in October 2023: its mail must not say it was written in 2026."""
    from email.utils import parsedate_to_datetime
    from types import SimpleNamespace

    from services.notify.usecases.delivery import email_message

    own = SimpleNamespace(mail_from="hoithi@example.vn")
    row = SimpleNamespace(
        to_address="minh.tv@example.vn",
        subject="Biên nhận",
        id="n-1",
        tenant="soctrang-stnmt",
        template="submission.received",
        text="Kính gửi",
        html=None,
    )
    now = datetime(2023, 10, 20, 2, 0, 5, tzinfo=UTC)  # 20/10/2023 09:00:05 +07:00 on the simulated clock
    msg = email_message(own, row, now)  # type: ignore[arg-type]
    assert parsedate_to_datetime(msg["Date"]) == now
    assert msg["Date"].endswith("+0700")


def test_an_email_reads_back_with_its_vietnamese_sender_subject_and_both_bodies() -> None:
    """What a mail client shows: the headers decoded and each body as written, whatever encoding carried them."""
    import email
    import email.policy
    from types import SimpleNamespace

    from services.notify.usecases.delivery import email_message

    own = SimpleNamespace(mail_from="Hội thi Cải cách hành chính <no-reply@hoithi.vn>")
    subject = "Biên nhận báo cáo kinh nghiệm số 2023-TN-000123 — Sở Tài nguyên và Môi trường"
    text = "Kính gửi ông Nguyễn Văn Ánh,\n\nHội thi đã nhận báo cáo lúc 09:00 ngày 20/10/2023.\n"
    html = "<p>Kính gửi ông <b>Nguyễn Văn Ánh</b>,</p>"
    row = SimpleNamespace(
        to_address="anh.nv@example.vn",
        subject=subject,
        id="n-2",
        tenant="soctrang-stnmt",
        template="submission.received",
        text=text,
        html=html,
    )
    raw = email_message(own, row, datetime(2023, 10, 20, 2, 0, tzinfo=UTC)).as_bytes()  # type: ignore[arg-type]
    assert raw.isascii()  # 7-bit on the wire: any SMTP server relays it
    got = email.message_from_bytes(raw, policy=email.policy.default)
    assert str(got["Subject"]) == subject
    assert got["From"].addresses[0].display_name == "Hội thi Cải cách hành chính"
    assert got["From"].addresses[0].addr_spec == "no-reply@hoithi.vn"
    assert str(got["To"]) == "anh.nv@example.vn"
    assert str(got["Message-ID"]) == "<n-2@hoithi.soctrang-stnmt>"
    assert got.get_body(("plain",)).get_content() == text  # type: ignore[union-attr]
    assert got.get_body(("html",)).get_content().strip() == html  # type: ignore[union-attr]
    plain_only = email_message(own, SimpleNamespace(**{**vars(row), "html": None}), datetime.now(UTC))  # type: ignore[arg-type]
    assert email.message_from_bytes(plain_only.as_bytes(), policy=email.policy.default).get_content() == text

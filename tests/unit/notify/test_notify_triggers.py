"""notify's trigger table, row by row, on the 2023 seed: who receives which template for each event type."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest

from services.notify import domain
from services.notify.domain import compose, rendering
from shared.documents import ExperienceReportPart, load_directory, load_edition

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
AT = datetime(2023, 10, 20, 2, 0, tzinfo=UTC)  # 20/10/2023 09:00 +07:00
DEADLINE = "2023-10-25T17:00:00+00:00"  # 26/10/2023 00:00 +07:00, the exclusive end of 25/10


@pytest.fixture(scope="module")
def edition():  # type: ignore[no-untyped-def]
    return load_edition(SEED / "edition.yaml")


@pytest.fixture(scope="module")
def who() -> domain.People:
    d = load_directory(SEED / "directory.yaml")
    day = date(2023, 10, 20)
    return domain.People(
        tuple(d.people_as_of(day)), {u.id: u for u in d.units_as_of(day)}, {u.id: u for u in d.unions}
    )


EXAMPLES: dict[str, dict[str, Any]] = {
    "submission.received": {
        "submission_id": "s-1",
        "kind": "experience_report",
        "part": "experience",
        "receipt_number": "2023-TN-000001",
        "received_at": "2023-10-20T02:00:00+00:00",
        "author_id": "p-0002",
        "unit_id": "u-vpdkdd-cn1",
        "authors": [{"person_id": "p-0002", "name": "Trần Văn Minh", "share": 100}],
        "procedures": ["1.004227"],
    },
    "deadline.approaching": {
        "assignment_id": "a-1",
        "part": "experience",
        "assignee_kind": "person",
        "assignee_id": "p-0008",
        "unit_id": "u-tnn-ks",
        "deadline": DEADLINE,
        "offset": "P3D",
    },
    "deadline.missed": {
        "assignment_id": "a-2",
        "part": "initiative",
        "assignee_kind": "unit",
        "assignee_id": "u-ccbvmt",
        "unit_id": "u-ccbvmt",
        "deadline": DEADLINE,
    },
    "deadline.passed": {
        "part": "experience",
        "deadline": DEADLINE,
        "assigned": 20,
        "fulfilled": 17,
        "missed_by_unit": {"u-tnn-ks": ["p-0008", "p-0009"], "u-vpdkdd-cn1": ["p-0025"]},
    },
    "deadline.extended": {
        "assignment_id": "a-3",
        "part": "experience",
        "assignee_kind": "person",
        "assignee_id": "p-0016",
        "previous_deadline": DEADLINE,
        "new_deadline": "2023-10-27T17:00:00+00:00",
        "reason": "Đi công tác",
        "approved_by": "p-0004",
    },
    "initiative.scored": {
        "submission_id": "s-9",
        "part": "selection",
        "council_id": "initiative-council",
        "member_id": "p-0007",
        "scores": {"novelty": 25},
        "total": 80,
        "at": "2023-10-28T02:00:00+00:00",
    },
    "initiative.selected": {
        "submission_id": "s-9",
        "part": "selection",
        "council_id": "initiative-council",
        "unit_id": "u-tnn-ks",
        "authors": [{"person_id": "p-0009", "name": "Thạch Sô Phol", "share": 100}],
        "score": 82.5,
        "rank": 1,
        "at": "2023-10-30T02:00:00+00:00",
    },
    "submission.rejected": {
        "submission_id": "s-5",
        "kind": "experience_report",
        "part": "experience",
        "author_id": "p-0011",
        "unit_id": "u-tnb-bdkh",
        "at": "2023-10-21T02:00:00+00:00",
        "reason": "Trùng thủ tục",
    },
    "onlineservice.progress.reported": {
        "assignment_id": "a-9",
        "part": "online90",
        "unit_id": "u-ttcntt",
        "period_start": "2023-10-01T17:00:00+00:00",
        "period_end": "2023-10-08T17:00:00+00:00",
        "figures": {"online_dossier_share": 0.4},
    },
    "onlineservice.target.reached": {
        "assignment_id": "a-9",
        "part": "online90",
        "unit_id": "u-ttcntt",
        "at": "2023-11-18T17:00:00+00:00",
        "figures": {"online_dossier_share": 0.6},
        "targets": {"online_dossier_share": 0.5},
    },
    "onlineservice.target.missed": {
        "assignment_id": "a-9",
        "part": "online90",
        "unit_id": "u-ccqldd",
        "at": "2023-11-18T17:00:00+00:00",
        "figures": {"online_dossier_share": 0.3},
        "targets": {"online_dossier_share": 0.5},
        "unmet": ["online_dossier_share"],
    },
    "reward.priority.changed": {
        "participant_kind": "person",
        "participant_id": "p-0009",
        "rank": 1,
        "previous_rank": 3,
        "points": 7.0,
        "eligibility": ["chien_si_thi_dua_co_so"],
        "previous_eligibility": [],  # what notify last saw (the handler adds it from its inbox)
        "reasons": [{"vi": "Là tác giả sáng kiến được chọn", "en": "Author of a selected initiative"}],
        "rules_version": 1,
    },
}

# (event type) -> {(recipient, template)}: the README's table, as data.
EXPECTED: dict[str, set[tuple[str, str]]] = {
    "submission.received": {("p-0002", "submission.received")},
    "deadline.approaching": {("p-0008", "deadline.approaching")},
    "deadline.missed": {("p-0015", "deadline.missed")},  # a unit assignee: its head
    "deadline.passed": {
        ("p-0007", "deadline.passed.mobiliser"),  # head of TNN-KS: p-0008, p-0009
        ("p-0024", "deadline.passed.mobiliser"),  # head of the CN1 branch: p-0025
        ("p-0012", "deadline.passed.mobiliser"),  # trade union secretary: all three
        ("p-0022", "deadline.passed.mobiliser"),  # youth union secretary: p-0008 (a member)
        ("p-0004", "deadline.passed.secretariat"),
        ("p-0003", "deadline.passed.secretariat"),  # the director
    },
    "deadline.extended": {("p-0016", "deadline.extended")},
    "initiative.scored": {("p-0001", "initiative.scored")},
    "initiative.selected": {
        ("p-0009", "initiative.selected"),  # author
        ("p-0007", "initiative.selected"),  # unit head (also a council member: once)
        ("p-0001", "initiative.selected"),
        ("p-0013", "initiative.selected"),
        ("p-0018", "initiative.selected"),
        ("p-0021", "initiative.selected"),
        ("p-0004", "initiative.selected"),  # secretariat
    },
    "submission.rejected": {("p-0011", "submission.rejected"), ("p-0010", "submission.rejected")},
    "onlineservice.progress.reported": {("p-0021", "onlineservice.progress.reported")},
    "onlineservice.target.reached": {("p-0021", "onlineservice.target.reached")},
    "onlineservice.target.missed": {("p-0013", "onlineservice.target.missed")},
    "reward.priority.changed": {("p-0009", "reward.priority.changed")},
}


def test_every_trigger_row_has_an_example() -> None:
    assert {t.event_type for t in domain.TRIGGERS} == set(EXAMPLES) == set(EXPECTED)


@pytest.mark.parametrize("event_type", sorted(EXPECTED))
def test_trigger_row_sends_the_template_to_exactly_these_people(event_type, edition, who) -> None:  # type: ignore[no-untyped-def]
    planned = compose.plan(
        event_type, EXAMPLES[event_type], edition=edition, edition_name="2023", who=who, event_time=AT
    )
    assert {(m.person.id, m.template) for m in planned} == EXPECTED[event_type]
    for m in planned:  # every message renders, in Vietnamese and English, with nothing left unfilled
        msg = rendering.render(m.template, m.context)
        assert msg.subject and "{{" not in msg.text and "Kính gửi" in msg.text
        assert m.person.name in msg.text
        en = rendering.render(m.template, m.context, language="en")
        assert en.subject and m.person.name in en.text


def test_a_unit_head_with_ten_people_who_missed_gets_one_summary_listing_all(edition, who) -> None:  # type: ignore[no-untyped-def]
    ten = [f"p-x{i}" for i in range(10)]
    extra = [
        who.people[0].model_copy(
            update={"id": pid, "name": f"Cán bộ {i}", "unit": "u-ccbvmt", "roles": [], "unions": []}
        )
        for i, pid in enumerate(ten)
    ]
    crowd = domain.People(who.people + tuple(extra), who.units, who.unions)
    data = {**EXAMPLES["deadline.passed"], "missed_by_unit": {"u-ccbvmt": ten}}
    planned = compose.plan(
        "deadline.passed", data, edition=edition, edition_name="2023", who=crowd, event_time=AT
    )
    to_head = [m for m in planned if m.person.id == "p-0015"]
    assert len(to_head) == 1
    text = rendering.render(to_head[0].template, to_head[0].context).text
    assert all(f"- Cán bộ {i}" in text for i in range(10)) and "10 người chưa nộp" in text
    secretariat = rendering.render(
        "deadline.passed.secretariat", next(m.context for m in planned if m.person.id == "p-0004")
    )
    assert "Được giao: 20. Hoàn thành: 17." in secretariat.text
    # the last day that counts, as submissions says it — never the exclusive end "26/10/2023 00:00:00"
    assert 'Hạn chót phần thi "Trình bày' in secretariat.text
    assert "(hết ngày 25/10/2023 (+07:00)) đã qua" in secretariat.text
    assert "26/10/2023" not in secretariat.text and "26/10/2023" not in text


def test_a_deadline_reminder_shows_the_last_day_that_counts(edition, who) -> None:  # type: ignore[no-untyped-def]
    [m] = compose.plan(
        "deadline.approaching",
        EXAMPLES["deadline.approaching"],
        edition=edition,
        edition_name="2023",
        who=who,
        event_time=AT,
    )
    msg = rendering.render(m.template, m.context)
    assert (
        msg.subject
        == "Nhắc hạn: Trình bày trải nghiệm thực tế về chất lượng dịch vụ công trực tuyến — hạn chót 25/10/2023"
    )
    assert "Hạn chót: hết ngày 25/10/2023 (+07:00) (còn 5 ngày 15 giờ)." in msg.text


def test_a_reminder_says_the_time_really_left_when_it_is_written_not_its_offset(edition, who) -> None:  # type: ignore[no-untyped-def]
    """The 7-day reminder fell due on 19/10 00:00; the demo starts (and sends it) on 20/10 09:00."""
    due = datetime(2023, 10, 18, 17, 0, tzinfo=UTC)  # 19/10/2023 00:00 +07:00 = deadline - P7D
    data = {**EXAMPLES["deadline.approaching"], "offset": "P7D"}
    [m] = compose.plan(
        "deadline.approaching", data, edition=edition, edition_name="2023", who=who, event_time=due, now=AT
    )
    msg = rendering.render(m.template, m.context)
    assert "còn 5 ngày 15 giờ" in msg.text and "7 ngày" not in msg.text
    en = rendering.render(m.template, m.context, language="en")
    assert "5 day(s) 15 hour(s) left" in en.text
    # three hours before the deadline: hours and minutes, never "0 ngày"
    late = datetime(2023, 10, 25, 13, 40, tzinfo=UTC)  # 25/10 20:40 +07:00
    [m] = compose.plan(
        "deadline.approaching", data, edition=edition, edition_name="2023", who=who, event_time=due, now=late
    )
    assert "(còn 3 giờ 20 phút)" in rendering.render(m.template, m.context).text


def test_an_extension_shows_both_deadlines_as_last_days(edition, who) -> None:  # type: ignore[no-untyped-def]
    [m] = compose.plan(
        "deadline.extended",
        EXAMPLES["deadline.extended"],
        edition=edition,
        edition_name="2023",
        who=who,
        event_time=AT,
    )
    text = rendering.render(m.template, m.context).text
    assert "Hạn cũ: hết ngày 25/10/2023 (+07:00)" in text and "Hạn mới: hết ngày 27/10/2023 (+07:00)" in text


def test_someone_both_unit_head_and_union_secretary_gets_one_merged_summary(edition, who) -> None:  # type: ignore[no-untyped-def]
    # the trade union secretary (p-0012) made head of CCBVMT for this test: p-0016 counts twice, p-0008 once
    head_and_secretary = who.person("p-0012").model_copy(
        update={"unit": "u-ccbvmt", "roles": ["unit_head", "union_secretary"]}
    )
    others = tuple(p for p in who.people if p.id not in ("p-0012", "p-0015"))
    crowd = domain.People((*others, head_and_secretary), who.units, who.unions)
    data = {**EXAMPLES["deadline.passed"], "missed_by_unit": {"u-ccbvmt": ["p-0016"], "u-tnn-ks": ["p-0008"]}}
    planned = compose.plan(
        "deadline.passed", data, edition=edition, edition_name="2023", who=crowd, event_time=AT
    )
    mine = [m for m in planned if m.person.id == "p-0012"]
    assert len(mine) == 1
    assert mine[0].context["missed"] == ["Kim Văn Sơn", "Lý Thị Mỹ Linh"]
    assert mine[0].context["role_vi"] == "Bí thư Chi đoàn / Chủ tịch Công đoàn cơ sở, Thủ trưởng đơn vị"


def test_mobilisation_lists_go_to_heads_and_secretaries_with_their_people(who) -> None:
    open_ = [
        domain.OpenAssignment("a1", "experience", "p-0008", "u-tnn-ks"),
        domain.OpenAssignment("a2", "experience", "p-0016", "u-ccbvmt"),
    ]
    lists = domain.mobilisation_lists(open_, who, ["unit_head", "union_secretary"])
    assert {pid: names for pid, (_, names) in lists.items()} == {
        "p-0007": ("Lý Thị Mỹ Linh",),
        "p-0015": ("Kim Văn Sơn",),
        "p-0012": ("Kim Văn Sơn", "Lý Thị Mỹ Linh"),
        "p-0022": ("Lý Thị Mỹ Linh",),
    }
    only_heads = domain.mobilisation_lists(open_, who, ["unit_head"])
    assert set(only_heads) == {"p-0007", "p-0015"}


def test_mobilisation_window_is_daily_at_the_set_time_and_never_stale(edition) -> None:  # type: ignore[no-untyped-def]
    part = edition.part("experience")
    assert isinstance(part, ExperienceReportPart) and part.mobilisation_lists is not None
    deadline = edition.deadline_of("experience")

    def vn(d: int, h: int, m: int = 0) -> datetime:
        return datetime(2023, 10, d, h, m, tzinfo=domain.VN)

    assert domain.mobilisation_day(part, deadline, vn(18, 9)) is None  # before the window (P7D)
    assert domain.mobilisation_day(part, deadline, vn(19, 7, 59)) is None
    assert domain.mobilisation_day(part, deadline, vn(19, 8)) == date(2023, 10, 19)
    assert domain.mobilisation_day(part, deadline, vn(20, 7)) == date(2023, 10, 19)
    assert domain.mobilisation_day(part, deadline, vn(25, 23, 59)) == date(2023, 10, 25)
    assert domain.mobilisation_day(part, deadline, vn(26, 8)) is None  # deadline passed


def test_digest_and_quiet_hours_schedule_only_non_urgent_mail() -> None:
    digest = domain.Preference(mode="digest")
    at_night = datetime(2023, 10, 20, 22, 0, tzinfo=domain.VN)
    early = datetime(2023, 10, 21, 6, 0, tzinfo=domain.VN)
    assert domain.schedule("initiative.selected", digest, at_night) == domain.Schedule(
        held=True, digest_on=date(2023, 10, 21)
    )
    assert domain.schedule("initiative.selected", digest, early).digest_on == date(2023, 10, 21)
    assert domain.schedule("initiative.selected", digest, early.replace(hour=7, minute=30)).digest_on == date(
        2023, 10, 22
    )
    for urgent in (
        "submission.received",
        "deadline.approaching",
        "deadline.missed",
        "deadline.passed.mobiliser",
        "deadline.extended",
    ):
        assert domain.schedule(urgent, digest, at_night) == domain.Schedule()
    quiet = domain.Preference(quiet_from=time(21, 0), quiet_to=time(7, 0))
    assert domain.schedule("initiative.scored", quiet, at_night).due_at == datetime(
        2023, 10, 21, 7, 0, tzinfo=domain.VN
    )
    assert domain.schedule("initiative.scored", quiet, early).due_at == datetime(
        2023, 10, 21, 7, 0, tzinfo=domain.VN
    )
    assert domain.schedule("initiative.scored", quiet, early.replace(hour=12)).due_at is None
    assert domain.schedule("deadline.missed", quiet, at_night).due_at is None
    assert domain.digest_due(date(2023, 10, 21), datetime(2023, 10, 21, 7, 30, tzinfo=domain.VN))
    assert not domain.digest_due(date(2023, 10, 21), datetime(2023, 10, 21, 7, 29, tzinfo=domain.VN))


def test_timed_messages_are_one_per_kind_recipient_and_date() -> None:
    a = domain.timed_id(
        domain.MOBILISATION, "p-0007", date(2023, 10, 20), domain.EMAIL, "t", "2023", "experience"
    )
    assert a == domain.timed_id(
        domain.MOBILISATION, "p-0007", date(2023, 10, 20), domain.EMAIL, "t", "2023", "experience"
    )
    assert a != domain.timed_id(
        domain.MOBILISATION, "p-0007", date(2023, 10, 21), domain.EMAIL, "t", "2023", "experience"
    )
    assert a != domain.timed_id(domain.DIGEST, "p-0007", date(2023, 10, 20), domain.EMAIL, "t")


def test_webhook_signature_verifies_only_with_the_shared_secret() -> None:
    body = b'{"type":"submission.received"}'
    sig = domain.sign("s3cret-s3cret-s3cret", body)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert domain.signature_valid("s3cret-s3cret-s3cret", body, sig)
    assert not domain.signature_valid("another-secret-value", body, sig)
    assert not domain.signature_valid("s3cret-s3cret-s3cret", body + b" ", sig)
    assert domain.webhook_wants([], "x.y") and domain.webhook_wants(["deadline.*"], "deadline.missed")
    assert not domain.webhook_wants(["deadline.*"], "submission.received")


def test_retry_backoff_is_exponential_with_a_cap() -> None:
    base, cap = timedelta(seconds=1), timedelta(seconds=10)
    assert [domain.retry_delay(n, base, cap).total_seconds() for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]


# ------------------------------------------------------------------------------------------ templates as data


def test_the_builtin_template_set_is_valid_and_covers_every_trigger() -> None:
    assert rendering.check(rendering.BUILTIN) == []
    for name in domain.TEMPLATES:
        assert (rendering.BUILTIN / "vi" / f"{name}.j2").exists(), name


def test_an_override_with_a_syntax_error_is_refused_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "vi").mkdir()
    bad = tmp_path / "vi" / "deadline.missed.j2"
    bad.write_text(
        "{% block subject %}Quá hạn{% endblock %}\n{% block text %}\n{% if x %}\n{% endblock %}\n",
        encoding="utf-8",
    )
    problems = rendering.check(tmp_path)
    assert len(problems) == 1 and problems[0].startswith(f"{bad}:4:"), problems
    with pytest.raises(rendering.TemplateSetError, match=r"deadline\.missed\.j2:4"):
        rendering.environment(tmp_path)


def test_an_override_naming_an_unknown_event_type_is_refused(tmp_path: Path) -> None:
    (tmp_path / "vi").mkdir()
    (tmp_path / "vi" / "deadline.misssed.j2").write_text(
        "{% block subject %}x{% endblock %}", encoding="utf-8"
    )
    (tmp_path / "vi" / "deadline.missed.extra.j2").write_text(
        "{% block subject %}x{% endblock %}", encoding="utf-8"
    )
    problems = rendering.check(tmp_path)
    assert any("deadline.misssed.j2:1: unknown event type" in p for p in problems), problems
    assert any("deadline.missed.extra.j2:1: no message is sent from template" in p for p in problems), (
        problems
    )


def test_a_valid_override_replaces_the_builtin_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "vi").mkdir()
    (tmp_path / "vi" / "deadline.missed.j2").write_text(
        "{% block subject %}QUÁ HẠN — {{ part_title }}{% endblock %}{% block text %}Kính gửi {{ person_name }}: quá hạn.{% endblock %}"
        "{% block html %}<b>{{ person_name }}</b>{% endblock %}",
        encoding="utf-8",
    )
    monkeypatch.setenv(rendering.OVERRIDE_ENV, str(tmp_path))
    msg = rendering.render("deadline.missed", {"part_title": "Sáng kiến", "person_name": "Hồ <My>"})
    assert msg.subject == "QUÁ HẠN — Sáng kiến" and msg.text.startswith("Kính gửi Hồ <My>: quá hạn.")
    assert msg.html.strip() == "<b>Hồ &lt;My&gt;</b>"
    # untouched templates still come from the built-in set
    assert (
        "Biên nhận"
        in rendering.render_receipt(domain.Receipt("R-1", "2023", AT, "initiative", "initiative")).subject
    )


def test_the_selection_message_names_the_level_council_and_secretariat_the_edition_and_directory_give(
    edition, who
) -> None:  # type: ignore[no-untyped-def]
    """Another tenant's edition sends its selected initiatives to the district contest, under its own council
    and a secretariat in its own office: nothing of the 2023 demo's wording may remain."""
    parts = [
        p.model_copy(update={"destination": "cấp huyện"}) if p.kind == "selection" else p
        for p in edition.parts
    ]
    council = edition.councils["initiative-council"].model_copy(update={"name": "Hội đồng sáng kiến huyện"})
    theirs = edition.model_copy(
        update={"parts": parts, "councils": {**edition.councils, "initiative-council": council}}
    )
    office = who.units["u-vp"].model_copy(update={"name": "Văn phòng HĐND và UBND huyện"})
    directory = domain.People(who.people, {**who.units, "u-vp": office}, who.unions)
    planned = compose.plan(
        "initiative.selected",
        EXAMPLES["initiative.selected"],
        edition=theirs,
        edition_name="2023",
        who=directory,
        event_time=AT,
    )
    msg = rendering.render(planned[0].template, planned[0].context)
    assert msg.subject == "Sáng kiến được chọn dự thi cấp huyện (hạng 1)"
    assert (
        "Hội đồng sáng kiến huyện đã chọn sáng kiến s-9" in msg.text and "để gửi dự thi cấp huyện" in msg.text
    )
    assert "Thường trực Hội thi (Văn phòng HĐND và UBND huyện)" in msg.text
    assert "cấp tỉnh" not in msg.text + msg.subject and "Văn phòng Sở" not in msg.text

    # The 2023 seed says it itself: provincial contest, its council, its office.
    [m] = [
        m
        for m in compose.plan(
            "initiative.selected",
            EXAMPLES["initiative.selected"],
            edition=edition,
            edition_name="2023",
            who=who,
            event_time=AT,
        )
        if m.person.id == "p-0009"
    ]
    ours = rendering.render(m.template, m.context)
    assert ours.subject == "Sáng kiến được chọn dự thi cấp tỉnh (hạng 1)"
    assert "Hội đồng xét sáng kiến đã chọn" in ours.text and "Thường trực Hội thi (Văn phòng Sở)" in ours.text

    # An edition that names no destination names no level.
    bare = theirs.model_copy(
        update={"parts": [p.model_copy(update={"destination": None}) for p in theirs.parts]}
    )
    [m, *_] = compose.plan(
        "initiative.selected",
        EXAMPLES["initiative.selected"],
        edition=bare,
        edition_name="2023",
        who=directory,
        event_time=AT,
    )
    plain = rendering.render(m.template, m.context)
    assert plain.subject == "Sáng kiến được chọn (hạng 1)" and "dự thi" not in plain.text


def test_standing_changes_tell_only_of_eligibility_gained_or_lost(edition, who) -> None:  # type: ignore[no-untyped-def]
    def plan(**over: Any) -> list[compose.Planned]:
        data = {**EXAMPLES["reward.priority.changed"], **over}
        return compose.plan(
            "reward.priority.changed", data, edition=edition, edition_name="2023", who=who, event_time=AT
        )

    assert plan(previous_eligibility=["chien_si_thi_dua_co_so"], rank=2) == []  # a rank move only
    [lost] = plan(previous_eligibility=["chien_si_thi_dua_co_so"], eligibility=[])
    msg = rendering.render(lost.template, lost.context)
    assert msg.subject == "Danh hiệu thi đua: không còn đủ điều kiện Chiến sĩ thi đua cơ sở"
    [unit] = plan(participant_kind="unit", participant_id="u-ccbvmt", eligibility=["giay_khen"])
    assert unit.person.id == "p-0015"  # the unit's head
    assert "Đơn vị Chi cục Bảo vệ môi trường" in rendering.render(unit.template, unit.context).text

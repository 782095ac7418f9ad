"""The event catalogue: committed schemas stay compatible, the compatibility check itself, and round trips."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from shared import documents
from shared.events import catalogue
from shared.events.asyncapi import asyncapi_document, asyncapi_html
from shared.events.catalogue import CATALOGUE, REWARD_FACT_KINDS, VERSIONS, event_type, parse_data
from shared.events.compat import incompatibilities
from shared.events.schemas import SCHEMA_DIR, data_schema, render, schema_filename, write_schemas
from shared.settings import Settings
from shared.streams import CONSUMERS

VN = timezone(timedelta(hours=7))
DEADLINE = datetime(2023, 10, 26, 0, 0, tzinfo=VN)
AT = datetime(2023, 10, 25, 23, 59, 59, 999999, tzinfo=VN)

ARCHITECTURE_TYPES = {
    "edition.published", "edition.opened", "edition.closed", "directory.unit.changed",
    "directory.person.changed", "procedure.catalogue.changed", "assignment.created", "assignment.fulfilled",
    "assignment.reopened", "deadline.approaching", "deadline.missed", "deadline.passed", "deadline.extended",
    "intake.closed", "submission.received", "submission.revised", "submission.withdrawn", "submission.rejected",
    "submission.reinstated", "initiative.scored", "initiative.selected", "onlineservice.progress.reported",
    "onlineservice.target.reached", "onlineservice.target.missed", "reward.priority.changed",
    "notification.sent", "notification.failed", "deadletter.recorded",
}  # fmt: skip


# ------------------------------------------------------------------------------------------- example factory

_CHANGE = {"submission_id": "s-1", "kind": "initiative", "part": "initiative", "author_id": "p-0001",
           "unit_id": "u-vp", "at": AT}  # fmt: skip
_ASSIGNMENT = {
    "assignment_id": "a-1",
    "part": "experience",
    "assignee_kind": "person",
    "assignee_id": "p-0002",
}
_TARGETS = {"assignment_id": "a-9", "part": "online90", "unit_id": "u-vpdkdd", "at": DEADLINE,
            "figures": {"full_process_share_of_eligible": 0.85}, "targets": {"full_process_share_of_eligible": 0.8}}  # fmt: skip
_NOTIFICATION = {"notification_id": "n-1", "channel": "email", "recipient": "p-0002", "template": "reminder",
                 "cause_event_id": "0190f2a0-0000-7000-8000-000000000000"}  # fmt: skip

EDITION = {
    "tenant": "soctrang-stnmt",
    "edition": "2023",
    "title": "Hội thi Cải cách hành chính năm 2023",
    "opens": "2023-08-21",
    "closes": "2023-12-31",
    "parts": [
        {"id": "initiative", "kind": "initiative", "deadline": "2023-10-25",
         "assignees": {"units": {"kinds": ["office", "division"]}}},
    ],
}  # fmt: skip


def example(type_: str) -> dict[str, Any]:
    """A minimal valid ``data`` of each event type (as a producer would pass it)."""
    examples: dict[str, dict[str, Any]] = {
        "edition.published": {"version": 1, "document": EDITION},
        "edition.opened": {"at": datetime(2023, 8, 21, tzinfo=VN)},
        "edition.closed": {"at": datetime(2024, 1, 1, tzinfo=VN)},
        "directory.unit.changed": {"unit": {"id": "u-vp", "code": "VP", "name": "Văn phòng Sở", "kind": "office"}},
        "directory.person.changed": {"person": {"id": "p-0002", "name": "Trần Văn Minh", "email": "minh.tv@example.vn",
                                                "title": "Chuyên viên", "unit": "u-vpdkdd-cn1"}},
        "procedure.catalogue.changed": {"unit_id": "u-vpdkdd", "at": AT, "procedures": [
            {"code": "1.004227", "name": "Đăng ký biến động đất đai", "level": "full_process",
             "eligible_full_process": True}]},
        "assignment.created": {**_ASSIGNMENT, "part_kind": "experience_report", "unit_id": "u-vpdkdd-cn1",
                               "deadline": DEADLINE},
        "assignment.fulfilled": {**_ASSIGNMENT, "unit_id": "u-vpdkdd-cn1", "submission_id": "s-2",
                                 "fulfilled_at": AT, "deadline": DEADLINE, "on_time": True},
        "assignment.reopened": {**_ASSIGNMENT, "reason": "submission.withdrawn", "submission_id": "s-2"},
        "deadline.approaching": {"assignment_id": "a-1", "part": "experience", "assignee_id": "p-0002",
                                 "deadline": DEADLINE, "offset": "P3D"},
        "deadline.missed": {**_ASSIGNMENT, "unit_id": "u-vpdkdd-cn1", "deadline": DEADLINE},
        "deadline.passed": {"part": "experience", "deadline": DEADLINE, "assigned": 2, "fulfilled": 1,
                            "missed_by_unit": {"u-vpdkdd-cn1": ["p-0002"]}},
        "deadline.extended": {"assignment_id": "a-1", "part": "experience", "assignee_id": "p-0002",
                              "previous_deadline": DEADLINE, "new_deadline": DEADLINE + timedelta(days=3),
                              "reason": "ốm", "approved_by": "p-0001"},
        "intake.closed": {"part": "experience", "deadline": DEADLINE, "accepted_on_time": 1},
        "submission.received": {"submission_id": "s-2", "kind": "experience_report", "part": "experience",
                                "receipt_number": "2023-000002", "received_at": AT, "author_id": "p-0002",
                                "unit_id": "u-vpdkdd-cn1", "union_ids": ["cd"],
                                "authors": [{"person_id": "p-0002", "name": "Trần Văn Minh", "share": 100}],
                                "procedures": ["1.004227", "1.000494", "1.011442", "2.000889", "1.001990"]},
        "submission.revised": {**_CHANGE, "revision": 2, "title": "Số hoá hồ sơ"},
        "submission.withdrawn": {**_CHANGE},
        "submission.rejected": {**_CHANGE, "reason": "Không đúng thể lệ"},
        "submission.reinstated": {**_CHANGE},
        "initiative.scored": {"submission_id": "s-1", "part": "selection", "council_id": "initiative-council",
                              "member_id": "p-0001", "scores": {"novelty": 25, "effectiveness": 30},
                              "total": 55, "at": AT},
        "initiative.selected": {"submission_id": "s-1", "part": "selection", "unit_id": "u-vp", "at": AT},
        "onlineservice.progress.reported": {"assignment_id": "a-9", "part": "online90", "unit_id": "u-vpdkdd",
                                            "period_start": datetime(2023, 8, 21, tzinfo=VN),
                                            "period_end": datetime(2023, 8, 28, tzinfo=VN),
                                            "figures": {"online_dossier_share": 0.4}},
        "onlineservice.target.reached": {**_TARGETS},
        "onlineservice.target.missed": {**_TARGETS, "unmet": ["on_time_share"]},
        "reward.priority.changed": {"participant_kind": "person", "participant_id": "p-0002", "rank": 3,
                                    "points": 1.0, "rules_version": 1,
                                    "reasons": [{"vi": "Đã nộp bài trải nghiệm", "en": "Submitted a report"}]},
        "notification.sent": {**_NOTIFICATION},
        "notification.failed": {**_NOTIFICATION, "error": "550 mailbox unavailable"},
        "deadletter.recorded": {"service": "rewards", "consumer": "rewards-ledger-v1", "reason": "invalid_payload",
                                "error": "ValidationError", "original_subject": "hoithi.t.submission.received",
                                "stream": "HOITHI", "stream_sequence": 42, "deliveries": 1,
                                "original_headers": {"Nats-Msg-Id": "x"}, "original_base64": "e30="},
    }  # fmt: skip
    return examples[type_]


# ----------------------------------------------------------------------------------------------- catalogue


def test_catalogue_holds_exactly_the_architecture_types() -> None:
    assert set(CATALOGUE) == ARCHITECTURE_TYPES


def test_every_entry_is_described() -> None:
    for type_, spec in CATALOGUE.items():
        assert spec.type == type_ and spec.version >= 1
        assert spec.producer in {"campaign", "submissions", "rewards", "notify", "any"}
        assert spec.summary and spec.subject
        assert issubclass(spec.data, BaseModel)
        assert spec.data.model_config.get("extra") == "ignore", type_


def test_unknown_type_or_version_is_a_clear_key_error() -> None:
    with pytest.raises(KeyError, match="unknown event type 'submission.recieved'"):
        event_type("submission.recieved")
    with pytest.raises(KeyError, match="no dataschemaversion 99"):
        parse_data("submission.received", example("submission.received"), version=99)


@pytest.mark.parametrize("type_", sorted(ARCHITECTURE_TYPES))
def test_example_round_trips_through_json(type_: str) -> None:
    model = parse_data(type_, example(type_))
    assert isinstance(model, CATALOGUE[type_].data)
    wire = json.loads(model.model_dump_json())
    again = parse_data(type_, wire)
    assert again == model
    assert again.model_dump(mode="json") == wire


def test_consumers_ignore_an_added_field_even_inside_documents() -> None:
    data = example("edition.published")
    data = {**data, "new_optional": 1, "document": {**data["document"], "added_later": "x"}}
    model = parse_data("edition.published", data)
    assert isinstance(model, catalogue.EditionPublished)
    assert isinstance(model.document, documents.Edition)


def test_business_instants_must_carry_an_offset() -> None:
    naive = {**example("deadline.missed"), "deadline": "2023-10-26T00:00:00"}
    with pytest.raises(ValidationError):
        parse_data("deadline.missed", naive)


def test_a_unit_change_carries_exactly_one_of_unit_and_union() -> None:
    union = {"id": "cd", "name": "Chi đoàn Sở Tài nguyên và Môi trường", "kind": "youth_union"}
    assert parse_data("directory.unit.changed", {"union": union}).union.id == "cd"  # type: ignore[attr-defined]
    with pytest.raises(ValidationError):
        parse_data("directory.unit.changed", {})
    with pytest.raises(ValidationError):
        parse_data("directory.unit.changed", {**example("directory.unit.changed"), "union": union})


def test_reward_fact_kinds_name_event_types_of_the_catalogue() -> None:
    for kind in REWARD_FACT_KINDS:
        assert kind.split("/")[0] in CATALOGUE, kind
    assert {"submission.received/experience", "submission.received/initiative", "initiative.selected",
            "onlineservice.target.reached", "deadline.missed"} <= set(REWARD_FACT_KINDS)  # fmt: skip
    assert {f"assignment.fulfilled/{k}" for k in catalogue.PART_KINDS} <= set(REWARD_FACT_KINDS)


# ------------------------------------------------------------------------------------------ committed schemas


def test_every_catalogue_type_has_a_compatible_committed_schema() -> None:
    problems: list[str] = []
    for (type_, version), spec in sorted(VERSIONS.items()):
        path = SCHEMA_DIR / schema_filename(type_, version)
        if not path.exists():
            problems.append(f"{path.name}: missing (run python -m shared.events.schemas)")
            continue
        committed = json.loads(path.read_text(encoding="utf-8"))
        problems += [f"{path.name}: {p}" for p in incompatibilities(committed, data_schema(spec))]
    assert problems == [], "\n".join(problems)


def test_no_stray_schema_files() -> None:
    expected = {schema_filename(t, v) for (t, v) in VERSIONS}
    assert {p.name for p in SCHEMA_DIR.glob("*.json")} == expected


def test_write_schemas_writes_sorted_json_with_trailing_newline(tmp_path: Path) -> None:
    paths = write_schemas(tmp_path)
    assert {p.name for p in paths} == {schema_filename(t, v) for (t, v) in VERSIONS}
    text = (tmp_path / "submission.received.v1.json").read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert text == render(json.loads(text))


def test_write_schemas_refuses_an_incompatible_overwrite(tmp_path: Path) -> None:
    write_schemas(tmp_path)
    path = tmp_path / "intake.closed.v1.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    schema["properties"]["gone"] = {"type": "string"}
    path.write_text(render(schema), encoding="utf-8")
    with pytest.raises(ValueError, match="data.gone: removed"):
        write_schemas(tmp_path)
    write_schemas(tmp_path, allow_incompatible=True)
    assert "gone" not in json.loads(path.read_text(encoding="utf-8"))["properties"]


# ---------------------------------------------------------------------------------------- incompatibilities


class _Open(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AuthorV1(_Open):
    person_id: str | None = None
    name: str
    share: float


class ReceivedV1(_Open):
    submission_id: str
    kind: Literal["experience_report", "initiative"]
    authors: list[AuthorV1]
    tally: dict[str, int] = {}
    note: str | None = None


def _diff(old: type[BaseModel], new: type[BaseModel]) -> list[str]:
    return incompatibilities(old.model_json_schema(), new.model_json_schema())


def test_same_model_is_compatible() -> None:
    assert _diff(ReceivedV1, ReceivedV1) == []


def test_adding_an_optional_field_is_compatible() -> None:
    class Received(ReceivedV1):
        channel: str | None = None
        tags: list[str] = []

    assert _diff(ReceivedV1, Received) == []


def test_adding_an_optional_field_to_a_nested_model_is_compatible() -> None:
    class Author(AuthorV1):
        title: str | None = None

    class Received(ReceivedV1):
        authors: list[Author]  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == []


def test_renaming_the_nested_model_class_alone_is_compatible() -> None:
    class Writer(_Open):
        person_id: str | None = None
        name: str
        share: float

    class Received(ReceivedV1):
        authors: list[Writer]  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == []


def test_removing_a_field_is_incompatible() -> None:
    class Received(_Open):
        submission_id: str
        kind: Literal["experience_report", "initiative"]
        authors: list[AuthorV1]
        tally: dict[str, int] = {}

    assert _diff(ReceivedV1, Received) == ["data.note: removed"]


def test_renaming_a_field_is_incompatible() -> None:
    class Received(_Open):
        id: str
        kind: Literal["experience_report", "initiative"]
        authors: list[AuthorV1]
        tally: dict[str, int] = {}
        note: str | None = None

    assert _diff(ReceivedV1, Received) == ["data.submission_id: removed", "data.id: new required property"]


def test_retyping_a_nested_field_is_incompatible() -> None:
    class Author(_Open):
        person_id: str | None = None
        name: str
        share: str

    class Received(ReceivedV1):
        authors: list[Author]  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == ["data.authors[].share: type changed number -> string"]


def test_retyping_dictionary_values_is_incompatible() -> None:
    class Received(ReceivedV1):
        tally: dict[str, str] = {}  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == ["data.tally.<key>: type changed integer -> string"]


def test_a_list_becoming_a_single_value_is_incompatible() -> None:
    class Received(ReceivedV1):
        authors: AuthorV1  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == ["data.authors: type changed array -> object"]


def test_making_an_optional_field_required_is_incompatible() -> None:
    class Received(ReceivedV1):
        note: str | None  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == ["data.note: made required"]


def test_making_a_field_nullable_is_incompatible() -> None:
    class Received(ReceivedV1):
        submission_id: str | None  # type: ignore[assignment]

    assert _diff(ReceivedV1, Received) == ["data.submission_id: type changed string -> null|string"]


def test_making_a_required_field_optional_is_incompatible() -> None:
    class Received(ReceivedV1):
        submission_id: str = "?"

    assert _diff(ReceivedV1, Received) == ["data.submission_id: made optional (old consumers require it)"]


def test_adding_a_required_field_is_incompatible() -> None:
    class Received(ReceivedV1):
        receipt_number: str

    assert _diff(ReceivedV1, Received) == ["data.receipt_number: new required property"]


def test_narrowing_or_widening_an_enum_is_incompatible() -> None:
    class Narrower(ReceivedV1):
        kind: Literal["initiative"]  # type: ignore[assignment]

    class Wider(ReceivedV1):
        kind: Literal["experience_report", "initiative", "selection"]  # type: ignore[assignment]

    narrowed = _diff(ReceivedV1, Narrower)
    assert len(narrowed) == 1 and '"experience_report"' in narrowed[0] and "narrowed" in narrowed[0]
    assert _diff(ReceivedV1, Wider) == [
        'data.kind: enum widened, now allows "selection" (old consumers refuse them)'
    ]


def test_a_changed_constraint_is_incompatible() -> None:
    old = {"type": "object", "properties": {"share": {"type": "number", "maximum": 100}}}
    new = {"type": "object", "properties": {"share": {"type": "number", "maximum": 1}}}
    assert incompatibilities(old, new) == ["data.share: maximum changed 100 -> 1"]


def test_annotations_alone_are_compatible() -> None:
    old = {"type": "object", "title": "A", "properties": {"x": {"type": "string", "description": "one"}}}
    new = {"type": "object", "title": "B", "properties": {"x": {"type": "string", "description": "two",
                                                                 "examples": ["x"], "default": "x"}}}  # fmt: skip
    assert incompatibilities(old, new) == []


def test_adding_a_property_to_a_closed_object_is_incompatible() -> None:
    old = {"type": "object", "additionalProperties": False, "properties": {"x": {"type": "string"}}}
    new = {**old, "properties": {"x": {"type": "string"}, "y": {"type": "string"}}}
    assert incompatibilities(old, new) == [
        "data.y: added to an object that refuses unknown properties (additionalProperties: false)"
    ]


def test_refs_are_resolved_inline_or_through_defs_alike() -> None:
    inline = {
        "type": "object",
        "properties": {"a": {"type": "object", "properties": {"b": {"type": "integer"}}}},
    }
    by_ref = {"$defs": {"A": {"type": "object", "properties": {"b": {"type": "string"}}}},
              "type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}  # fmt: skip
    assert incompatibilities(inline, by_ref) == ["data.a.b: type changed integer -> string"]


def test_recursive_models_terminate() -> None:
    class Node(_Open):
        name: str
        children: list[Node] = []
        parent: Node | None = None

    class NodeV2(_Open):
        name: int
        children: list[NodeV2] = []
        parent: NodeV2 | None = None

    assert _diff(Node, Node) == []
    assert "data.name: type changed string -> integer" in _diff(Node, NodeV2)


# ------------------------------------------------------------------------------------------------- AsyncAPI


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("%2A", "*")]  # FastStream escapes the wildcard of a filter subject
    return node


def test_asyncapi_document_is_generated_by_faststream_with_each_types_schema_from_the_catalogue() -> None:
    doc = json.loads(json.dumps(asyncapi_document()))
    assert doc["asyncapi"] == "3.0.0"
    sends = {op["channel"]["$ref"] for op in doc["operations"].values() if op["action"] == "send"}
    for type_ in CATALOGUE:
        channel = doc["channels"][type_]
        assert channel["address"] == f"hoithi.{{tenant}}.{type_}"
        assert f"#/channels/{type_}" in sends
        [ref] = channel["messages"].values()
        payload = _resolve(doc, _resolve(doc, ref["$ref"])["payload"]["$ref"])
        # one envelope per version still accepted (a retired version stays until its consumers are gone)
        envelopes = [_resolve(doc, r["$ref"]) for r in payload.get("anyOf", payload.get("oneOf", []))] or [
            payload
        ]
        assert len(envelopes) == sum(1 for t, _ in VERSIONS if t == type_)
        for envelope in envelopes:
            assert envelope["properties"]["type"]["const"] == type_
            data = _resolve(doc, envelope["properties"]["data"]["$ref"])
            version = envelope["properties"]["dataschemaversion"]["const"]
            catalogued = VERSIONS[(type_, version)].data.model_json_schema()
            assert data["properties"].keys() == catalogued["properties"].keys()
            assert data.get("required", []) == catalogued.get("required", [])
    # and every durable receives on each of its filter subjects
    receives = {op["channel"]["$ref"] for op in doc["operations"].values() if op["action"] == "receive"}
    for c in CONSUMERS:
        for subject in c.filter_subjects(Settings(env="test")):
            assert f"#/channels/{c.durable}:{subject}".replace("*", "%2A") in receives


def test_asyncapi_refs_all_resolve() -> None:
    doc = asyncapi_document(prefix="test-x")

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert isinstance(_resolve(doc, ref), dict), ref
    assert all(doc["channels"][t]["address"].startswith("test-x.{tenant}.") for t in CATALOGUE)


def test_asyncapi_html_is_self_contained_and_lists_every_type() -> None:
    page = asyncapi_html(asyncapi_document())
    assert page.startswith("<!doctype html>")
    assert (
        "<script" not in page
        and "http://" not in page.replace("http://json-schema", "")
        and "cdn" not in page
    )
    for type_, spec in CATALOGUE.items():
        assert f"hoithi.{{tenant}}.{type_}" in page
        assert spec.summary.split(",")[0].replace("'", "&#x27;") in page


SEED = Path(__file__).parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"


@pytest.mark.skipif(not (SEED / "edition.yaml").exists(), reason="no demo seed in this checkout")
def test_the_demo_edition_and_directory_travel_as_events() -> None:
    edition = documents.load_edition(SEED / "edition.yaml")
    published = catalogue.EditionPublished(version=edition.version, document=edition)
    wire = json.loads(published.model_dump_json())
    assert parse_data("edition.published", wire) == published
    directory = documents.load_directory(SEED / "directory.yaml")
    for unit in directory.units:
        assert parse_data("directory.unit.changed", {"unit": unit.model_dump(mode="json")}).unit == unit  # type: ignore[attr-defined]
    for union in directory.unions:
        assert parse_data("directory.unit.changed", {"union": union.model_dump(mode="json")}).union == union  # type: ignore[attr-defined]
    for person in directory.people:
        wire = {"person": person.model_dump(mode="json")}
        assert parse_data("directory.person.changed", wire, 1).person == person  # type: ignore[attr-defined]
        # v2 carries no date of birth and no qualification: only campaign's directory keeps them
        fact = parse_data("directory.person.changed", wire).person  # type: ignore[attr-defined]
        assert fact == catalogue.PersonFact.of(person)
        assert not {"date_of_birth", "qualification"} & set(fact.model_dump())

"""The directory and edition documents: seed, time rule, validation, procedure codes, formatting, schemas."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from shared.documents import (
    SCHEMA_DIR,
    Directory,
    Edition,
    Role,
    UnitKind,
    check_edition_against_directory,
    deadline_instant,
    document_schemas,
    dump_yaml,
    format_date_vn,
    format_datetime_vn,
    load_directory,
    load_document_data,
    load_edition,
    national_procedure_code,
    parse_duration,
    write_document_schemas,
)

SEED = Path(__file__).resolve().parents[3] / "deploy" / "seed" / "soctrang-stnmt-2023"
VN = ZoneInfo("Asia/Ho_Chi_Minh")


@pytest.fixture(scope="module")
def directory() -> Directory:
    return load_directory(SEED / "directory.yaml")


@pytest.fixture(scope="module")
def edition() -> Edition:
    return load_edition(SEED / "edition.yaml")


@pytest.fixture
def edition_data() -> dict:
    return copy.deepcopy(load_document_data(SEED / "edition.yaml"))


@pytest.fixture
def directory_data() -> dict:
    return copy.deepcopy(load_document_data(SEED / "directory.yaml"))


def _error_locs(exc: ValidationError) -> str:
    return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())


# ------------------------------------------------------------------------------------------------ seed


def test_seed_directory_loads(directory: Directory) -> None:
    assert directory.tenant == "soctrang-stnmt"
    codes = {u.code for u in directory.units}
    assert {"VP", "TNN-KS", "TNB-BDKH", "CCQLDD", "CCBVMT", "VPDKDD", "TTCNTT"} <= codes
    assert {u.kind for u in directory.units if u.parent == "u-vpdkdd"} == {UnitKind.branch}
    assert len(directory.children("u-vpdkdd")) == 2
    assert {u.id: u.kind for u in directory.unions} == {"cd": "youth_union", "cdcs": "trade_union"}
    minh = directory.person("p-0002")
    assert (minh.name, minh.unit, minh.unions, minh.roles) == (
        "Trần Văn Minh",
        "u-vpdkdd-cn1",
        ["cd", "cdcs"],
        [Role.official],
    )
    assert len({p.id for p in directory.people}) >= 25
    # every unit and branch has a head; there is a director, a secretariat, union secretaries, a council chair
    for u in directory.units:
        assert any(p.unit == u.id and p.has_role("unit_head") for p in directory.people), u.code
    for role in (Role.director, Role.secretariat, Role.union_secretary, Role.council_chair, Role.admin):
        assert any(role in p.roles for p in directory.people), role
    council = [p for p in directory.people if p.has_role(Role.council_member)]
    assert len(council) >= 5 and len({p.unit for p in council}) == len(council)


def test_seed_edition_loads_and_matches_directory(edition: Edition, directory: Directory) -> None:
    assert (edition.tenant, edition.edition, edition.version) == ("soctrang-stnmt", "2023", 1)
    assert [p.kind for p in edition.parts] == [
        "initiative",
        "selection",
        "experience_report",
        "online_services_campaign",
    ]
    assert check_edition_against_directory(edition, directory) == []
    initiative_units = directory.select_units(edition.part("initiative").assignees.units, edition.opens)
    assert sorted(u.code for u in initiative_units) == sorted(
        ["VP", "TNN-KS", "TNB-BDKH", "CCQLDD", "CCBVMT", "VPDKDD", "TTCNTT"]
    )
    experience = edition.part("experience")
    assert experience.min_distinct_procedures == 5
    assert experience.reminders == ["P7D", "P3D", "P1D"]
    assert experience.reminder_deltas == [timedelta(days=7), timedelta(days=3), timedelta(days=1)]
    campaign_units = directory.select_units(edition.part("online90").assignees.units, edition.opens)
    assert len(campaign_units) == 6
    assert edition.part("selection").rubric.max_total == 100


def test_effective_dated_person_rows(directory: Directory) -> None:
    assert directory.person("p-0014", date(2023, 6, 30)).unit == "u-ccqldd"
    assert directory.person("p-0014", date(2023, 7, 1)).unit == "u-vpdkdd-cn2"
    assert directory.person("p-0014").unit == "u-vpdkdd-cn2"
    ids = [p.id for p in directory.people_as_of(date(2023, 10, 20))]
    assert len(ids) == len(set(ids))
    assert "u-vpdkdd-cn1" in {u.id for u in directory.units_as_of(date(2023, 10, 20))}
    assert directory.unit("u-vp").code == "VP"
    with pytest.raises(KeyError):
        directory.person("p-9999")


def test_dump_yaml_round_trips(tmp_path: Path, edition: Edition, directory: Directory) -> None:
    for name, model, loader in (("e.yaml", edition, load_edition), ("d.yaml", directory, load_directory)):
        path = tmp_path / name
        path.write_text(dump_yaml(model), encoding="utf-8")
        assert loader(path) == model
    text = dump_yaml(edition)
    assert "grace: PT0S" in text and "duration: P90D" in text and "Hội thi" in text
    path = tmp_path / "e.json"
    path.write_text(edition.model_dump_json(by_alias=True), encoding="utf-8")
    assert load_edition(path) == edition


# ------------------------------------------------------------------------------------------------ time


def test_bare_date_deadline_is_exclusive_end_of_day(edition: Edition) -> None:
    deadline = edition.deadline_of("initiative")
    assert deadline == datetime(2023, 10, 26, 0, 0, tzinfo=VN)
    assert deadline.isoformat() == "2023-10-26T00:00:00+07:00"
    assert deadline.utcoffset() == timedelta(hours=7)
    last_moment = datetime(2023, 10, 25, 23, 59, 59, 999999, tzinfo=VN)
    assert last_moment < deadline
    assert edition.is_on_time("initiative", last_moment)
    assert not edition.is_on_time("initiative", datetime(2023, 10, 26, 0, 0, tzinfo=VN))
    # the same instant in UTC
    assert edition.is_on_time("experience", datetime(2023, 10, 25, 16, 59, 59, 999999, tzinfo=UTC))
    assert not edition.is_on_time("experience", datetime(2023, 10, 25, 17, 0, tzinfo=UTC))
    assert edition.deadline_of("selection") == datetime(2023, 10, 31, tzinfo=VN)
    assert edition.intake_closes_at("initiative") == deadline  # grace PT0S


def test_campaign_deadline_is_start_plus_duration(edition: Edition) -> None:
    assert edition.deadline_of("online90") == datetime(2023, 8, 21, tzinfo=VN) + timedelta(days=90)
    assert edition.deadline_of("online90") == datetime(2023, 11, 19, tzinfo=VN)


def test_explicit_datetime_deadline_and_grace(edition_data: dict) -> None:
    edition_data["parts"][0]["deadline"] = "2023-10-25T17:00:00+07:00"
    edition_data["parts"][0]["grace"] = "PT12H"
    edition_data["parts"][2]["deadline"] = "2023-10-25T17:00:00"  # naive: read in the edition's timezone
    ed = Edition.model_validate(edition_data)
    assert ed.deadline_of("initiative") == datetime(2023, 10, 25, 17, tzinfo=VN)
    assert ed.intake_closes_at("initiative") == datetime(2023, 10, 26, 5, tzinfo=VN)
    assert ed.deadline_of("experience") == datetime(2023, 10, 25, 10, tzinfo=UTC)
    assert ed.deadline_of("experience").tzinfo is not None


def test_deadline_instant_helper_and_durations() -> None:
    assert deadline_instant(date(2023, 12, 31)) == datetime(2024, 1, 1, tzinfo=VN)
    assert parse_duration("P7D") == timedelta(days=7)
    assert parse_duration("PT0S") == timedelta(0)
    assert parse_duration("P90D") == timedelta(days=90)
    assert parse_duration("PT12H") == timedelta(hours=12)
    assert parse_duration("P1DT2H30M15S") == timedelta(days=1, hours=2, minutes=30, seconds=15)
    for bad in ("7D", "P", "PT", "P1M", "P1W", "P1Y", "", "P1DT"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ------------------------------------------------------------------------------------------------ validation


def test_deadline_before_opening_is_refused(edition_data: dict) -> None:
    edition_data["parts"][0]["deadline"] = "2023-08-01"
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "parts[0].deadline" in str(exc.value) and "opens" in str(exc.value)
    assert [e["loc"] for e in exc.value.errors()] == [("parts",)]


def test_closes_before_opens_is_refused(edition_data: dict) -> None:
    edition_data["closes"] = "2023-08-01"
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert [e["loc"] for e in exc.value.errors()] == [("closes",)]
    assert "before it opens" in str(exc.value)


def test_part_without_assignees_is_refused(edition_data: dict) -> None:
    edition_data["parts"][0]["assignees"] = {}
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "parts.0.initiative.assignees" in _error_locs(exc.value)
    assert "assigned to someone" in str(exc.value)

    del edition_data["parts"][0]["assignees"]
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "parts.0.initiative.assignees: Field required" in _error_locs(exc.value)

    edition_data["parts"][0]["assignees"] = {"units": {"kinds": []}}
    with pytest.raises(ValidationError):
        Edition.model_validate(edition_data)


def test_duplicate_part_ids_are_refused(edition_data: dict) -> None:
    edition_data["parts"][2]["id"] = "initiative"
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "duplicate part ids ['initiative']" in str(exc.value)
    assert [e["loc"] for e in exc.value.errors()] == [("parts",)]


def test_selection_must_refer_to_an_initiative_part(edition_data: dict) -> None:
    edition_data["parts"][1]["of"] = "experience"
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "parts[1].of" in str(exc.value)


def test_unknown_council_is_refused(edition_data: dict) -> None:
    edition_data["parts"][1]["assignees"] = {"council": "no-such-council"}
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(edition_data)
    assert "parts[1].assignees.council" in str(exc.value) and "no-such-council" in str(exc.value)


def test_unknown_part_kind_and_bad_values_are_refused(edition_data: dict) -> None:
    bad = copy.deepcopy(edition_data)
    bad["parts"][0]["kind"] = "quiz"
    with pytest.raises(ValidationError):
        Edition.model_validate(bad)
    bad = copy.deepcopy(edition_data)
    bad["parts"][0]["grace"] = "2 days"
    with pytest.raises(ValidationError) as exc:
        Edition.model_validate(bad)
    assert "grace" in _error_locs(exc.value)
    bad = copy.deepcopy(edition_data)
    bad["timezone"] = "Mars/Olympus"
    with pytest.raises(ValidationError, match="unknown timezone"):
        Edition.model_validate(bad)
    bad = copy.deepcopy(edition_data)
    bad["version"] = 0
    with pytest.raises(ValidationError):
        Edition.model_validate(bad)


def test_directory_validators(directory_data: dict) -> None:
    bad = copy.deepcopy(directory_data)
    bad["people"][0]["unit"] = "u-nowhere"
    with pytest.raises(ValidationError, match="unknown unit 'u-nowhere'"):
        Directory.model_validate(bad)
    bad = copy.deepcopy(directory_data)
    bad["people"][0]["unions"] = ["no-union"]
    with pytest.raises(ValidationError, match="unknown union 'no-union'"):
        Directory.model_validate(bad)
    bad = copy.deepcopy(directory_data)
    bad["units"].append(dict(bad["units"][0]))
    with pytest.raises(ValidationError, match="duplicate unit ids"):
        Directory.model_validate(bad)
    bad = copy.deepcopy(directory_data)
    bad["units"][-1]["parent"] = "u-nowhere"
    with pytest.raises(ValidationError, match="unknown parent"):
        Directory.model_validate(bad)
    bad = copy.deepcopy(directory_data)
    bad["people"].append(dict(bad["people"][0]))
    with pytest.raises(ValidationError, match="duplicate person id"):
        Directory.model_validate(bad)
    bad = copy.deepcopy(directory_data)
    bad["people"][0]["email"] = "not-an-email"
    with pytest.raises(ValidationError) as exc:
        Directory.model_validate(bad)
    assert "people.0.email" in _error_locs(exc.value)
    bad = copy.deepcopy(directory_data)
    bad["people"][0]["roles"] = ["emperor"]
    with pytest.raises(ValidationError):
        Directory.model_validate(bad)


# ------------------------------------------------------------------------------------------------ procedure codes


def test_procedure_codes_both_forms_are_one_procedure() -> None:
    assert national_procedure_code("1.004227") == "1.004227"
    assert national_procedure_code("1.011442.000.00.00.H38") == "1.011442"
    assert national_procedure_code("1.000494.000.00.00.H29") == national_procedure_code("1.000494")
    assert national_procedure_code(" 1.011442.000.00.00.h38 ") == "1.011442"


@pytest.mark.parametrize(
    "code",
    [
        "",
        "1004227",
        "1.04227",
        "1.0042271",
        "a.004227",
        "1.011442.000.00.00",
        "1.011442.000.00.00.H3",
        "1.011442.00.00.00.H38",
        "1.004227.",
        "TTHC-1.004227",
    ],
)
def test_malformed_procedure_codes_are_refused(code: str) -> None:
    with pytest.raises(ValueError, match="not an administrative procedure code"):
        national_procedure_code(code)


# ------------------------------------------------------------------------------------------------ formatting


def test_vietnamese_date_formatting() -> None:
    assert format_date_vn(date(2023, 10, 25)) == "25/10/2023"
    assert format_date_vn(date(2023, 1, 5)) == "05/01/2023"
    assert format_date_vn(datetime(2023, 10, 25, 17, 30, tzinfo=UTC)) == "26/10/2023"
    assert (
        format_datetime_vn(datetime(2023, 10, 25, 23, 59, 59, 999999, tzinfo=VN))
        == "25/10/2023 23:59:59 (+07:00)"
    )
    assert (
        format_datetime_vn(datetime(2023, 10, 25, 16, 59, 59, tzinfo=UTC)) == "25/10/2023 23:59:59 (+07:00)"
    )
    with pytest.raises(ValueError):
        format_datetime_vn(datetime(2023, 10, 25, 12, 0))


# ------------------------------------------------------------------------------------------------ schemas


def test_committed_schemas_are_current(tmp_path: Path) -> None:
    written = write_document_schemas(tmp_path)
    assert sorted(p.name for p in written) == ["directory.schema.json", "edition.schema.json"]
    for path in written:
        committed = SCHEMA_DIR / path.name
        assert committed.exists(), f"{committed} missing: run python -m shared.documents"
        assert committed.read_text(encoding="utf-8") == path.read_text(encoding="utf-8"), (
            f"{committed} is stale: run python -m shared.documents"
        )


def test_schemas_describe_the_documents() -> None:
    schemas = document_schemas()
    edition_schema = schemas["edition.schema.json"]
    assert edition_schema["$schema"].startswith("https://json-schema.org/")
    assert {"tenant", "edition", "opens", "closes", "parts"} <= set(edition_schema["required"])
    assert json.dumps(edition_schema)  # serialisable
    assert "people" in schemas["directory.schema.json"]["properties"]


def test_a_union_with_an_unknown_parent_is_refused() -> None:
    import pydantic

    from shared.documents import Directory

    with pytest.raises(pydantic.ValidationError, match="unknown parent"):
        Directory.model_validate(
            {
                "tenant": "t",
                "units": [{"id": "u-1", "code": "U1", "name": "Văn phòng", "kind": "office"}],
                "unions": [{"id": "cd", "name": "Chi đoàn", "kind": "youth_union", "parent": "nowhere"}],
            }
        )


def test_unit_lineage_follows_successor_links_each_way_transitively() -> None:
    from shared.documents import Unit, unit_lineage

    def u(i: str, *of: str) -> Unit:
        return Unit(id=i, code=i.upper(), name=f"Đơn vị {i}", kind="division", successor_of=list(of))

    # b and c merged into a; a renamed to z; d split from c; x unrelated
    units = [u("a", "b", "c"), u("b"), u("c"), u("z", "a"), u("d", "c"), u("x")]
    assert unit_lineage(units, "b") == {"a": "successor", "z": "successor"}
    assert unit_lineage(units, "z") == {"a": "predecessor", "b": "predecessor", "c": "predecessor"}
    assert unit_lineage(units, "c") == {"a": "successor", "z": "successor", "d": "successor"}
    assert unit_lineage(units, "x") == {}

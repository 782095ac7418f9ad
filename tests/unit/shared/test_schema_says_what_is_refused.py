"""What OpenAPI documents say about an input is what the server takes (schemathesis' positive and negative
checks, in unit form): the date and instant patterns against the validators, free text without control
characters, and a 405 naming every method of the path."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import TypeAdapter, ValidationError

from shared.bounds import DATE_PATTERN, INSTANT_PATTERN, BusinessDate, Instant
from shared.problems import install
from shared.text import LONG_TEXT_PATTERN, TEXT_PATTERN, LongText, Text


def _takes(kind: Any, value: str) -> bool:
    try:
        TypeAdapter(kind).validate_python(value)
        return True
    except ValidationError:
        return False


DATES = [
    "2023-10-20",
    "1900-01-01",
    "2199-12-31",
    "2024-02-29",
    "2000-02-29",
    "2023-02-29",
    "1900-02-29",
    "2100-02-29",
    "1899-12-31",
    "2200-01-01",
    "0070-02-10",
    "2023-04-31",
    "2023-13-01",
    "0",
    "0.5",
    "1700000000",
    "2023-10-20T00:00:00",
    "2023-1-2",
    "",
]
INSTANTS = [
    "2023-10-20T09:00",
    "2023-10-20T09:00:00+07:00",
    "2023-10-20T09:00:00.123456Z",
    "2199-12-31T23:59:59-12:00",
    "0070-02-10T07:11:05.0482-07:18",
    "0.5",
    "1700000000",
    "2023-10-20",
    "2023-10-20 09:00:00",
    "2023-02-29T09:00",
    "2024-02-29T09:00Z",
]


@pytest.mark.parametrize("value", DATES)
def test_a_date_is_taken_exactly_when_its_documented_pattern_matches(value: str) -> None:
    assert _takes(BusinessDate, value) == bool(re.fullmatch(DATE_PATTERN, value)), value


@pytest.mark.parametrize("value", INSTANTS)
def test_an_instant_is_taken_exactly_when_its_documented_pattern_matches(value: str) -> None:
    assert _takes(Instant, value) == bool(re.fullmatch(INSTANT_PATTERN, value)), value


def test_unix_times_are_refused_though_pydantic_would_read_them() -> None:
    assert not _takes(Instant, "0.5") and not _takes(BusinessDate, "0")


@pytest.mark.parametrize(
    "value", ["Sáng kiến", "a\tb", "a\nb", "a\x00", "a\x06b", "a\u009ab", "a\u2028b", "a\x7f", "Việt Nam"]
)
def test_free_text_is_taken_exactly_when_its_documented_pattern_matches(value: str) -> None:
    assert _takes(Text, value) == bool(re.fullmatch(TEXT_PATTERN, value)), value
    assert _takes(LongText, value) == bool(re.fullmatch(LONG_TEXT_PATTERN, value)), value


def test_the_patterns_are_in_the_json_schema() -> None:
    assert TypeAdapter(Text).json_schema()["pattern"] == TEXT_PATTERN
    assert TypeAdapter(BusinessDate).json_schema()["pattern"] == DATE_PATTERN
    assert TypeAdapter(Instant | None).json_schema()["anyOf"][0]["pattern"] == INSTANT_PATTERN


def test_a_405_names_every_method_of_the_path_not_only_the_first_routes() -> None:
    app = FastAPI()
    install(app)

    @app.get("/things/{id}")
    async def read(id: str) -> dict[str, str]:
        return {"id": id}

    @app.put("/things/{id}")
    async def write(id: str) -> dict[str, str]:
        return {"id": id}

    r = TestClient(app).delete("/things/1")
    assert r.status_code == 405
    assert r.headers["content-type"] == "application/problem+json"
    assert {m.strip() for m in r.headers["allow"].split(",")} >= {"GET", "PUT"}

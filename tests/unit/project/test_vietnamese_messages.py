"""Every message a Vietnamese reader gets is Vietnamese: no English word left in a ``_vi`` text.

Scans the message catalogues — the Vietnamese for Pydantic's error types, and every Vietnamese text passed to
``Problem``, ``field_error`` and ``bilingual_error`` in the code — and renders real validation errors.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import BaseModel, ValidationError

from shared import problems

ROOT = Path(__file__).resolve().parents[3]
# English words a Vietnamese message must never contain (none is also a Vietnamese syllable).
ENGLISH = {
    "or",
    "and",
    "the",
    "must",
    "is",
    "not",
    "of",
    "be",
    "with",
    "for",
    "should",
    "invalid",
    "only",
    "before",
    "after",
    "required",
    "allowed",
    "between",
    "are",
    "was",
    "has",
    "have",
    "unknown",
    "missing",
    "field",
    "value",
    "you",
    "your",
    "please",
    "expected",
    "input",
}
WORD = re.compile(r"(?<![\w'\"{.])[A-Za-z]+(?![\w'\"}])")  # quoted values and {placeholders} excluded


def _english(text: str) -> set[str]:
    return {w.lower() for w in WORD.findall(text)} & ENGLISH


def _vi_arguments(call: ast.Call) -> list[ast.expr]:
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    out: list[ast.expr] = []
    if name in ("Problem", "field_error", "bilingual_error") and len(call.args) >= 3:
        out.append(call.args[2])
    out += [kw.value for kw in call.keywords if kw.arg in ("vi", "detail_vi", "message_vi")]
    return out


def _code_messages() -> list[tuple[str, str]]:
    found = []
    for path in sorted([*(ROOT / "shared").rglob("*.py"), *(ROOT / "services").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                for arg in _vi_arguments(node):
                    for const in ast.walk(arg):
                        if isinstance(const, ast.Constant) and isinstance(const.value, str):
                            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", const.value))
    return found


def test_the_scan_finds_the_vietnamese_messages_of_the_code() -> None:
    assert len(_code_messages()) > 50


def test_no_vietnamese_message_in_the_code_contains_an_english_word() -> None:
    offending = [(where, text) for where, text in _code_messages() if _english(text)]
    assert offending == []


@pytest.mark.parametrize("error_type", sorted(problems._VI))
def test_the_vietnamese_catalogue_of_validation_errors_has_no_english_word(error_type: str) -> None:
    assert _english(problems._VI[error_type]) == set()


class _Report(BaseModel):
    level: Literal["toan_trinh", "mot_phan", "khong_cung_cap"]
    portal: Literal["tinh", "quoc_gia"]


@pytest.mark.parametrize("field", ["level", "portal"])
def test_a_refused_choice_lists_the_allowed_values_in_vietnamese(field: str) -> None:
    body = {"level": "toan_trinh", "portal": "tinh", field: "khac"}
    with pytest.raises(ValidationError) as refused:
        _Report.model_validate(body)
    [err] = refused.value.errors()
    message = problems._vi_message(dict(err))
    assert message.startswith("Giá trị phải là một trong:")
    assert " hoặc " in message and _english(message) == set(), message

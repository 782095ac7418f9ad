"""Free text as every input model takes it: NFC-normalised, without control characters.

Vietnamese arrives in NFD from some keyboards (``e`` + combining marks): stored as typed, the same name would
compare, sort and search differently from its NFC twin. Control characters have no place in a person's text and
break what comes after — a NUL makes every XLSX export of the edition fail. So:

- ``Text`` — one line (names, titles, codes typed by people): no control character at all;
- ``LongText`` — a narrative: line feeds and tabs are kept (a CR LF or a lone CR becomes LF), nothing else.

Both normalise to NFC *before* length limits, so ``max_length`` counts what is stored. A refusal is a 422 naming
the field (``control_character``), in English and Vietnamese.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BeforeValidator, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue

from shared.errors import bilingual_error

__all__ = ["LongText", "Text", "clean_text"]

# Cc (C0, DEL, C1), Cs (lone surrogates) and the Unicode line/paragraph separators, which some parsers treat as
# line breaks; a narrative keeps line feeds and tabs. One regular expression each: a search in C, where a loop over
# the characters in Python was a twentieth of intake's CPU with a long report.
_REFUSED = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
_REFUSED_MULTILINE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def clean_text(value: str, *, multiline: bool) -> str:
    """``value`` in NFC; raises ``bilingual_error('control_character', …)`` on a control character."""
    if multiline:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    found = (_REFUSED_MULTILINE if multiline else _REFUSED).search(value)
    if found is not None:
        code = f"U+{ord(found.group()):04X}"
        raise bilingual_error(
            "control_character",
            f"Control characters are not allowed (found {code})",
            f"Không được chứa ký tự điều khiển (có ký tự {code})",
        )
    return value if unicodedata.is_normalized("NFC", value) else unicodedata.normalize("NFC", value)


def _text(value: Any) -> Any:
    return clean_text(value, multiline=False) if isinstance(value, str) else value


def _long_text(value: Any) -> Any:
    return clean_text(value, multiline=True) if isinstance(value, str) else value


# What the validators refuse, as a JSON Schema ``pattern`` (the OpenAPI documents say it, so a client or a
# fuzzer drawing from them is never refused): no C0/C1 control character, DEL or line/paragraph separator; a
# narrative keeps line feeds, carriage returns and tabs.
TEXT_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$"
LONG_TEXT_PATTERN = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u2028\u2029]*$"


@dataclass(frozen=True)
class _Documented:
    """Adds ``pattern`` to the field's JSON Schema, keeping the rest (lengths) as declared."""

    pattern: str

    def __get_pydantic_json_schema__(
        self, core_schema: Any, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        schema["pattern"] = self.pattern
        return schema


Text = Annotated[str, BeforeValidator(_text), _Documented(TEXT_PATTERN)]
LongText = Annotated[str, BeforeValidator(_long_text), _Documented(LONG_TEXT_PATTERN)]

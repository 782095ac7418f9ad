"""Vietnamese order and accent-insensitive search for people's names, as bytes and text a database compares as is.

A list of officials is read in the order a Vietnamese reader looks for a name in it: by **given name** (tên, the
last word), then by family and middle names (họ, đệm) as written — ``Trần Thị An`` before ``Lê Văn Bình`` —
letter by letter in the Vietnamese alphabet, where ``ă`` and ``â`` come after ``a``, ``đ`` after ``d``, ``ê`` after
``e``, ``ô`` and ``ơ`` after ``o``, ``ư`` after ``u``; only between names alike in every letter do the tones
decide, in the dictionaries' order (none, huyền, hỏi, ngã, sắc, nặng: ``Anh`` < ``Ánh`` < ``Ảnh`` is wrong,
``Anh`` < ``Ảnh`` < ``Ánh`` is right), then the case. That is CLDR's Vietnamese tailoring (``vi``) applied to the
given name first.

Neither database can be relied on for it: SQLite has no Vietnamese collation at all, and PostgreSQL's depends on
how the server was built (ICU or not) and sorts by the family name. So the order is computed here, once per
directory row when the row is written, as a byte string (:func:`name_key`) that sorts right under plain byte
comparison — a ``BLOB`` in SQLite, a ``bytea`` in PostgreSQL — and is indexed, so a page of a 100,000-person
directory is a range of an index on either database. Search folds the same way (:func:`folded`): no tones, no
vowel marks, ``đ`` as ``d``, lower case, so ``nguyen van an`` finds ``Nguyễn Văn An`` and so does ``Nguyễn``.

The key changes only with this module's :data:`VERSION`; a change of the algorithm is a migration that writes
every stored key again.
"""

from __future__ import annotations

import unicodedata

VERSION = 1

# The Vietnamese alphabet, with the Latin letters Vietnamese does not use placed where Latin has them (foreign and
# minority names): one primary weight each, above the digits.
_ALPHABET = "aăâbcdđeêfghijklmnoôơpqrstuưvwxyz"
_DIGITS = "0123456789"
_WEIGHT = {c: 0x10 + i for i, c in enumerate(_DIGITS)} | {c: 0x20 + i for i, c in enumerate(_ALPHABET)}
_OTHER = 0xF0  # any other character: this byte, then its code point in three bytes (after every letter)

# Vowel marks that make another letter of the alphabet (NFD: base letter + this mark).
_MAKES = {
    ("a", "\u0306"): "ă",  # breve
    ("a", "\u0302"): "â",  # circumflex
    ("e", "\u0302"): "ê",
    ("o", "\u0302"): "ô",
    ("o", "\u031b"): "ơ",  # horn
    ("u", "\u031b"): "ư",
}
# Tones (secondary weights), in the dictionaries' order; no tone is 1.
_TONE = {"\u0300": 2, "\u0309": 3, "\u0303": 4, "\u0301": 5, "\u0323": 6}

_LEVEL = b"\x00"  # between the primary, secondary and tertiary parts: below everything
_WORD = b"\x01"  # between words: a shorter name before a longer one that begins alike


def _letters(word: str) -> list[tuple[str, int, bool]]:
    """(letter of the alphabet or other character, tone, upper case) per letter of ``word``."""
    out: list[tuple[str, int, bool]] = []
    for ch in unicodedata.normalize("NFD", word):
        if unicodedata.combining(ch):
            if not out:
                continue
            base, tone, upper = out[-1]
            if (made := _MAKES.get((base, ch))) is not None:
                out[-1] = (made, tone, upper)
            elif ch in _TONE:
                out[-1] = (base, _TONE[ch], upper)
            continue  # any other mark does not change the order
        lower = ch.lower()
        if lower == "đ":
            out.append(("đ", 1, ch != lower))
        elif lower.isalnum():
            out.append((lower, 1, ch != lower))
    return out


def _words(name: str) -> list[str]:
    """The name's words, the given name (the last) first: ``Nguyễn Văn An`` -> An, Nguyễn, Văn. Hyphens,
    apostrophes and dots separate words as spaces do."""
    words = "".join(c if c.isalnum() or unicodedata.combining(c) else " " for c in name).split()
    return words[-1:] + words[:-1]


def name_key(name: str) -> bytes:
    """Bytes whose plain byte order is the Vietnamese order of names (this module's docstring)."""
    primary, secondary, tertiary = bytearray(), bytearray(), bytearray()
    for i, word in enumerate(_words(name)):
        if i:
            primary += _WORD
        for letter, tone, upper in _letters(word):
            weight = _WEIGHT.get(letter)
            if weight is None:
                primary += bytes((_OTHER,)) + ord(letter).to_bytes(3, "big")
            else:
                primary.append(weight)
            secondary.append(tone)
            tertiary.append(2 if upper else 1)
    return bytes(primary) + _LEVEL + bytes(secondary) + _LEVEL + bytes(tertiary)


def folded(text: str) -> str:
    """``text`` as search compares it: lower case, no tones or vowel marks, ``đ`` as ``d``, one space between
    words (punctuation is a space)."""
    out = []
    for ch in unicodedata.normalize("NFD", text.lower()):
        if unicodedata.combining(ch):
            continue
        out.append("d" if ch == "đ" else ch if ch.isalnum() else " ")
    return " ".join("".join(out).split())

"""Vietnamese order and folding (shared/collation.py), against orders written out by hand."""

from __future__ import annotations

import random
import unicodedata

import pytest

from shared.collation import folded, name_key


def _sorted(names: list[str]) -> list[str]:
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    return sorted(shuffled, key=name_key)


def test_the_tones_come_in_the_dictionaries_order_none_huyen_hoi_nga_sac_nang() -> None:
    assert _sorted(["Ma", "Mà", "Mả", "Mã", "Má", "Mạ"]) == ["Ma", "Mà", "Mả", "Mã", "Má", "Mạ"]


def test_the_letters_come_in_the_vietnamese_alphabet() -> None:
    alphabet = ["a", "ă", "â", "b", "c", "d", "đ", "e", "ê", "g", "h", "i", "k", "l", "m", "n", "o", "ô", "ơ"]
    alphabet += ["p", "q", "r", "s", "t", "u", "ư", "v", "x", "y"]
    assert _sorted(alphabet) == alphabet
    # a letter decides before any tone: Hàng (a) before Hăng (ă) before Hâng (â), whatever their tones
    assert _sorted(["Hâng", "Hằng", "Hạng", "Hang"]) == ["Hang", "Hạng", "Hằng", "Hâng"]


def test_the_given_name_decides_first_then_family_and_middle_names() -> None:
    assert _sorted(["Nguyễn Văn Bình", "Trần Thị An", "Lê An", "Nguyễn Thị An"]) == [
        "Lê An",
        "Nguyễn Thị An",
        "Trần Thị An",
        "Nguyễn Văn Bình",
    ]


def test_a_shorter_name_before_a_longer_one_that_begins_alike() -> None:
    assert _sorted(["Lê Anh", "Lê An", "Lê Ánh", "Lê Ân"]) == ["Lê An", "Lê Anh", "Lê Ánh", "Lê Ân"]


def test_case_only_breaks_ties_and_composed_and_decomposed_names_are_one() -> None:
    assert name_key("nguyễn văn an") < name_key("Nguyễn Văn An") < name_key("Nguyễn Văn Ân")
    assert name_key(unicodedata.normalize("NFD", "Đặng Thị Hường")) == name_key("Đặng Thị Hường")


def test_digits_before_letters_and_other_scripts_after_them() -> None:
    assert _sorted(["Lê 2", "Lê Z", "Lê 李", "Lê Ý"]) == ["Lê 2", "Lê Ý", "Lê Z", "Lê 李"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Nguyễn Văn An", "nguyen van an"),
        ("ĐẶNG Thị Hường", "dang thi huong"),
        ("  Hồ-Thị   Ơn ", "ho thi on"),
        (unicodedata.normalize("NFD", "Trương Ánh"), "truong anh"),
        ("50% _x_", "50 x"),
    ],
)
def test_folded_keeps_letters_and_digits_without_marks(text: str, expected: str) -> None:
    assert folded(text) == expected

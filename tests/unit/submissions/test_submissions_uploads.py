"""Uploads are checked by their structure, not their first bytes; names and quotas are checked too."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import pytest

from services.submissions import domain
from shared.errors import DomainError
from shared.problems import problem_of

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 40
PE = b"MZ\x90\x00" + b"\x00" * 56 + struct.pack("<I", 0x80) + b"\x00" * 0x40 + b"PE\x00\x00" + b"\x00" * 20
ALL = ["pdf", "docx", "xlsx", "png", "jpeg"]


def _png(width: int = 1, height: int = 1) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    )


def _jpeg() -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 1, 1, 1) + b"\x01\x11\x00"
    sos = b"\xff\xda" + struct.pack(">HB", 8, 1) + b"\x01\x00\x00\x3f\x00"
    return b"\xff\xd8" + app0 + sof0 + sos + b"\x12\x34\x56" + b"\xff\xd9"


def _office(kind: str, *, content_type: str | None = None, extra: dict[str, bytes] | None = None) -> bytes:
    folder, main = {
        "docx": ("word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"),
        "xlsx": ("xl", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"),
    }[kind]
    types = (
        '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        f'<Override PartName="/{folder}/main.xml" ContentType="{content_type or main}"/></Types>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", types)
        z.writestr(f"{folder}/main.xml", "<x/>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (PDF, "a.pdf", "pdf"),
        (_png(3, 2), "a.png", "png"),
        (_jpeg(), "a.jpg", "jpeg"),
        (_office("docx"), "a.docx", "docx"),
        (_office("xlsx"), "a.xlsx", "xlsx"),
    ],
)
def test_well_formed_files_of_each_type_are_accepted(data: bytes, name: str, kind: str) -> None:
    assert domain.check_attachment(data, name, ALL, 10_000_000) == (kind, name)


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7\n" + ELF,  # the reported hole: a PDF header followed by an ELF
        b"%PDF-1.7\n" + ELF + b"\n%%EOF\n",
        PDF[:-7] + PE + b"\n%%EOF\n",
        b"%PDF-1.7\nno trailer at all",
        b"\x89PNG\r\n\x1a\n" + ELF,
        _png()[:-12] + ELF + _png()[-12:],
        b"\xff\xd8\xff\xe0" + ELF,
        _jpeg()[:-2] + PE + b"\xff\xd9",
        b"PK\x03\x04" + ELF,
        _office("docx", content_type="application/x-msdownload"),
        _office("xlsx", content_type="application/vnd.ms-excel.sheet.macroEnabled.main+xml"),
        _office("docx", extra={"word/vbaProject.bin": b"\x00" * 10}),
        _office("docx", extra={"word/media/setup.exe": PE}),
    ],
)
def test_a_valid_header_glued_to_something_else_is_refused(data: bytes) -> None:
    with pytest.raises(DomainError) as exc:
        domain.check_attachment(data, "ho-so.pdf", ALL, 10_000_000)
    assert problem_of(exc.value).status == 415 and exc.value.detail_vi


@pytest.mark.parametrize(
    "name",
    [
        "a\x00.pdf",
        "bao-cao\x1f.pdf",
        "../../etc/passwd.pdf",
        "C:\\tmp\\a.pdf",
        "..",
        "  ",
        "hoa-don\u202efdp.exe",
    ],
)
def test_file_names_with_control_characters_or_paths_are_refused(name: str) -> None:
    with pytest.raises(DomainError) as exc:
        domain.check_attachment(PDF, name, ALL, 10_000_000)
    assert problem_of(exc.value).status == 422
    (err,) = exc.value.errors
    assert err["field"] == "filename" and err["message_vi"]


def test_a_decomposed_file_name_is_stored_in_nfc() -> None:
    import unicodedata

    nfd = unicodedata.normalize("NFD", "Báo cáo.pdf")
    assert domain.check_attachment(PDF, nfd, ALL, 10_000)[1] == "Báo cáo.pdf"


def test_the_number_and_total_size_of_files_per_submission_are_capped() -> None:
    domain.check_attachment_quota(9, 900, 100, max_files=10, max_total=1000)
    with pytest.raises(DomainError) as exc:
        domain.check_attachment_quota(10, 100, 1, max_files=10, max_total=1000)
    assert (
        problem_of(exc.value).status == 413
        and exc.value.code == "too_many_files"
        and "10 tệp" in exc.value.detail_vi
    )
    with pytest.raises(DomainError) as exc:
        domain.check_attachment_quota(3, 900, 101, max_files=10, max_total=1000)
    assert problem_of(exc.value).status == 413 and exc.value.code == "total_too_large"

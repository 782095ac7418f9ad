"""The second bundled edition (deploy/seed/cantho-snnmt-2025): Sở Nông nghiệp và Môi trường thành phố Cần Thơ,
2025, with its own part ids and a merger inside the edition (Chi cục Phát triển nông thôn into Chi cục Thủy lợi
on 01/10/2025). Constants and request bodies its tests share."""

from __future__ import annotations

from typing import Any

from tests.support.system import ROOT

SEED_2025 = ROOT / "deploy" / "seed" / "cantho-snnmt-2025"
TENANT_2025 = "cantho-snnmt"
EDITION_2025 = "2025"
BASE_2025 = f"/tenants/{TENANT_2025}/editions/{EDITION_2025}"
START_2025 = "2025-09-02T09:00:00+07:00"
INITIATIVE, SELECTION, EXPERIENCE = "sk-2025", "xc-2025", "tn-dvc-2025"
SECRETARIAT_2025 = "c-02"  # Trần Thị Bích, Văn phòng Sở
CHAIR_2025 = "c-01"  # Nguyễn Văn An; council members c-01 VP, c-04 KHTC, c-06 CCTL, c-10 VPDKDD


def initiative_body(title: str, authors: list[tuple[str, float]], **over: Any) -> dict[str, Any]:
    """An initiative of the 2025 edition: directory authors by id (with their share)."""
    return {
        "title": title,
        "authors": [{"person_id": a, "share": s} for a, s in authors],
        "field_of_application": "Cải cách thủ tục hành chính",
        "first_applied_on": "2025-07-15",
        "existing_solution": "Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.",
        "existing_weaknesses": "Người dân phải đi lại nhiều lần.",
        "new_solution": f"{title}: toàn bộ trên môi trường điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Áp dụng được cho các đơn vị có thủ tục tương tự trong thành phố.",
        "benefits": "Giảm một nửa thời gian giải quyết hồ sơ.",
        "benefits_kind": "actual",
        "submit": True,
        **over,
    }


def report_body_2025(codes: list[str], used_on: str = "2025-09-10") -> dict[str, Any]:
    """An experience report of the 2025 edition (three distinct procedures required)."""
    return {
        "procedures": [
            {
                "code": c,
                "used_on": used_on,
                "portal": "Cổng Dịch vụ công thành phố Cần Thơ",
                "level": "toan_trinh",
                "rating": 4,
                "narrative": f"Nộp hồ sơ trực tuyến thủ tục {c}: nhanh, rõ ràng.",
            }
            for c in codes
        ]
    }

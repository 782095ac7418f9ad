"""The portal in a real Chromium (Debian's, driven by Playwright; nothing downloaded) against the real system:
the four services on the test NATS and PostgreSQL, and the portal process itself, connected to NATS as its own
user. Every path starts from ``/`` and finds things only by role and label, with the Vietnamese names a person
sees. Each page visited is screenshotted under ``test-artifacts/portal/`` and checked with axe-core (installed
from npm at test time): no serious or critical violation."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.devserver import free_port
from shared.settings import SERVICES
from tests.support.servers import service_credentials
from tests.support.system import EDITION, ROOT, TENANT, System
from tests.support.wait import eventually, eventually_sync

CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = ROOT / "test-artifacts" / "portal"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium fonts-noto-core)",
)


@pytest.fixture(scope="module")
def axe_source(tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core from the npm registry, installed into a temporary folder for this run."""
    where = tmp_path_factory.mktemp("axe")
    npm = shutil.which("npm")
    assert npm, "npm is needed to install axe-core for the accessibility checks"
    subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(where), "axe-core@4"],
        check=True,
        timeout=180,
        capture_output=True,
    )
    return (where / "node_modules" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def portal_system(test_servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:  # type: ignore[no-untyped-def]
    work: Path = tmp_path_factory.mktemp("portal")
    dbs = {s: test_servers.create_database(s) for s in SERVICES}
    system = System(
        nats_url=test_servers.nats_url,
        prefix="p" + secrets.token_hex(4),
        workdir=work,
        database_urls=dbs,
        catch_up_timeout=180,  # 2 cores shared by many runs: the seed may take a while to reach every service
    )
    try:
        system.start()
        system.ports["portal"] = free_port()
        env = {
            "HOITHI_PORTAL_PORT": str(system.ports["portal"]),
            "HOITHI_PORTAL_PAGE_SIZE": "5",  # long lists a few rows at a time: their pages are tested
            **{f"HOITHI_PORTAL_{s.upper()}_URL": system.url(s) for s in SERVICES},
        }
        own = service_credentials(test_servers.nats_url, "portal")
        if own is not None:  # the portal reads the stream as its own user: read-only, publishes nothing
            env["HOITHI_NATS_USER"], env["HOITHI_NATS_PASSWORD"] = own
        system.start_service("portal", **env)
        system.wait_ready("portal")
        yield system
    finally:
        system.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield b
        finally:
            b.close()


def check_page(page: Any, axe: str, name: str) -> None:
    """Screenshot (a test artefact) and axe-core: no serious or critical violation on this page."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)
    page.evaluate(axe)  # evaluated through the DevTools protocol: the page's CSP stays as strict as deployed
    result = page.evaluate("async () => JSON.stringify((await axe.run(document)).violations)")
    bad = [v for v in json.loads(result) if v.get("impact") in ("serious", "critical")]
    assert not bad, f"{name}: " + "; ".join(
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}" for v in bad
    )


def sign_in(page: Any, system: System, person: str, axe: str | None = None, shot: str = "") -> None:
    page.goto(system.url("portal") + "/")
    if axe:
        check_page(page, axe, f"{shot}login")
    page.get_by_label("Mã cơ quan").fill(TENANT)
    page.get_by_label("Kỳ hội thi").fill(EDITION)
    page.get_by_label("Mã cán bộ").fill(person)
    page.get_by_role("button", name="Đăng nhập").click()


def fill_report(page: Any, codes: tuple[str, ...]) -> None:
    for i, code in enumerate(codes, start=1):
        page.get_by_label(f"Mã thủ tục (thủ tục {i})").fill(code)
        page.get_by_label(f"Ngày sử dụng (dd/mm/yyyy) (thủ tục {i})").fill(f"0{i}/10/2023")
        page.get_by_label(f"Đánh giá (1–5) (thủ tục {i})").fill(str(1 + i % 5))
        page.get_by_label(f"Nhận xét (thủ tục {i})").fill(
            f"Nộp hồ sơ trực tuyến thủ tục {code}: nhanh, rõ ràng."
        )


CODES = ("1.004227", "1.000494", "1.001234", "2.000123", "1.011442.000.00.00.H38")


@pytest.mark.parametrize(("javascript", "person"), [(True, "p-0002"), (False, "p-0006")], ids=["js", "no-js"])
def test_an_official_submits_a_report_and_sees_the_receipt(
    portal_system: System, browser: Any, axe_source: str, javascript: bool, person: str
) -> None:
    context = browser.new_context(java_script_enabled=javascript, viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        tag = "official-" + ("js" if javascript else "nojs") + "-"
        sign_in(page, portal_system, person, axe_source if javascript else None, tag)
        assignments = page.get_by_role("region", name="Nhiệm vụ và hạn chót của tôi")
        assert "hết ngày 25/10/2023" in assignments.inner_text()
        assert "Chưa nộp" in assignments.inner_text()
        if javascript:
            check_page(page, axe_source, f"{tag}home")

        page.get_by_role("main").get_by_role("link", name="Nộp báo cáo trải nghiệm").click()
        page.get_by_role("heading", name="Nộp báo cáo trải nghiệm").wait_for()
        fill_report(page, CODES)
        if javascript:
            check_page(page, axe_source, f"{tag}report-form")
        page.get_by_role("button", name="Nộp báo cáo").click()

        page.get_by_role("heading", name="Biên nhận hồ sơ").wait_for()
        receipt = page.get_by_role("article").inner_text()
        if javascript:
            check_page(page, axe_source, f"{tag}receipt")
        # what the receipt says is what the service recorded for this person
        with portal_system.client("submissions", person) as c:
            mine = c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json()
        assert len(mine) == 1 and mine[0]["receipt_number"] in receipt, (receipt, mine)
        assert "1.011442" in receipt and "Đã tiếp nhận" in receipt

        # back home, the assignment is fulfilled once campaign has applied the receipt
        def fulfilled() -> bool:
            page.goto(portal_system.url("portal") + "/")
            return "Đã nộp" in page.get_by_role("region", name="Nhiệm vụ và hạn chót của tôi").inner_text()

        eventually_sync(fulfilled, timeout=30, interval=0.5, message="the assignment shows as submitted")
    finally:
        context.close()


def test_a_wrong_date_is_shown_next_to_its_field_and_nothing_is_recorded(
    portal_system: System, browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0008")
        page.get_by_role("main").get_by_role("link", name="Nộp báo cáo trải nghiệm").click()
        fill_report(page, CODES)
        page.get_by_label("Ngày sử dụng (dd/mm/yyyy) (thủ tục 3)").fill("31/02/2023")
        page.get_by_label("Ngày sử dụng (dd/mm/yyyy) (thủ tục 4)").fill("01/12/2023")  # after "today"
        page.get_by_role("button", name="Nộp báo cáo").click()
        field = page.get_by_label("Ngày sử dụng (dd/mm/yyyy) (thủ tục 3)")
        assert field.get_attribute("aria-invalid") == "true"
        assert "dd/mm/yyyy" in page.locator("#e-p2_used_on").inner_text()
        # what was typed is kept
        assert page.get_by_label("Mã thủ tục (thủ tục 5)").input_value() == CODES[4]

        page.get_by_label("Ngày sử dụng (dd/mm/yyyy) (thủ tục 3)").fill("03/10/2023")
        page.get_by_role("button", name="Nộp báo cáo").click()
        # the service's own refusal, in Vietnamese, next to the field it names
        message = page.locator("#e-p3_used_on").inner_text()
        assert "ở tương lai" in message, message
        with portal_system.client("submissions", "p-0008") as c:
            assert c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json() == []
    finally:
        context.close()


@pytest.mark.parametrize(
    ("person", "shown", "not_shown"),
    [
        # a unit head: their unit's officials, not another unit's
        ("p-0007", "Lý Thị Mỹ Linh", "Ngô Thị Bích Ngọc"),
        # the youth union's secretary: its members only
        ("p-0022", "Lý Thị Mỹ Linh", "Thạch Sô Phol"),
    ],
    ids=["unit-head", "union-secretary"],
)
def test_heads_and_secretaries_see_who_has_not_submitted(
    portal_system: System, browser: Any, axe_source: str, person: str, shown: str, not_shown: str
) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone
    page = context.new_page()
    try:
        sign_in(page, portal_system, person)
        page.get_by_role("link", name="Tình hình tham gia").click()
        pending = page.get_by_role("region", name="Những người chưa nộp").inner_text()
        assert shown in pending and not_shown not in pending, pending
        check_page(page, axe_source, f"pending-{person}")
    finally:
        context.close()


@pytest.mark.parametrize("typed", ["p-9999", "P 0004"])  # no one by that id; an id no directory could hold
def test_signing_in_as_no_one_says_so_by_the_field(portal_system: System, browser: Any, typed: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, portal_system, typed)
        field = page.get_by_label("Mã cán bộ")
        assert field.get_attribute("aria-invalid") == "true"
        assert "Không tìm thấy cán bộ này trong danh bạ." in page.content()
        assert page.get_by_role("button", name="Đăng nhập").count() == 1  # still the sign-in form
    finally:
        context.close()


def test_the_secretariat_pages_through_who_has_not_submitted(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Five at a time (``HOITHI_PORTAL_PAGE_SIZE``): every page a different five, in campaign's order, until
    the last, which links back to the first."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")
        page.get_by_role("link", name="Tình hình tham gia").click()
        region = page.get_by_role("region", name="Những người chưa nộp")

        def names() -> list[str]:
            return [r.inner_text().strip() for r in region.locator("tbody td:first-child").all()]

        first = names()
        seen, pages = list(first), 1
        nav = region.get_by_role("navigation", name="Những người chưa nộp: các trang")
        while nav.get_by_role("link", name="Trang sau").count():
            nav.get_by_role("link", name="Trang sau").click()
            pages += 1
            shown = names()
            assert 0 < len(shown) <= 5 and not set(shown) & set(seen), (shown, seen)
            seen += shown
            if pages == 2:
                check_page(page, axe_source, "pending-page-2")
        assert pages >= 3, seen  # the seed's officials who have not submitted: more than two pages of five
        with portal_system.client("campaign", "p-0004") as c:
            everyone = c.get(
                f"/tenants/{TENANT}/editions/{EDITION}/assignments", params={"status": "open"}
            ).json()
        assert len(seen) == len(
            [a for a in everyone if a["assignee_kind"] == "person" and a["assignee_id"] != "p-0004"]
        )
        nav.get_by_role("link", name="Trang đầu").click()
        assert names() == first
    finally:
        context.close()


def test_the_secretariat_rules_a_report_ineligible_and_reinstates_it(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """After the officials' tests: Huỳnh Ngọc Ánh's report (submitted without JavaScript) is on the list."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")  # Văn phòng Sở: the secretariat
        page.get_by_role("link", name="Thường trực Hội thi").click()
        check_page(page, axe_source, "secretariat")
        page.get_by_role("link", name="Xét hợp lệ: báo cáo trải nghiệm và sáng kiến").click()
        check_page(page, axe_source, "secretariat-rulings")
        row = page.get_by_role("row").filter(has_text="Huỳnh Ngọc Ánh")
        receipt = row.get_by_role("cell").first.inner_text().strip()
        page.get_by_role("button", name=f"Không hợp lệ {receipt}").click()  # no reason: the service refuses
        reason = page.get_by_label(f"Lý do ({receipt})")
        assert reason.get_attribute("aria-invalid") == "true"
        assert page.get_by_role("alert").inner_text().strip()
        reason.fill("Thủ tục 2.000123 không thuộc danh mục của đơn vị.")
        page.get_by_role("button", name=f"Không hợp lệ {receipt}").click()
        status = page.get_by_role("row").filter(has_text="Huỳnh Ngọc Ánh").get_by_role("cell").nth(2)
        assert status.inner_text().strip() == "Không hợp lệ"
        page.get_by_role("button", name=f"Khôi phục {receipt}").click()
        status = page.get_by_role("row").filter(has_text="Huỳnh Ngọc Ánh").get_by_role("cell").nth(2)
        assert status.inner_text().strip() == "Đã tiếp nhận"
        page.get_by_role("link", name="Thường trực Hội thi").click()
        with page.expect_download() as download:
            page.get_by_role("link", name="Toàn bộ hồ sơ dự thi (XLSX)").click()
        assert Path(download.value.path()).read_bytes()[:2] == b"PK"
    finally:
        context.close()


def test_the_secretariat_rules_on_reports_page_by_page_and_stays_on_the_page(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Five reports a page (``HOITHI_PORTAL_PAGE_SIZE``), in order of receipt; a ruling made on the second page
    comes back to the second page."""
    for person in ("p-0013", "p-0019", "p-0023", "p-0024", "p-0027", "p-0028"):  # no other test's people
        assert portal_system.submit_report(person).status_code in (201, 409)
    with portal_system.client("submissions", "p-0004") as c:
        received = [
            r["receipt_number"]
            for r in c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json()
        ]
        first = c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports", params={"limit": 2})
        assert [r["receipt_number"] for r in first.json()] == received[:2] and 'rel="next"' in first.headers[
            "link"
        ]
        bad = c.get(
            f"/tenants/{TENANT}/editions/{EDITION}/experience-reports", params={"after": "x", "limit": 2}
        )
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["after"]
    assert len(received) > 5
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")
        page.goto(portal_system.url("portal") + "/secretariat/rulings")
        region = page.get_by_role("region", name="Các báo cáo đã nhận")
        nav = region.get_by_role("navigation", name="Các báo cáo đã nhận: các trang")

        def receipts() -> list[str]:
            return [c.inner_text().strip() for c in region.locator("tbody td:first-child").all()]

        seen = receipts()
        nav.get_by_role("link", name="Trang sau").click()
        second_url, second = page.url, receipts()
        check_page(page, axe_source, "secretariat-rulings-page-2")
        seen += second
        while nav.get_by_role("link", name="Trang sau").count():
            nav.get_by_role("link", name="Trang sau").click()
            seen += receipts()
        assert seen == received  # every report once, in order of receipt

        page.goto(second_url)
        receipt = second[0]
        page.get_by_label(f"Lý do ({receipt})").fill("Thủ tục không thuộc danh mục của đơn vị.")
        page.get_by_role("button", name=f"Không hợp lệ {receipt}").click()
        assert page.url == second_url and receipts() == second
        status = region.get_by_role("row").filter(has_text=receipt).get_by_role("cell").nth(2)
        assert status.inner_text().strip() == "Không hợp lệ"
        page.get_by_role("button", name=f"Khôi phục {receipt}").click()
        assert page.url == second_url
        assert region.get_by_role("row").filter(has_text=receipt).get_by_role("cell").nth(
            2
        ).inner_text().strip() == ("Đã tiếp nhận")
        nav.get_by_role("link", name="Trang đầu").click()
        assert receipts() == received[:5]
    finally:
        context.close()


def test_the_secretariat_extends_one_persons_deadline_with_errors_at_their_fields(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Lâm Quốc Bảo's experience report gets a later deadline; a wrong date and a date before the deadline in
    force are shown next to the new-deadline field, and grant nothing. Nobody else sees the page."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")
        page.get_by_role("link", name="Thường trực Hội thi").click()
        page.get_by_role("link", name="Gia hạn nộp bài").click()
        check_page(page, axe_source, "secretariat-extensions")
        page.get_by_label("Cán bộ", exact=True).select_option(label="Lâm Quốc Bảo (p-0020)")
        page.get_by_label("Phần thi").select_option(
            label="Trình bày trải nghiệm thực tế về chất lượng dịch vụ công trực tuyến"
        )
        new_deadline = page.get_by_label("Hạn mới (dd/mm/yyyy)")
        for wrong in ("31/02/2023", "01/01/2023"):  # not a date; before the deadline in force (the service)
            new_deadline.fill(wrong)
            page.get_by_label("Lý do").fill("Cán bộ đi công tác tại Hà Nội theo quyết định của Giám đốc Sở.")
            page.get_by_role("button", name="Gia hạn").click()
            new_deadline = page.get_by_label("Hạn mới (dd/mm/yyyy)")
            assert new_deadline.get_attribute("aria-invalid") == "true", wrong
            assert page.locator("#e-new_deadline").inner_text().strip(), wrong
            assert page.get_by_role("alert").inner_text().strip()
            extended = page.get_by_role("region", name="Các hạn đã gia hạn")
            assert "Lâm Quốc Bảo" not in extended.inner_text()
        check_page(page, axe_source, "secretariat-extension-errors")
        new_deadline.fill("10/11/2023")
        page.get_by_role("button", name="Gia hạn").click()
        assert "Đã gia hạn: Lâm Quốc Bảo" in page.get_by_role("status").inner_text()
        row = (
            page.get_by_role("region", name="Các hạn đã gia hạn")
            .get_by_role("row")
            .filter(has_text="Lâm Quốc Bảo")
        )
        assert "10/11/2023" in row.inner_text()
        with portal_system.client("campaign", "p-0004") as c:
            mine = c.get(f"/tenants/{TENANT}/editions/{EDITION}/assignments?assignee=p-0020&part=experience")
        assert mine.json()[0]["extended_to"] == "2023-11-11T00:00:00+07:00"  # the end of 10/11 (exclusive)

        other = browser.new_context()
        try:
            official = other.new_page()
            sign_in(official, portal_system, "p-0002")
            for path in ("/secretariat/extensions", "/secretariat/rulings"):
                answer = official.goto(portal_system.url("portal") + path)
                assert answer is not None and answer.status == 403, path
        finally:
            other.close()
    finally:
        context.close()


def initiative_body(title: str, author: str) -> dict[str, Any]:
    return {
        "title": title,
        "authors": [{"person_id": author, "share": 100}],
        "field_of_application": "Cải cách thủ tục hành chính",
        "first_applied_on": "2023-06-01",
        "existing_solution": "Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.",
        "existing_weaknesses": "Người dân phải đi lại nhiều lần; khó tra cứu tiến độ.",
        "new_solution": f"{title}: quy trình mới, toàn bộ trên môi trường điện tử.",
        "novelty": "Lần đầu áp dụng tại Sở.",
        "applicability": "Áp dụng được cho các đơn vị có thủ tục tương tự trong tỉnh.",
        "benefits": "Giảm 50% thời gian giải quyết hồ sơ.",
        "benefits_kind": "actual",
        "submit": True,
    }


def test_the_secretariat_rules_an_initiative_ineligible_and_reinstates_it(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """The IT centre's head submits its initiative; the secretariat rules it ineligible (a reason is required,
    the refusal shown next to it) and reinstates it, on the same page as the experience reports."""
    title = "Ký số hồ sơ đất đai trên điện thoại"
    with portal_system.client("submissions", "p-0021") as c:  # Phan Minh Trí, head of the IT centre
        r = c.post(f"/tenants/{TENANT}/editions/{EDITION}/initiatives", json=initiative_body(title, "p-0021"))
        assert r.status_code == 201, r.text
        receipt = r.json()["receipt_number"]
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")  # the secretariat
        page.get_by_role("link", name="Thường trực Hội thi").click()
        page.get_by_role("link", name="Xét hợp lệ: báo cáo trải nghiệm và sáng kiến").click()
        check_page(page, axe_source, "secretariat-rulings-initiatives")

        def status() -> str:
            row = page.get_by_role("row").filter(has_text=title)
            return str(row.get_by_role("cell").nth(3).inner_text()).strip()

        assert status() == "Đã tiếp nhận"
        page.get_by_role("button", name=f"Không hợp lệ {receipt}").click()  # no reason: the service refuses
        reason = page.get_by_label(f"Lý do ({receipt})")
        assert reason.get_attribute("aria-invalid") == "true"
        assert page.get_by_role("alert").inner_text().strip()
        assert status() == "Đã tiếp nhận"
        reason.fill("Sáng kiến chưa được áp dụng thử tại đơn vị.")
        page.get_by_role("button", name=f"Không hợp lệ {receipt}").click()
        assert status() == "Không hợp lệ"
        page.get_by_role("button", name=f"Khôi phục {receipt}").click()
        assert status() == "Đã tiếp nhận"
    finally:
        context.close()


def scored_of(region: str) -> tuple[int, int]:
    """("Đã chấm: 1 / 2") → (1, 2): the council page's count of initiatives scored of those assigned."""
    found = re.search(r"Đã chấm: (\d+) / (\d+)", region)
    assert found, region
    return int(found.group(1)), int(found.group(2))


def test_a_council_member_scores_and_the_chair_selects(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    title = "Tra cứu tiến độ hồ sơ đất đai qua Zalo"
    base = f"/tenants/{TENANT}/editions/{EDITION}"
    with portal_system.client("submissions", "p-0010") as c:  # a unit head submits the unit's initiative
        r = c.post(f"{base}/initiatives", json=initiative_body(title, "p-0010"))
        assert r.status_code == 201, r.text
        initiative = r.json()["submission_id"]
    with portal_system.client("submissions", "p-0001") as c:  # the chair: who reviews it
        reviewers = c.get(f"{base}/initiatives/{initiative}/reviewers").json()["reviewers"]
    member = next(m["member_id"] for m in reviewers if m["member_id"] != "p-0001")

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, member)
        page.get_by_role("link", name="Hội đồng xét sáng kiến").click()
        check_page(page, axe_source, "council-member")
        mine = page.get_by_role("region", name="Sáng kiến tôi được phân công chấm")
        # other tests of this module may have assigned this member other initiatives: count from here
        scored, assigned = scored_of(mine.inner_text())
        page.get_by_role("link", name=f"Chấm: {title}").click()
        page.get_by_label("Tính mới (tối đa 30)").fill("40")  # above the criterion's maximum
        page.get_by_label("Khả năng áp dụng và nhân rộng (tối đa 30)").fill("25")
        page.get_by_label("Hiệu quả và lợi ích thiết thực (tối đa 40)").fill("35")
        page.get_by_role("button", name="Gửi phiếu chấm").click()
        novelty = page.get_by_label("Tính mới (tối đa 30)")
        assert novelty.get_attribute("aria-invalid") == "true"
        assert "30" in page.locator("#e-novelty").inner_text()  # the service's message, next to the field
        check_page(page, axe_source, "council-score-refused")
        novelty.fill("25")
        page.get_by_role("button", name="Gửi phiếu chấm").click()
        page.get_by_role("heading", name="Hội đồng xét sáng kiến", level=1).wait_for()
        text = page.get_by_role("region", name="Sáng kiến tôi được phân công chấm").inner_text()
        assert scored_of(text) == (scored + 1, assigned), text
        assert f"{title} (" in text and "— đã chấm" in text.split(f"{title} (", 1)[1].split("\n", 1)[0], text
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0001")  # the chair
        page.get_by_role("link", name="Hội đồng xét sáng kiến").click()
        check_page(page, axe_source, "council-chair")
        page.get_by_role("checkbox", name=f"Chọn {title}").check()
        page.get_by_label("Biên bản, ghi chú").fill("Hội đồng thống nhất chọn.")
        page.get_by_role("button", name="Quyết định xét chọn").click()
        result = page.get_by_role("region", name="Kết quả xét chọn").inner_text()
        assert f"{title}: Được chọn gửi dự thi cấp tỉnh" in result, result
    finally:
        context.close()


def test_the_directors_dashboard_changes_live_when_a_report_arrives(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0003")  # the director
        page.get_by_role("link", name="Tình hình tham gia").click()
        page.get_by_role("heading", name="Tình hình tham gia", level=1).wait_for()
        page.get_by_role("status").wait_for()  # "Đang cập nhật trực tiếp": the event stream is open
        check_page(page, axe_source, "director-dashboard")
        # The priority list one page of 50 at a time (the workbook holds it all), as many as rewards lists.
        rewards = portal_system.client("rewards", "p-0003")
        listed = rewards.get(f"/tenants/{TENANT}/editions/{EDITION}/priority-list", params={"limit": 1})
        total = listed.json()["page"]["persons_total"]
        pages = page.get_by_role("navigation", name="Các trang của danh sách")
        if total:
            shown = f"Đang xem cá nhân 1–{min(total, 50)} / {total} · Trang 1 / {-(-total // 50)}"
            assert pages.inner_text() == shown, (pages.inner_text(), total)
        else:
            assert (
                pages.count() == 0
                and "Chưa có." in page.get_by_role("region", name="Danh sách ưu tiên").inner_text()
            )
        assert page.get_by_role("link", name="Trang sau »").count() == (1 if total > 50 else 0)
        page.goto(f"{portal_system.url('portal')}/dashboard?page=999")  # past the end: the last page
        assert page.url.endswith(f"page={max(1, -(-total // 50))}"), page.url
        page.goto(f"{portal_system.url('portal')}/dashboard")
        page.get_by_role("status").wait_for()  # the event stream open again before the report arrives
        by_part = page.get_by_role("table", name="Phần thi")
        row = by_part.get_by_role("row").filter(has_text="Trình bày trải nghiệm")

        def submitted() -> int:
            return int(row.get_by_role("cell").nth(1).inner_text().replace(".", ""))

        before = submitted()
        page.evaluate("window.__notReloaded = true")
        assert portal_system.submit_report("p-0011").status_code == 201
        eventually_sync(lambda: submitted() == before + 1, timeout=30, interval=0.3, message="the live count")
        assert page.evaluate("window.__notReloaded === true"), "the page was reloaded instead of updated live"

        with page.expect_download() as download:
            page.get_by_role("link", name="Tải về (XLSX)").click()
        path = download.value.path()
        assert Path(path).read_bytes()[:2] == b"PK"  # a workbook (a zip), as the rewards service made it
    finally:
        context.close()


def test_the_live_dashboard_asks_less_often_while_a_service_is_down_and_catches_up_after(
    portal_system: System, browser: Any
) -> None:
    """A fact arrives while rewards is down: the dashboard says the system is busy and asks again by itself, each
    time waiting twice as long (not once per fact, nor never again); once rewards is back, the figures catch up
    and the page says it is live again, without a reload."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    # every fetch the page's script makes, when it was made (s since the page loaded; the browser's own timings
    # leave out fetches answered 503)
    context.add_init_script(
        "window.__asked = []; const ask = window.fetch;"
        "window.fetch = function () { window.__asked.push(performance.now() / 1000); return ask.apply(this, arguments); };"
    )
    page = context.new_page()
    dashboard = f"{portal_system.url('portal')}/dashboard"
    try:
        sign_in(page, portal_system, "p-0003")  # the director
        page.goto(dashboard)
        status = page.get_by_role("status")
        status.wait_for()  # the event stream is open
        row = (
            page.get_by_role("table", name="Phần thi")
            .get_by_role("row")
            .filter(has_text="Trình bày trải nghiệm")
        )

        def submitted() -> int:
            return int(row.get_by_role("cell").nth(1).inner_text().replace(".", ""))

        before = submitted()
        page.evaluate("window.__notReloaded = true")

        def asked() -> list[float]:
            """When the page asked for itself again since rewards stopped (s since it loaded)."""
            return page.evaluate("since => window.__asked.filter(t => t >= since)", stopped)  # type: ignore[no-any-return]

        stopped = page.evaluate("performance.now() / 1000")
        portal_system.stop_service("rewards")
        try:
            assert portal_system.submit_report("p-0014").status_code == 201
            eventually_sync(
                lambda: "Hệ thống đang bận" in status.inner_text(), timeout=60, message="the busy notice"
            )
            eventually_sync(
                lambda: len(asked()) >= 3, timeout=60, interval=0.2, message="asking again by itself"
            )
            gaps = [b - a for a, b in itertools.pairwise(asked())]
            assert gaps[0] >= 1.8 and gaps[1] >= 3.6, gaps  # 2 s, then 4 s: twice the wait each time
        finally:
            portal_system.start_service("rewards")
            portal_system.wait_ready("rewards", timeout=120)
        eventually_sync(
            lambda: status.inner_text() == "Đang cập nhật trực tiếp" and submitted() == before + 1,
            timeout=120,
            interval=0.5,
            message="live again, with the report counted",
        )
        assert page.evaluate("window.__notReloaded === true"), "the page was reloaded instead of updated live"
    finally:
        context.close()


def test_an_official_revises_then_withdraws_the_report(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """After the officials' tests: Trần Văn Minh (p-0002) revises the report, then withdraws it."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0002")
        reports = page.get_by_role("region", name="Báo cáo trải nghiệm của tôi")
        reports.get_by_role("link", name="Biên nhận").first.click()
        page.get_by_role("link", name="Chỉnh sửa báo cáo trải nghiệm").click()
        page.get_by_label("Nhận xét (thủ tục 1)").fill(
            "Đã sửa: hồ sơ được trả kết quả qua bưu điện, đúng hẹn."
        )
        check_page(page, axe_source, "official-revise")
        page.get_by_role("button", name="Lưu chỉnh sửa").click()
        page.get_by_role("heading", name="Biên nhận hồ sơ").wait_for()
        assert "2" in page.get_by_role("article").inner_text()  # the revision
        page.get_by_role("link", name="Chỉnh sửa báo cáo trải nghiệm").click()
        page.get_by_label("Lý do rút (không bắt buộc)").fill("Nộp nhầm phần thi.")
        page.get_by_role("button", name="Rút báo cáo").click()
        page.get_by_role("heading", name="Biên nhận hồ sơ").wait_for()
        assert "Đã rút" in page.get_by_role("article").inner_text()
        with portal_system.client("submissions", "p-0002") as c:
            [mine] = c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json()
        assert mine["status"] == "withdrawn" and mine["revision"] >= 2
    finally:
        context.close()


def test_a_unit_head_reminds_an_official_who_sees_it_in_the_inbox(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0007")  # Trương Văn Đức, head of the water resources division
        page.get_by_role("link", name="Tình hình tham gia").click()
        page.get_by_role("button", name="Nhắc nộp: Thạch Sô Phol").first.click()
        pending = page.get_by_role("region", name="Những người chưa nộp")
        assert "Đã gửi lời nhắc tới Thạch Sô Phol" in pending.get_by_role("status").inner_text()
        check_page(page, axe_source, "unit-head-reminded")
        page.get_by_role("button", name="Nhắc nộp: Thạch Sô Phol").first.click()  # twice a day: refused, said
        refused = page.get_by_role("region", name="Những người chưa nộp").get_by_role("alert")
        assert "Đã nhắc phần thi này trong hôm nay" in refused.inner_text()
    finally:
        context.close()
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0009")
        page.get_by_role("link", name="Thông báo").click()

        def reminded() -> bool:
            page.reload()
            return "Nhắc nộp" in page.get_by_role("main").inner_text()

        eventually_sync(reminded, timeout=30, interval=0.5, message="the reminder in the in-app inbox")
        check_page(page, axe_source, "official-inbox")
    finally:
        context.close()


def test_the_secretariat_sees_line_level_errors_publishes_and_looks_at_dead_letters(
    portal_system: System, browser: Any, axe_source: str, tmp_path: Path
) -> None:
    seed = (ROOT / "deploy" / "seed" / "soctrang-stnmt-2023" / "edition.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "ky-hoi-thi-2023.yaml"
    broken.write_text(seed.replace("deadline: 2023-10-25 ", "deadline: 2023-13-45 ", 1), encoding="utf-8")
    line = next(i for i, t in enumerate(broken.read_text().splitlines(), 1) if "2023-13-45" in t)
    people = tmp_path / "danh-ba.csv"
    people.write_text(
        "Mã cán bộ,Họ và tên,Email,Chức vụ,Đơn vị,Vai trò\n"
        "p-0101,Trần Thị Bé,be.tt@example.vn,Chuyên viên,u-khong-co,official\n",
        encoding="utf-8",
    )
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0004")
        page.get_by_role("link", name="Thường trực Hội thi").click()
        page.get_by_role("link", name="Kỳ Hội thi: kiểm tra và xuất bản").click()
        with portal_system.client("campaign", "p-0004") as c:
            before = c.get(f"/tenants/{TENANT}/editions/{EDITION}/versions").json()
        for button in ("Kiểm tra", "Xuất bản"):  # the same errors at the same lines; nothing published
            page.get_by_label("Tệp (.yaml, .yml, .json)").set_input_files(str(broken))
            page.get_by_role("button", name=button, exact=True).click()
            errors = page.get_by_role("region", name="Các lỗi theo từng dòng")
            row = errors.get_by_role("row").filter(has_text="deadline")
            assert row.get_by_role("cell").first.inner_text().strip() == str(line), row.inner_text()
            assert page.get_by_role("alert").inner_text().strip()
        check_page(page, axe_source, "secretariat-edition-errors")
        # the seed document as it is: "Kiểm tra" says it is valid and publishes nothing; "Xuất bản" answers
        fixed = tmp_path / "ky-hoi-thi-2023-dung.yaml"
        fixed.write_text(seed, encoding="utf-8")
        page.get_by_label("Tệp (.yaml, .yml, .json)").set_input_files(str(fixed))
        page.get_by_role("button", name="Kiểm tra", exact=True).click()
        assert "hợp lệ; chưa xuất bản gì" in page.get_by_role("status").inner_text()
        check_page(page, axe_source, "secretariat-edition-valid")
        with portal_system.client("campaign", "p-0004") as c:
            assert c.get(f"/tenants/{TENANT}/editions/{EDITION}/versions").json() == before
        page.get_by_label("Tệp (.yaml, .yml, .json)").set_input_files(str(fixed))
        page.get_by_role("button", name="Xuất bản", exact=True).click()
        assert "Đã xuất bản kỳ 2023" in page.get_by_role("status").inner_text()
        assert "Các phiên bản đã xuất bản" in page.get_by_role("main").inner_text()

        page.get_by_role("link", name="Thường trực Hội thi").click()
        page.get_by_role("link", name="Nhập danh bạ").click()
        page.get_by_label("Tệp (.csv, .xlsx, .yaml, .yml, .json)").set_input_files(str(people))
        page.get_by_role("button", name="Kiểm tra và nhập").click()
        row = (
            page.get_by_role("region", name="Các lỗi theo từng dòng")
            .get_by_role("row")
            .filter(has_text="unit")
        )
        assert row.get_by_role("cell").first.inner_text().strip() == "2"
        assert "u-khong-co" in row.inner_text()
        check_page(page, axe_source, "secretariat-directory-errors")
        with portal_system.client("campaign", "p-0004") as c:
            ids = [p["id"] for p in c.get(f"/tenants/{TENANT}/directory").json()["people"]]
        assert "p-0101" not in ids  # all or nothing

        page.get_by_role("link", name="Thường trực Hội thi").click()
        page.get_by_role("link", name="Sự kiện không xử lý được").click()
        page.get_by_role("heading", name="Sự kiện không xử lý được", level=1).wait_for()
        assert "Tạm thời không trả lời" not in page.get_by_role("main").inner_text()
        check_page(page, axe_source, "secretariat-dead-letters")
    finally:
        context.close()


def tiny_png() -> bytes:
    """A well-formed 1×1 PNG (the service checks a file's bytes, not its name)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00"))
        + chunk(b"IEND", b"")
    )


def test_a_unit_head_drafts_the_initiative_a_co_author_confirms_and_the_head_submits(
    portal_system: System, browser: Any, axe_source: str, tmp_path: Path
) -> None:
    title = "Số hóa hồ sơ cấp phép môi trường"
    image = tmp_path / "so-do-quy-trinh.png"
    image.write_bytes(tiny_png())
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0015")  # Hồ Thị Diễm My, head of the environment sub-department
        page.get_by_role("link", name="Sáng kiến").click()
        page.get_by_label("Tên sáng kiến").fill(title)
        page.get_by_label("Lĩnh vực áp dụng").fill("Cải cách thủ tục hành chính")
        page.get_by_label("Giải pháp đã biết", exact=True).fill("Tiếp nhận hồ sơ giấy tại Bộ phận Một cửa.")
        page.get_by_label("Ưu, nhược điểm của giải pháp đã biết").fill("Người dân đi lại nhiều lần.")
        page.get_by_label("Nội dung giải pháp mới").fill("Toàn bộ hồ sơ trên môi trường điện tử.")
        page.get_by_label("Tính mới").fill("Lần đầu áp dụng tại Sở.")
        page.get_by_label("Khả năng áp dụng").fill("Các đơn vị có thủ tục tương tự.")
        page.get_by_label("Lợi ích thu được").fill("Giảm 50% thời gian giải quyết.")
        page.get_by_label("Ngày áp dụng lần đầu (dd/mm/yyyy)").fill("01/06/2023")
        page.get_by_label("Tỷ lệ đóng góp của tôi (%)").fill("60")
        page.get_by_label("Đồng tác giả 1: mã cán bộ").fill("p-0016")
        page.get_by_label("Đồng tác giả 1: tỷ lệ đóng góp (%)").fill("30")  # 60 + 30: not 100
        page.get_by_role("button", name="Lưu bản nháp").click()
        assert page.get_by_role("alert").inner_text().strip()
        check_page(page, axe_source, "initiative-refused")
        page.get_by_label("Đồng tác giả 1: tỷ lệ đóng góp (%)").fill("40")
        page.get_by_role("button", name="Lưu bản nháp").click()
        assert "Đã lưu bản nháp" in page.get_by_role("status").inner_text()
        assert "chờ xác nhận" in page.get_by_role("region", name="Tình trạng").inner_text()
        page.get_by_label("Chọn tệp để đính kèm").set_input_files(str(image))
        page.get_by_role("button", name="Đính kèm", exact=True).click()
        page.get_by_role("status").filter(has_text="Đã đính kèm tệp").wait_for()
        assert "so-do-quy-trinh.png" in page.get_by_role("region", name="Tệp đính kèm").inner_text()
        check_page(page, axe_source, "initiative-draft")
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0016")  # Kim Văn Sơn, the invited co-author
        page.get_by_role("link", name="Sáng kiến").click()
        check_page(page, axe_source, "initiative-co-author")
        page.get_by_role("button", name=f"Xác nhận đồng tác giả: {title}").click()
        assert "Đã xác nhận là đồng tác giả" in page.get_by_role("status").inner_text()
    finally:
        context.close()

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0015")
        page.get_by_role("link", name="Sáng kiến").click()
        assert "chờ xác nhận" not in page.get_by_role("region", name="Tình trạng").inner_text()
        page.get_by_role("button", name="Nộp sáng kiến").click()
        assert "Đã nộp sáng kiến. Số biên nhận:" in page.get_by_role("status").inner_text()
    finally:
        context.close()


def test_the_director_sees_the_90_day_campaign_per_unit_against_its_targets(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Văn phòng Đăng ký đất đai lists three procedures (two eligible for full process, one of them offered so)
    and reports a week's dossiers; the director reads its figures against the edition's targets (80 % full
    process, 50 % online, 95 % on time); a reward council member who is neither director nor head is refused."""
    catalogue = [
        {
            "code": "1.004227",
            "name": "Cấp giấy phép môi trường",
            "level": "full_process",
            "eligible_full_process": True,
        },
        {
            "code": "1.000494",
            "name": "Đăng ký đất đai lần đầu",
            "level": "partial",
            "eligible_full_process": True,
        },
        {
            "code": "1.001234",
            "name": "Xác nhận đăng ký",
            "level": "not_offered",
            "eligible_full_process": False,
        },
    ]
    dossiers = [
        {"code": "1.004227", "dossiers_received": 700, "dossiers_online": 600, "dossiers_on_time": 690},
        {"code": "1.000494", "dossiers_received": 500, "dossiers_online": 300, "dossiers_on_time": 480},
    ]
    with portal_system.client("campaign", "p-0004") as c:  # the secretariat acts for the unit
        r = c.put(
            f"/tenants/{TENANT}/units/u-vpdkdd/procedures",
            json={"procedures": catalogue, "effective_from": "2023-08-21"},
        )
        assert r.status_code in (200, 201), r.text
        r = c.post(
            f"/tenants/{TENANT}/editions/{EDITION}/units/u-vpdkdd/progress-reports",
            json={"period_start": "2023-08-21", "period_end": "2023-08-27", "procedures": dossiers},
        )
        assert r.status_code == 201, r.text
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0003")  # the director
        page.get_by_role("link", name="Tình hình tham gia").click()
        page.get_by_role(
            "link", name="Chiến dịch 90 ngày dịch vụ công trực tuyến: tiến độ theo đơn vị"
        ).click()
        page.get_by_role("heading", name="Chiến dịch 90 ngày dịch vụ công trực tuyến", level=1).wait_for()
        check_page(page, axe_source, "online-services")
        assert "Từ ngày 21/08/2023 hết ngày 18/11/2023" in page.get_by_role("main").inner_text()
        table = page.get_by_role("table", name="Tiến độ theo đơn vị")
        row = table.get_by_role("row").filter(has_text="Văn phòng Đăng ký đất đai")
        cells = [c.strip() for c in row.get_by_role("cell").all_inner_texts()]
        assert cells == ["3", "1 / 2", "1.200", "50,0 % — chưa đạt", "75,0 % — đạt", "97,5 % — đạt"], cells
        # as of a day before the report's period: its dossiers do not count yet
        page.get_by_label("Tính đến ngày (dd/mm/yyyy)").fill("31/02/2023")
        page.get_by_role("button", name="Xem").click()
        field = page.get_by_label("Tính đến ngày (dd/mm/yyyy)")
        assert field.get_attribute("aria-invalid") == "true"
        field.fill("20/08/2023")
        page.get_by_role("button", name="Xem").click()
        row = (
            page.get_by_role("table", name="Tiến độ theo đơn vị")
            .get_by_role("row")
            .filter(has_text="Văn phòng Đăng ký đất đai")
        )
        assert row.get_by_role("cell").nth(2).inner_text().strip() == "0"
        page.get_by_role("button", name="Đăng xuất").click()

        sign_in(page, portal_system, "p-0005")  # reward council, an official: campaign shows them no figures
        page.get_by_role("button", name="Đăng xuất").wait_for()
        answer = page.goto(portal_system.url("portal") + "/online-services")
        assert answer is not None and answer.status == 403
        assert (
            "Chỉ thường trực, Giám đốc Sở và thủ trưởng đơn vị được xem số liệu chiến dịch."
            in page.get_by_role("main").inner_text()
        )
    finally:
        context.close()


def test_a_unit_head_follows_the_unit_to_its_figures_per_procedure(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Phòng Tài nguyên Biển, BĐKH và KTTV (u-tnb-bdkh: no other test of this module touches its catalogue or
    reports) lists two procedures from 21/08/2023 and reports two weeks; its head follows the unit's link from the
    campaign's table and reads each procedure's level in Vietnamese and its figures, then as of a day between the
    two weeks; another unit's page is refused."""
    unit_name = "Phòng Tài nguyên Biển, BĐKH và KTTV"
    catalogue = [
        {
            "code": "1.012001",
            "name": "Giao khu vực biển",
            "level": "full_process",
            "eligible_full_process": True,
        },
        {
            "code": "1.012002",
            "name": "Cấp giấy phép nhận chìm ở biển",
            "level": "partial",
            "eligible_full_process": True,
        },
    ]
    weeks = [
        ("2023-08-28", "2023-09-03", [("1.012001", 40, 30, 40), ("1.012002", 10, 2, 9)]),
        ("2023-09-11", "2023-09-17", [("1.012001", 60, 50, 57)]),
    ]
    with portal_system.client("campaign", "p-0004") as c:  # the secretariat acts for the unit
        r = c.put(
            f"/tenants/{TENANT}/units/u-tnb-bdkh/procedures",
            json={"procedures": catalogue, "effective_from": "2023-08-21"},
        )
        assert r.status_code == 200, r.text
        for start, end, rows in weeks:
            body = {
                "period_start": start,
                "period_end": end,
                "procedures": [
                    {"code": k, "dossiers_received": n, "dossiers_online": o, "dossiers_on_time": t}
                    for k, n, o, t in rows
                ],
            }
            r = c.post(f"/tenants/{TENANT}/editions/{EDITION}/units/u-tnb-bdkh/progress-reports", json=body)
            assert r.status_code == 201, r.text

    def row_of(page: Any, procedure: str) -> list[str]:
        table = page.get_by_role("table", name="Số liệu theo thủ tục")
        row = table.get_by_role("row").filter(has=page.get_by_role("rowheader", name=procedure, exact=True))
        return [c.strip() for c in row.get_by_role("cell").all_inner_texts()]

    context = browser.new_context(viewport={"width": 1366, "height": 768})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0010")  # the unit's head
        page.get_by_role("link", name="Tình hình tham gia").click()
        page.get_by_role(
            "link", name="Chiến dịch 90 ngày dịch vụ công trực tuyến: tiến độ theo đơn vị"
        ).click()
        page.get_by_role("table", name="Tiến độ theo đơn vị").get_by_role("link", name=unit_name).click()
        page.get_by_role("heading", name=f"Số liệu theo thủ tục: {unit_name}", level=1).wait_for()
        check_page(page, axe_source, "online-services-unit")
        assert (
            "Danh mục thủ tục của đơn vị có hiệu lực từ ngày 21/08/2023"
            in page.get_by_role("main").inner_text()
        )
        # code, level, eligible, received, online, on time, online share, on-time share
        assert row_of(page, "Giao khu vực biển") == [
            "1.012001", "Toàn trình", "Có", "100", "80", "97", "80,0 %", "97,0 %"
        ]  # fmt: skip
        assert row_of(page, "Cấp giấy phép nhận chìm ở biển") == [
            "1.012002", "Một phần", "Có", "10", "2", "9", "20,0 %", "90,0 %"
        ]  # fmt: skip
        figures = page.get_by_role("region", name="Kết quả của đơn vị so với mục tiêu").inner_text()
        assert "Tỷ lệ thủ tục toàn trình / đủ điều kiện: 50,0 % (mục tiêu 80,0 %) — chưa đạt" in figures, (
            figures
        )

        # as of 10/09/2023, between the two weeks: the second week's dossiers do not count yet
        page.get_by_label("Tính đến ngày (dd/mm/yyyy)").fill("10/09/2023")
        page.get_by_role("button", name="Xem").click()
        page.get_by_role("heading", name=f"Số liệu theo thủ tục: {unit_name}", level=1).wait_for()
        assert page.get_by_label("Tính đến ngày (dd/mm/yyyy)").input_value() == "10/09/2023"
        assert row_of(page, "Giao khu vực biển")[3:] == ["40", "30", "40", "75,0 %", "100,0 %"]

        # another unit's figures are not this head's to read: campaign's refusal, in Vietnamese
        answer = page.goto(portal_system.url("portal") + "/online-services/u-vpdkdd")
        assert answer is not None and answer.status == 403
        assert "thủ trưởng của đơn vị" in page.get_by_role("main").inner_text()
    finally:
        context.close()


def test_the_procedure_picker_offers_names_and_one_entry_per_code(
    portal_system: System, browser: Any
) -> None:
    procedures = [
        {
            "code": "1.004227",
            "name": "Cấp giấy phép môi trường",
            "level": "full_process",
            "eligible_full_process": True,
        },
        {
            "code": "1.000494",
            "name": "Đăng ký đất đai lần đầu",
            "level": "partial",
            "eligible_full_process": True,
        },
    ]
    # two units list 1.004227, one of them in its provincial long form: one entry in the picker
    long_form = dict(procedures[0], code="1.004227.000.00.00.H38")
    with portal_system.client("campaign", "p-0004") as c:
        for unit, listed in (("u-ccbvmt", procedures), ("u-ccqldd", [long_form])):
            r = c.put(f"/tenants/{TENANT}/units/{unit}/procedures", json={"procedures": listed})
            assert r.status_code in (200, 201), r.text
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0017")
        page.get_by_role("main").get_by_role("link", name="Nộp báo cáo trải nghiệm").click()
        field = page.get_by_label("Mã thủ tục (thủ tục 1)")
        options = field.evaluate("f => Array.from(f.list.options).map(o => o.value + ' | ' + o.textContent)")
        # other units' catalogues (other tests of this module) add their codes; these two are offered once each,
        # by their short code and with their name, and the list is in code order
        assert "1.000494 | 1.000494 — Đăng ký đất đai lần đầu" in options, options
        assert "1.004227 | 1.004227 — Cấp giấy phép môi trường" in options, options
        codes = [o.split(" | ", 1)[0] for o in options]
        assert len(codes) == len(set(codes)) and codes == sorted(codes), options
        assert not any(".H38" in o for o in options), options
    finally:
        context.close()


def test_a_report_sent_at_the_deadlines_exclusive_end_is_refused_in_vietnamese(
    portal_system: System, browser: Any, axe_source: str
) -> None:
    """Last in this module: it moves the deployment's clock past the experience deadline."""
    portal_system.set_clock("2023-10-25T23:59:00+07:00", rate=0.0)
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, portal_system, "p-0009")
        assert "1 phút" in page.get_by_role("region", name="Nhiệm vụ và hạn chót của tôi").inner_text()
        page.get_by_role("main").get_by_role("link", name="Nộp báo cáo trải nghiệm").click()
        fill_report(page, CODES)
        portal_system.set_clock("2023-10-26T00:00:00+07:00", rate=0.0)  # the deadline's exclusive end
        page.get_by_role("button", name="Nộp báo cáo").click()
        alert = page.get_by_role("alert").inner_text()
        assert "Đã hết hạn nhận bài phần thi này: hạn chót là" in alert and "25/10/2023" in alert, alert
        check_page(page, axe_source, "deadline-refused-phone")
        with portal_system.client("submissions", "p-0009") as c:
            assert c.get(f"/tenants/{TENANT}/editions/{EDITION}/experience-reports").json() == []
    finally:
        context.close()


def test_the_portal_user_may_read_the_stream_but_not_publish(portal_system: System) -> None:
    """The live feed's NATS user: a publish of a fact is refused by the server (permissions violation)."""
    import asyncio

    import nats

    own = service_credentials(portal_system.nats_url, "portal")
    if own is None:
        pytest.skip("a given NATS server: its users are not ours")

    async def attempt() -> str:
        errors: list[str] = []

        async def on_error(exc: Exception) -> None:
            errors.append(str(exc))

        from shared.nats_auth import without_userinfo

        nc = await nats.connect(
            without_userinfo(portal_system.nats_url), user=own[0], password=own[1], error_cb=on_error
        )
        try:
            await nc.publish(f"{portal_system.prefix}.{TENANT}.submission.received", b"{}")
            await nc.flush()
            # the server reports the violation asynchronously: wait for it, with a deadline
            await eventually(lambda: errors, timeout=5, message="a permissions violation")
        finally:
            await nc.close()
        return " ".join(errors)

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:  # Playwright's sync API keeps an event loop in this thread
        assert "permissions violation" in pool.submit(asyncio.run, attempt()).result().lower()


def test_portal_health(portal_system: System) -> None:
    assert httpx.get(portal_system.url("portal") + "/health/ready").status_code == 200

"""Vietnamese first, English second: the portal's words, and how dates, times and numbers are written.

Dates are dd/mm/yyyy and times Asia/Ho_Chi_Minh in both languages; numbers use Vietnamese separators
(1.234,5) in Vietnamese and English ones in English.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from shared.clock import VN

LANGS = ("vi", "en")

WORDS: dict[str, tuple[str, str]] = {
    "app": ("Hội thi Cải cách hành chính", "Administrative Reform Contest"),
    "skip": ("Bỏ qua, đến nội dung chính", "Skip to main content"),
    "switch": ("English", "Tiếng Việt"),
    "home": ("Trang chủ", "Home"),
    "login": ("Đăng nhập", "Sign in"),
    "logout": ("Đăng xuất", "Sign out"),
    "demo_login": ("Đăng nhập thử (bản trình diễn)", "Demo sign-in"),
    "demo_note": (
        "Chỉ dùng cho bản trình diễn trên máy này: chọn một người trong danh bạ, không cần mật khẩu.",
        "For the demo on this machine only: pick a person from the directory, no password.",
    ),
    "oidc_login": ("Đăng nhập bằng tài khoản của cơ quan", "Sign in with your agency account"),
    "tenant": ("Mã cơ quan", "Agency code"),
    "edition": ("Kỳ hội thi", "Edition"),
    "person": ("Mã cán bộ", "Person id"),
    "my_assignments": ("Nhiệm vụ và hạn chót của tôi", "My assignments and deadlines"),
    "part": ("Phần thi", "Part"),
    "deadline": ("Hạn chót", "Deadline"),
    "time_left": ("Thời gian còn lại", "Time left"),
    "status": ("Trạng thái", "Status"),
    "overdue": ("Đã quá hạn", "Past the deadline"),
    "my_reports": ("Báo cáo trải nghiệm của tôi", "My experience reports"),
    "new_report": ("Nộp báo cáo trải nghiệm", "Submit an experience report"),
    "revise_report": ("Chỉnh sửa báo cáo trải nghiệm", "Revise the experience report"),
    "withdraw": ("Rút báo cáo", "Withdraw the report"),
    "withdraw_reason": ("Lý do rút (không bắt buộc)", "Reason (optional)"),
    "procedure": ("Thủ tục", "Procedure"),
    "code": ("Mã thủ tục", "Procedure code"),
    "used_on": ("Ngày sử dụng (dd/mm/yyyy)", "Date used (dd/mm/yyyy)"),
    "level": ("Mức độ", "Level"),
    "toan_trinh": ("Toàn trình", "Full process"),
    "mot_phan": ("Một phần", "Partial"),
    "rating": ("Đánh giá (1–5)", "Rating (1–5)"),
    "narrative": ("Nhận xét", "Comments"),
    "problems": ("Vướng mắc (không bắt buộc)", "Problems (optional)"),
    "portal_used": ("Cổng dịch vụ công đã dùng", "Portal used"),
    "search_code": ("Tìm thủ tục theo mã", "Find a procedure by code"),
    "submit": ("Nộp báo cáo", "Submit the report"),
    "save": ("Lưu chỉnh sửa", "Save the revision"),
    "receipt": ("Biên nhận hồ sơ", "Receipt"),
    "receipts": ("Biên nhận của tôi", "My receipts"),
    "receipt_number": ("Số biên nhận", "Receipt number"),
    "received_at": ("Thời điểm tiếp nhận", "Received at"),
    "revision": ("Lần chỉnh sửa", "Revision"),
    "procedures": ("Thủ tục đã trải nghiệm", "Procedures experienced"),
    "print": ("In biên nhận", "Print the receipt"),
    "notifications": ("Thông báo", "Notifications"),
    "no_notifications": ("Chưa có thông báo nào.", "No notifications yet."),
    "nothing": ("Chưa có.", "None yet."),
    "errors_above": (
        "Chưa gửi được: vui lòng sửa các lỗi bên dưới.",
        "Not sent: please fix the errors below.",
    ),
    "dashboard": ("Tình hình tham gia", "Participation"),
    "as_of": ("Tính đến ngày (dd/mm/yyyy)", "As of (dd/mm/yyyy)"),
    "show": ("Xem", "Show"),
    "unit": ("Đơn vị", "Unit"),
    "assigned": ("Được giao", "Assigned"),
    "fulfilled": ("Đã nộp", "Fulfilled"),
    "late": ("Nộp muộn", "Late"),
    "missed": ("Không nộp", "Missed"),
    "live": ("Cập nhật trực tiếp", "Live updates"),
    "live_on": ("Đang cập nhật trực tiếp", "Updating live"),
    "live_busy": (
        "Hệ thống đang bận: số liệu sẽ được cập nhật lại sau {s} giây",
        "The system is busy: figures update again in {s} s",
    ),
    "priority": ("Danh sách ưu tiên khen thưởng", "Reward priority list"),
    "download_xlsx": ("Tải về (XLSX)", "Download (XLSX)"),
    "pages": ("Các trang của danh sách", "Pages of the list"),
    "page": ("Trang", "Page"),
    "showing": ("Đang xem cá nhân", "Showing people"),
    "page_prev": ("« Trang trước", "« Previous page"),
    "page_next": ("Trang sau »", "Next page »"),
    "open": ("Đang mở", "Open"),
    "closed": ("Đã đóng", "Closed"),
    "pending": ("Chưa nộp", "Not yet submitted"),
    "done": ("Đã nộp", "Submitted"),
    "submitted": ("Đã tiếp nhận", "Received"),
    "withdrawn": ("Đã rút", "Withdrawn"),
    "rejected": ("Không hợp lệ", "Rejected"),
    "view": ("Xem", "View"),
    "edit": ("Sửa", "Edit"),
    "signed_in_as": ("Đang đăng nhập", "Signed in as"),
    "roles": ("Vai trò", "Roles"),
    "service_down": (
        "Hệ thống tạm thời không phản hồi, vui lòng thử lại sau ít phút.",
        "The system is not answering right now; please try again in a few minutes.",
    ),
    "csrf": (
        "Biểu mẫu đã hết hạn hoặc không hợp lệ, vui lòng tải lại trang và gửi lại.",
        "The form expired or is not valid; reload the page and send it again.",
    ),
    "demo_refused": (
        "Đăng nhập thử không được phép trong môi trường production.",
        "The demo sign-in is refused in production.",
    ),
    "unknown_person": ("Không tìm thấy cán bộ này trong danh bạ.", "No such person in the directory."),
    "required": ("Bắt buộc nhập.", "Required."),
    "bad_date": ("Ngày không hợp lệ, nhập theo dạng dd/mm/yyyy.", "Not a date: type dd/mm/yyyy."),
    "bad_number": ("Phải là một số.", "Must be a number."),
}

ROLE_NAMES: dict[str, tuple[str, str]] = {
    "official": ("Cán bộ, công chức", "Official"),
    "unit_head": ("Thủ trưởng đơn vị", "Unit head"),
    "union_secretary": ("Bí thư / Chủ tịch đoàn thể", "Union secretary"),
    "council_member": ("Thành viên Hội đồng", "Council member"),
    "council_chair": ("Chủ tịch Hội đồng", "Council chair"),
    "secretariat": ("Văn phòng Sở (Thường trực)", "Secretariat"),
    "director": ("Giám đốc Sở", "Director"),
    "reward_council": ("Hội đồng Thi đua - Khen thưởng", "Reward council"),
    "admin": ("Quản trị", "Administrator"),
}

LEVEL_NAMES: dict[str, tuple[str, str]] = {  # a procedure's online level (Decree 42/2022/NĐ-CP)
    "full_process": ("Toàn trình", "Full process"),
    "partial": ("Một phần", "Partial"),
    "not_offered": ("Chưa cung cấp trực tuyến", "Not offered online"),
}


def word(key: str, lang: str) -> str:
    vi, en = WORDS[key]
    return en if lang == "en" else vi


def role_name(role: str, lang: str) -> str:
    vi, en = ROLE_NAMES.get(role, (role, role))
    return en if lang == "en" else vi


def level_name(level: str, lang: str) -> str:
    vi, en = LEVEL_NAMES.get(level, (level, level))
    return en if lang == "en" else vi


def _aware(value: str | datetime) -> datetime:
    dt = datetime.fromisoformat(value) if isinstance(value, str) else value
    return dt.astimezone(VN)


def fmt_date(value: str | date | datetime | None) -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
        return _aware(value).strftime("%d/%m/%Y")  # type: ignore[arg-type]
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return d.strftime("%d/%m/%Y")  # type: ignore[union-attr]


def fmt_datetime(value: str | datetime | None) -> str:
    if not value:
        return ""
    return _aware(value).strftime("%H:%M %d/%m/%Y")


def deadline_label(value: str | datetime, lang: str) -> str:
    """A deadline is an exclusive end: 26/10/2023 00:00 is shown as the last day, "hết ngày 25/10/2023"."""
    end = _aware(value)
    if end.hour == 0 and end.minute == 0 and end.second == 0:
        last = (end - timedelta(days=1)).strftime("%d/%m/%Y")
        return f"until the end of {last}" if lang == "en" else f"hết ngày {last}"
    shown = end.strftime("%H:%M %d/%m/%Y")
    return f"before {shown}" if lang == "en" else f"trước {shown}"


def time_left(deadline: str | datetime, now: datetime, lang: str) -> str:
    left = _aware(deadline) - now
    if left.total_seconds() <= 0:
        return word("overdue", lang)
    days, rest = divmod(int(left.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if lang == "en":
        parts = [
            f"{days} days" if days else "",
            f"{hours} h" if hours else "",
            f"{minutes} min" if not days else "",
        ]
    else:
        parts = [
            f"{days} ngày" if days else "",
            f"{hours} giờ" if hours else "",
            f"{minutes} phút" if not days else "",
        ]
    return " ".join(p for p in parts if p) or ("under a minute" if lang == "en" else "dưới 1 phút")


def fmt_number(value: Any, lang: str, digits: int = 0) -> str:
    """1234567.5 → 1.234.567,5 (Vietnamese) or 1,234,567.5 (English)."""
    if value is None or value == "":
        return ""
    text = f"{float(value):,.{digits}f}"
    if lang == "en":
        return text
    return text.replace(",", "\u0001").replace(".", ",").replace("\u0001", ".")


def parse_date_vn(text: str) -> date | None:
    """dd/mm/yyyy (also d/m/yyyy); ISO yyyy-mm-dd is accepted too. None when it is not a date."""
    text = text.strip()
    try:
        if "/" in text:
            d, m, y = (int(p) for p in text.split("/"))
            return date(y, m, d)
        return date.fromisoformat(text)
    except ValueError:
        return None


def line_of(content: bytes, field: str) -> int | None:
    """The line of a YAML/JSON document a service's field path names (``parts.0.initiative.deadline``): the
    services validate the parsed document and name fields, not lines; the person fixes a line. A segment the
    document does not have (a union's tag) is skipped; None when nothing matches."""
    import yaml

    try:
        node = yaml.compose(content.decode("utf-8", errors="replace"), Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    found = None
    for seg in (s for s in field.replace("[", ".").replace("]", "").split(".") if s):
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if getattr(k, "value", None) == seg), None)
            key = next((k for k, v in node.value if getattr(k, "value", None) == seg), None)
            if nxt is not None:
                found, node = key, nxt
        elif isinstance(node, yaml.SequenceNode) and seg.isdigit() and int(seg) < len(node.value):
            node = node.value[int(seg)]
            found = node
    return found.start_mark.line + 1 if found is not None else None

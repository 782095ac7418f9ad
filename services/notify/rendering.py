"""Message texts from the Jinja2 templates in ``templates/`` (Vietnamese; HTML autoescaped)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from services.notify.domain import RECEIPT, Receipt

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(template: str, context: dict[str, object]) -> Message:
    env = environment()
    subject = " ".join(env.get_template(f"{template}.subject.j2").render(context).split())
    return Message(
        subject=subject,
        text=env.get_template(f"{template}.txt.j2").render(context),
        html=env.get_template(f"{template}.html.j2").render(context),
    )


def render_receipt(receipt: Receipt) -> Message:
    return render(RECEIPT, receipt.context())

"""Message texts from Jinja2 templates: data an operator can override without code.

A template is one file ``<language>/<name>.j2`` (``vi`` always; ``en`` where written) with three blocks:
``subject``, ``text`` (plain) and ``html`` (autoescaped). ``name`` is the template a trigger sends (see
``domain.TRIGGERS``): ``submission.received``, ``deadline.passed.mobiliser``, ``mobilisation.daily`` …

The built-in set is ``services/notify/templates/``. An operator points ``HOITHI_NOTIFY_TEMPLATES_DIR`` at a
folder of the same shape; each file there replaces the built-in one of the same name. The whole set is checked
when the service starts (and by ``hoithi notify templates-check DIR``): a syntax error, a missing block, or a
file naming an unknown event type is refused with the file and line, and the service does not start. Messages
already queued are stored rendered in ``deliveries``, so a refused template set loses none of them: they are
sent once the service runs again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from services.notify.domain import RECEIPT, Receipt, check_template_name
from services.notify.domain import TEMPLATES as KNOWN

BUILTIN = Path(__file__).parent.parent / "templates"
LANGUAGES = ("vi", "en")
BLOCKS = ("subject", "text", "html")
OVERRIDE_ENV = "HOITHI_NOTIFY_TEMPLATES_DIR"


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str


class TemplateSetError(ValueError):
    """A template set refused at load: every problem as ``file:line: what``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("template set refused:\n  " + "\n  ".join(problems))


def _environment(override: Path | None, autoescape: bool = False) -> jinja2.Environment:
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        loaders.append(jinja2.FileSystemLoader(override))
    loaders.append(jinja2.FileSystemLoader(BUILTIN))
    return jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=autoescape,  # two environments: the html block escaped, subject and text not
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _known_event_types() -> list[str]:
    from shared.events.catalogue import CATALOGUE

    return list(CATALOGUE)


def check(directory: Path) -> list[str]:
    """Problems of the template files under ``directory`` (``file:line: what``); [] when all are good."""
    problems: list[str] = []
    if not directory.is_dir():
        return [f"{directory}: not a folder"]
    env = _environment(None)
    known = _known_event_types()
    for path in sorted(directory.rglob("*")):
        if path.is_dir() or path.name.startswith("."):
            continue
        rel = path.relative_to(directory)
        if len(rel.parts) != 2 or rel.parts[0] not in LANGUAGES or path.suffix != ".j2":
            problems.append(f"{path}:1: expected <language>/<template>.j2 with language one of {LANGUAGES}")
            continue
        name = path.name[: -len(".j2")]
        why = check_template_name(name, known)
        if why is not None:
            problems.append(f"{path}:1: {why}")
            continue
        source = path.read_text(encoding="utf-8")
        try:
            template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(f"{path}:{exc.lineno}: {exc.message}")
            continue
        missing = [b for b in BLOCKS if b not in template.blocks]
        if missing:
            problems.append(f"{path}:1: missing block(s) {', '.join(missing)}")
    return problems


def override_dir() -> Path | None:
    """``HOITHI_NOTIFY_TEMPLATES_DIR``: an operator's overrides (``<language>/<template>.j2``). Read through the
    settings once per value of the variable, not per message (building the settings costs a millisecond)."""
    return _override_dir(os.environ.get(OVERRIDE_ENV))


@lru_cache(maxsize=4)
def _override_dir(_raw: str | None) -> Path | None:
    from services.notify.settings import NotifySettings
    from shared.settings import service_settings

    own = service_settings("notify")
    return own.templates_dir if isinstance(own, NotifySettings) else None


@lru_cache(maxsize=4)
def environment(override: Path | None = None) -> tuple[jinja2.Environment, jinja2.Environment]:
    """The template set, checked: raises ``TemplateSetError`` naming file and line."""
    problems = check(BUILTIN)
    if override is not None:
        problems += check(override)
    if problems:
        raise TemplateSetError(problems)
    return _environment(override), _environment(override, autoescape=True)


def load() -> tuple[jinja2.Environment, jinja2.Environment]:
    """The set in force (built-in, with the operator's override folder if set)."""
    return environment(override_dir())


def render(template: str, context: dict[str, object], language: str = "vi") -> Message:
    env, html_env = load()
    lang = language if language in LANGUAGES else "vi"
    try:
        tmpl = env.get_template(f"{lang}/{template}.j2")
    except jinja2.TemplateNotFound:
        tmpl = env.get_template(f"vi/{template}.j2")
    plain = tmpl.new_context(dict(context))
    subject = " ".join("".join(tmpl.blocks["subject"](plain)).split())
    text = "".join(tmpl.blocks["text"](tmpl.new_context(dict(context)))).strip() + "\n"
    html_tmpl = html_env.get_template(tmpl.name or f"vi/{template}.j2")
    html = "".join(html_tmpl.blocks["html"](html_tmpl.new_context(dict(context)))).strip() + "\n"
    return Message(subject=subject, text=text, html=html)


def render_receipt(receipt: Receipt, language: str = "vi") -> Message:
    return render(RECEIPT, receipt.context(), language)


__all__ = ["KNOWN", "Message", "TemplateSetError", "check", "load", "render", "render_receipt"]

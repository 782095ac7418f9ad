"""The one place that names the services.

``shared/`` never names a service: the ``hoithi`` CLI (serve, migrate, up, watch, each service's own
commands), the migrations and the settings read this table. A new service is one line here and one folder
beside this file, in the shape every other one has (see ``shared/ARCHITECTURE.md``).

Nothing here imports a service: every entry is an import string, resolved only by the process that needs it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Service:
    name: str
    port: int  # the default HTTP port (``HOITHI_<NAME>_PORT`` overrides it)
    app: str  # the FastAPI factory, ``module:function``
    models: str | None  # the module whose ``metadata`` the Alembic history describes; None: a front end
    migrations: Path | None  # the folder holding ``env.py`` and ``versions/``
    cli: str | None = None  # a module with ``commands: dict[str, typer.Typer | Callable]``
    settings: str | None = (
        None  # ``module:Class``, a ``shared.settings.ServiceSettings`` of the service's own
    )
    # The service's own ``hoithi`` command (name, then options) that ``hoithi up`` runs once the databases are
    # migrated, to load the demo's data; ``hoithi up --seed DIR`` hands it DIR as its argument.
    demo: tuple[str, ...] = ()


def _service(name: str, port: int, *, settings: str | None = None, demo: tuple[str, ...] = ()) -> Service:
    package = f"services.{name}"
    return Service(
        name=name,
        port=port,
        app=f"{package}.app:create_app",
        models=f"{package}.models",
        migrations=Path(__file__).resolve().parent / name / "migrations",
        cli=f"{package}.cli",
        settings=settings,
        demo=demo,
    )


def _frontend(name: str, port: int, *, settings: str | None = None) -> Service:
    """A process that owns no data (no database, no migrations, no durable consumers): it serves people
    through the services' public HTTP APIs. ``hoithi up`` and ``hoithi serve`` start it like a service."""
    return Service(
        name=name,
        port=port,
        app=f"services.{name}.app:create_app",
        models=None,
        migrations=None,
        settings=settings,
    )


REGISTRY: tuple[Service, ...] = (
    # the demo's directory and edition, and its procedure catalogue (the picker's names); plain ``hoithi seed``
    # (the tests') loads no catalogue
    _service("campaign", 8101, demo=("seed", "--demo-procedures")),
    _service("submissions", 8102),
    _service("rewards", 8103),
    _service("notify", 8104, settings="services.notify.settings:NotifySettings"),
    _frontend("portal", 8100, settings="services.portal.settings:PortalSettings"),
)

"""``hoithi seed``, ``hoithi directory …`` and ``hoithi edition …``: the secretariat's documents from the
command line (mounted by ``shared/cli.py`` from the registry).

Each command works on campaign's own database (``HOITHI_CAMPAIGN_DATABASE_URL``): the state change and its
events in one transaction; campaign's relay publishes them when it runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from services.campaign import models
from services.campaign.domain import directory_io
from services.campaign.domain import documents as domain_documents
from services.campaign.domain.directory_io import DirectoryImportError
from services.campaign.usecases import documents
from services.campaign.usecases.publishing import stored_directory
from shared.clock import Clock
from shared.db import make_engine
from shared.documents import check_edition_against_directory, dump_yaml
from shared.outbox import Outbox
from shared.settings import get_settings, service_settings

directory_app = typer.Typer(help="The directory (danh bạ): units, unions, people.", no_args_is_help=True)
edition_app = typer.Typer(help="Editions (kỳ hội thi): validate, import, export.", no_args_is_help=True)
# The demo seed of this checkout (found from the code, not the working directory); in the image, /app/deploy.
_CHECKOUT_SEED = Path(__file__).resolve().parents[2] / "deploy" / "seed" / "soctrang-stnmt-2023"
SEED_DIR = _CHECKOUT_SEED if _CHECKOUT_SEED.is_dir() else Path("deploy/seed/soctrang-stnmt-2023")


def seed(
    path: Annotated[Path, typer.Argument(help="folder with directory.yaml and edition.yaml")] = SEED_DIR,
    demo_procedures: Annotated[
        bool, typer.Option(help="also the folder's demo-procedures.yaml, for units without a catalogue")
    ] = False,
) -> None:
    """Load a directory and an edition into campaign (idempotent); campaign publishes them."""
    from services.campaign.seed import load

    for line in asyncio.run(load(path, demo_procedures)):
        typer.echo(line)


commands: dict[str, typer.Typer | Callable[..., None]] = {
    "seed": seed,
    "directory": directory_app,
    "edition": edition_app,
}

T = TypeVar("T")


def _run(work: Callable[[Any, Outbox, Any], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = get_settings()
        clock = Clock.from_settings(settings)
        engine = make_engine(service_settings("campaign", settings).database_url)
        try:
            async with engine.begin() as conn:
                return await work(conn, Outbox(models.backbone, settings, "campaign", clock), clock.now())
        finally:
            await engine.dispose()

    return asyncio.run(go())


def _fail(exc: DirectoryImportError) -> None:
    typer.echo("Không ghi gì: có lỗi (nothing written):", err=True)
    for e in exc.errors:
        typer.echo(f"  {e}", err=True)
    raise typer.Exit(1)


@directory_app.command("import")
def directory_import(
    file: Annotated[
        Path, typer.Argument(help="YAML/JSON document, or a CSV/XLSX list of units or of people")
    ],
    tenant: Annotated[str | None, typer.Option(help="required for CSV/XLSX lists")] = None,
) -> None:
    """Merge a directory document or an HR list into the directory; all rows or none."""
    content = file.read_bytes()
    if tenant is None:
        if file.suffix.lower() in (".csv", ".xlsx", ".xlsm"):
            raise typer.BadParameter("a CSV/XLSX list needs --tenant")
        tenant = directory_io.load_document(content, file.name).tenant
    try:
        lines = _run(
            lambda conn, outbox, now: documents.import_directory_file(
                conn, outbox, tenant, content, file.name, now
            )
        )
    except DirectoryImportError as exc:
        _fail(exc)
    for line in lines:
        typer.echo(line)


@directory_app.command("export")
def directory_export(tenant: Annotated[str, typer.Argument()]) -> None:
    """Print the whole directory (every effective-dated row) as YAML."""

    async def work(conn: Any, outbox: Outbox, now: Any) -> str:
        return dump_yaml(await stored_directory(conn, tenant))

    typer.echo(_run(work))


@edition_app.command("validate")
def edition_validate(
    file: Annotated[Path, typer.Argument(help="edition document, YAML or JSON")],
    against_directory: Annotated[
        bool, typer.Option(help="also check it against campaign's directory")
    ] = False,
) -> None:
    """Check an edition document; print every problem (English and Vietnamese)."""
    try:
        edition = domain_documents.parse_edition(file.read_bytes(), file.name)
    except DirectoryImportError as exc:
        _fail(exc)
    if against_directory:

        async def work(conn: Any, outbox: Outbox, now: Any) -> list[str]:
            return check_edition_against_directory(edition, await stored_directory(conn, edition.tenant))

        problems = _run(work)
        if problems:
            for p in problems:
                typer.echo(f"  {p}", err=True)
            raise typer.Exit(1)
    typer.echo(f"edition {edition.tenant}/{edition.edition}: hợp lệ (valid), {len(edition.parts)} phần thi")


@edition_app.command("import")
def edition_import(file: Annotated[Path, typer.Argument(help="edition document, YAML or JSON")]) -> None:
    """Publish an edition: a changed document becomes the next version; earlier versions are kept."""
    try:
        edition = domain_documents.parse_edition(file.read_bytes(), file.name)
        lines = _run(lambda conn, outbox, now: documents.import_edition(conn, outbox, edition, now))
    except DirectoryImportError as exc:
        _fail(exc)
    for line in lines:
        typer.echo(line)


@edition_app.command("export")
def edition_export(
    tenant: Annotated[str, typer.Argument()],
    edition: Annotated[str, typer.Argument()],
    version: Annotated[int | None, typer.Option(help="default: the latest")] = None,
) -> None:
    """Print an edition document (the latest version, or ``--version N``) as YAML."""

    async def work(conn: Any, outbox: Outbox, now: Any) -> Any:
        return await documents.export_edition(conn, tenant, edition, version)

    doc = _run(work)
    if doc is None:
        typer.echo(
            f"Không có kỳ hội thi {tenant}/{edition}" + (f" phiên bản {version}" if version else ""), err=True
        )
        raise typer.Exit(1)
    typer.echo(dump_yaml(doc))

"""CLI group ``leaderboard``: ``add``, ``build``, ``serve``, ``screenshot``.

``register(app)`` adds the group to the main typer app. Only typer is imported at module level;
the leaderboard package is imported when a command runs (it never imports torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer

DEFAULT_ENTRIES = Path("leaderboard/entries")
DEFAULT_SETTINGS = Path("leaderboard/site.yaml")
DEFAULT_SITE = Path("leaderboard/_site")

leaderboard_app = typer.Typer(
    name="leaderboard",
    help="Static, significance-aware leaderboard from verified records.",
    no_args_is_help=True,
)


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@leaderboard_app.command("add")
def add(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folder(s) to verify and add.")],
    entries: Annotated[Path, typer.Option("--entries", help="Entries folder.")] = DEFAULT_ENTRIES,
    settings: Annotated[
        Path, typer.Option("--settings", help="Site settings (benchmark definition).")
    ] = DEFAULT_SETTINGS,
) -> None:
    """Verify each RUN_DIR and copy its record and predictions into the entries folder."""
    from harness.errors import HarnessError
    from harness.leaderboard.entries import add_entry, load_settings

    try:
        site_settings = load_settings(settings)
        for run_dir in run_dirs:
            target = add_entry(run_dir, entries, settings=site_settings)
            typer.echo(f"added {run_dir} as {target}")
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))


@leaderboard_app.command("build")
def build(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder for the site.")
    ] = DEFAULT_SITE,
    entries: Annotated[Path, typer.Option("--entries", help="Entries folder.")] = DEFAULT_ENTRIES,
    settings: Annotated[
        Path, typer.Option("--settings", help="Site settings YAML.")
    ] = DEFAULT_SETTINGS,
) -> None:
    """Verify every entry and write the static site (nothing is written if one fails)."""
    from harness.errors import HarnessError
    from harness.leaderboard.site import build_site

    try:
        result = build_site(entries, out, settings_file=settings)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    typer.echo(
        f"built {result.out_dir}: {result.n_entries} entries, {result.n_benchmarks} benchmarks, "
        f"{result.n_files} files, {result.total_bytes / 1024:.1f} KiB; open {result.out_dir / 'index.html'}"
    )


@leaderboard_app.command("serve")
def serve(
    site: Annotated[Path, typer.Option("--site", help="Built site folder.")] = DEFAULT_SITE,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1.")
    ] = 8000,
) -> None:
    """Serve the built site on http://127.0.0.1:PORT (localhost only) until Ctrl-C."""
    from harness.errors import HarnessError
    from harness.leaderboard.site import make_server

    try:
        server = make_server(site, port=port)
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))
    except OSError as exc:
        _fail(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})", 2)
    typer.echo(f"serving {site} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@leaderboard_app.command("screenshot")
def screenshot(
    out: Annotated[Path, typer.Argument(help="Folder for the PNG files.")],
    site: Annotated[Path, typer.Option("--site", help="Built site folder.")] = DEFAULT_SITE,
    model: Annotated[
        str | None, typer.Option("--model", help="Entry id of the model page to shoot.")
    ] = None,
) -> None:
    """Screenshot the overview and a model page (desktop and phone) with headless Chromium."""
    from harness.errors import HarnessError
    from harness.leaderboard.screenshot import screenshot as shoot

    try:
        for path in shoot(site, out, model=model):
            typer.echo(str(path))
    except HarnessError as exc:
        _fail(exc.message, int(exc.exit_code))


def register(app: typer.Typer) -> None:
    app.add_typer(leaderboard_app, name="leaderboard")

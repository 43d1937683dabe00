"""CLI group ``leaderboard``: ``add``, ``build``, ``serve``, ``screenshot``.

``register(app)`` adds the group to the main typer app; each subcommand is registered under
the one error handler (``harness.cli.handler``). Only typer is imported at module level;
the leaderboard package is imported when a command runs (it never imports torch).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from harness.cli.handler import command
from harness.errors import HarnessError

DEFAULT_ENTRIES = Path("leaderboard/entries")
DEFAULT_SETTINGS = Path("leaderboard/site.yaml")
DEFAULT_SITE = Path("leaderboard/_site")


def add(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folder(s) to verify and add.")],
    entries: Annotated[Path, typer.Option("--entries", help="Entries folder.")] = DEFAULT_ENTRIES,
    settings: Annotated[
        Path, typer.Option("--settings", help="Site settings (benchmark definition).")
    ] = DEFAULT_SETTINGS,
) -> None:
    """Verify each RUN_DIR and copy its record and predictions into the entries folder."""
    from harness.leaderboard.entries import add_entry, load_settings

    site_settings = load_settings(settings)
    for run_dir in run_dirs:
        target = add_entry(run_dir, entries, settings=site_settings)
        typer.echo(f"added {run_dir} as {target}")


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
    from harness.leaderboard.site import build_site

    result = build_site(entries, out, settings_file=settings)
    typer.echo(
        f"built {result.out_dir}: {result.n_entries} entries, {result.n_benchmarks} benchmarks, "
        f"{result.n_files} files, {result.total_bytes / 1024:.1f} KiB; open {result.out_dir / 'index.html'}"
    )


def serve(
    site: Annotated[Path, typer.Option("--site", help="Built site folder.")] = DEFAULT_SITE,
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port on 127.0.0.1.")
    ] = 8000,
) -> None:
    """Serve the built site on http://127.0.0.1:PORT (localhost only) until Ctrl-C."""
    from harness.leaderboard.site import make_server

    try:
        server = make_server(site, port=port)
    except OSError as exc:
        raise HarnessError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror})") from None
    typer.echo(f"serving {site} on http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def screenshot(
    out: Annotated[Path, typer.Argument(help="Folder for the PNG files.")],
    site: Annotated[Path, typer.Option("--site", help="Built site folder.")] = DEFAULT_SITE,
    model: Annotated[
        str | None, typer.Option("--model", help="Entry id of the model page to shoot.")
    ] = None,
) -> None:
    """Screenshot the overview and a model page (desktop and phone) with headless Chromium."""
    from harness.leaderboard.screenshot import screenshot as shoot

    for path in shoot(site, out, model=model):
        typer.echo(str(path))


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        name="leaderboard",
        help="Static, significance-aware leaderboard from verified records.",
        no_args_is_help=True,
    )
    for fn in (add, build, serve, screenshot):
        command(group, fn)
    app.add_typer(group, name="leaderboard")

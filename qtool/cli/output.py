"""How commands print: JSON when asked, a rich table otherwise."""

from __future__ import annotations

import json
from collections.abc import Sequence

import click
from rich.console import Console
from rich.table import Table

console = Console()
status = Console(stderr=True)


def wants_json() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.obj and "json" in ctx.obj:
            return bool(ctx.obj["json"])
        ctx = ctx.parent
    return False


def emit(data, title: str | None = None, rows: Sequence[dict] | None = None,
         columns: Sequence[str] | None = None) -> None:
    """Print ``data`` as JSON, or ``rows`` as a table (falling back to key: value lines)."""
    if wants_json():
        click.echo(json.dumps(data, indent=2, default=str))
        return
    if rows is not None:
        columns = list(columns or (rows[0].keys() if rows else []))
        table = Table(title=title)
        for c in columns:
            table.add_column(c)
        for r in rows:
            table.add_row(*(_fmt(r.get(c)) for c in columns))
        console.print(table)
        return
    if title:
        console.print(f"[bold]{title}[/bold]")
    for k, v in (data.items() if isinstance(data, dict) else enumerate(data)):
        console.print(f"{k}: {_fmt(v)}")


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return "" if v is None else str(v)

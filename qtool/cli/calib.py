"""``qtool calib``: check a calibration set before a multi-hour run."""

from __future__ import annotations

from pathlib import Path

import click

from qtool import paths
from qtool.calibration.inspect import inspect_set
from qtool.calibration.records import check_set
from qtool.cli.output import emit
from qtool.errors import QtoolError
from qtool.models.checkpoint import resolve_model


@click.group("calib")
def command():
    """Validate and inspect calibration sets (folder with records.jsonl)."""


@command.command("validate")
@click.argument("path", type=click.Path(path_type=Path), required=False)
def validate(path):
    """List every problem in the set at PATH (default: the shipped set); exit 2 if there is any."""

    calib = check_set(path or paths.CALIB_DATA)
    for problem in calib.problems:
        click.echo(f"problem: {problem}", err=True)
    if calib.problems:
        raise QtoolError(f"{len(calib.problems)} of {len(calib.problems) + len(calib.records)} records are invalid",
                         "fix the records listed above")
    emit({"path": str(calib.path), "records": len(calib.records), "sha256": calib.sha256},
         title=f"{calib.path}: {len(calib.records)} valid records")


@command.command("inspect")
@click.argument("path", type=click.Path(path_type=Path), required=False)
@click.option("--model", help="Model folder or bundled name whose processor limits to use.")
def inspect(path, model):
    """Counts, image sizes and visual tokens per sample of the set at PATH (default: the shipped set) for
    MODEL's processor."""

    report = inspect_set(path or paths.CALIB_DATA, resolve_model(model) if model else None)
    fields = ("path", "records", "sha256", "pixel_limits", "visual_tokens", "image_width", "image_height",
              "text_chars")
    rows = [{"field": k, "value": _line(report[k])} for k in fields] + [
        {"field": "problems", "value": len(report["problems"])}]
    emit(report, title="calibration set", rows=rows)


def _line(value) -> str:
    return ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)

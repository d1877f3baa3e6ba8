"""``qtool models``: what qtool supports, and random-weight copies of the real model shapes."""

from __future__ import annotations

from pathlib import Path

import click

from qtool.cli import ranges
from qtool.cli.output import emit, status, wants_json
from qtool.models.checkpoint import list_models
from qtool.models.random_build import build_random
from qtool.models.shapes import get_shape


def _known_shape(ctx, param, name):

    get_shape(name)  # raises QtoolError (one line, exit 2) before other options are checked
    return name


@click.group("models", invoke_without_command=True)
@click.pass_context
def command(ctx: click.Context) -> None:
    """List supported architectures, bundled models and the real models' shapes.

    \b
    Example:
      qtool models
      qtool models build-random qwen2-vl-2b --out out/qwen2-vl-2b-random
    """
    if ctx.invoked_subcommand is not None:
        return

    report = list_models()
    if wants_json():
        emit(report)
        return
    emit(report, title="Supported architectures", rows=report["architectures"])
    emit(report, title="Bundled models", rows=[
        {"name": b["name"], "status": b["status"], "params": _count(b["params"]), "path": b["path"]}
        for b in report["bundled"]])
    emit(report, title="Real model shapes (qtool models build-random NAME --out DIR)", rows=[
        {"name": s["name"], "type": s["model_type"], "layers": s["layers"], "hidden": s["hidden_size"],
         "params": _count(s["params_total"]), "text": _count(s["params_text"]),
         "vision": _count(s["params_vision"])} for s in report["shapes"]])


@command.command("build-random")
@click.argument("name", callback=_known_shape)
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to create.")
@click.option("--seed", default=0, show_default=True, type=ranges.SEED, help="Seed for the random weights.")
@click.option("--shard-mib", default=2048, show_default=True, type=click.IntRange(min=1),
              help="Largest safetensors shard, in MiB.")
@click.option("--force", is_flag=True, help="Replace an existing checkpoint folder at --out.")
def build_random_command(name: str, out: Path, seed: int, shard_mib: int, force: bool) -> None:
    """Write a checkpoint with NAME's exact shapes and random bf16 weights (speed and memory only).

    \b
    Example:
      qtool models build-random qwen2-vl-7b --out out/qwen2-vl-7b-random
    """
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(binary_units=True),
                   TimeRemainingColumn(), console=status)
    task = bar.add_task(name, total=None)

    def progress(done: int, total: int, shard: int, shards: int) -> None:
        if not bar.live.is_started:  # start on the first tensor: errors before it stay one line
            bar.start()
        bar.update(task, completed=done, total=total, description=f"{name}: shard {shard}/{shards}")

    try:
        result = build_random(name, out, seed=seed, shard_bytes=shard_mib * 2**20, force=force,
                              progress=progress)
    finally:
        if bar.live.is_started:
            bar.stop()
    summary = {"path": result.path, "shape": result.name, "shards": result.shards,
               "size": f"{result.bytes / 2**30:.2f} GiB", "params": _count(result.params),
               "seconds": result.seconds, "weights": "random (speed and memory only)"}
    emit(result.to_dict(), title="Built random-weight checkpoint",
         rows=[{"field": k, "value": v} for k, v in summary.items()])


def _count(n: int | None) -> str:
    if n is None:
        return ""
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"

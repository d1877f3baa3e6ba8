"""``qtool ask``: the same image questions to several models, answers side by side."""

from __future__ import annotations

from pathlib import Path

import click

from qtool.cli.output import emit


@click.command("ask")
@click.argument("models", nargs=-1, required=True)
@click.option("--image", type=click.Path(path_type=Path), help="An image file.")
@click.option("--question", help="The question about --image.")
@click.option("--heldout", type=int, help="Instead: the first N questions of the tiny model's held-out set.")
def command(models, image, question, heldout):
    """Answer image questions with each MODEL (folders or bundled names), side by side.

    \b
    Examples:
      qtool ask qwen2-vl-tiny out/tiny-gptq-int4 --heldout 6
      qtool ask qwen2-vl-tiny --image photo.png --question "What colour is the circle?"
    """
    from qtool.ask import ask

    if (heldout is None) == (image is None or question is None):
        raise click.UsageError("give either --image and --question, or --heldout N")
    rows = ask(list(models), image=image, question=question, heldout=heldout)
    emit(rows, title="answers", rows=rows)

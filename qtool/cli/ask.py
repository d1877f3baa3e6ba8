"""``qtool ask``: the same image questions to several models, answers side by side."""

from __future__ import annotations

from pathlib import Path

import click

from qtool.ask import ask
from qtool.cli import ranges
from qtool.cli.output import emit


@click.command("ask")
@click.argument("models", nargs=-1, required=True)
@click.option("--image", type=click.Path(path_type=Path), help="An image file.")
@click.option("--question", help="The question about --image.")
@click.option("--heldout", type=ranges.COUNT, help="Instead: the first N questions of the tiny model's test split.")
def command(models, image, question, heldout):
    """Answer image questions with each MODEL (folders or bundled names), side by side.

    \b
    Examples:
      qtool ask qwen2-vl-tiny out/tiny-gptq-int4 --heldout 6
      qtool ask qwen2-vl-tiny --image photo.png --question "What colour is the circle?"
    """
    if (heldout is None) == (image is None or question is None):
        raise click.UsageError("give either --image and --question, or --heldout N")
    rows = ask(list(models), image=image, question=question, heldout=heldout)
    labels = column_labels([Path(m).name for m in models])
    table = [{"question": r["question"], **({"expected": r["expected"]} if "expected" in r else {}),
              **{label: r[Path(m).name] for m, label in zip(models, labels)}} for r in rows]
    emit(rows, title=f"answers ({', '.join(f'{label} = {m}' for m, label in zip(models, labels) if label != m)})"
         if labels != [Path(m).name for m in models] else "answers", rows=table)


def column_labels(names: list[str]) -> list[str]:
    """Short column headers: a name that starts with the first model's name shows only what follows it
    (``qwen2-vl-tiny-gptq-int4`` beside ``qwen2-vl-tiny`` -> ``gptq-int4``)."""
    first = names[0]
    return [n[len(first):].lstrip("-_") or n if i and n.startswith(first) else n for i, n in enumerate(names)]

"""``qtool eval``: accuracy and fidelity per precision."""

from __future__ import annotations

from pathlib import Path

import click

from qtool import eval as qeval
from qtool.cli import ranges
from qtool.cli.output import emit, status
from qtool.cli.progress import layer_progress
from qtool.eval import report as eval_report
from qtool.outputs import check_target


@click.command("eval")
@click.argument("model")
@click.option("--profiles", "profile_names", default="bf16,gptq-int8,gptq-int4,awq-int4,rtn-int4", show_default=True,
              help="Comma-separated profiles, profile TOML files or artifact folders qtool built from MODEL (used "
                   "as they are).")
@click.option("--dataset", type=click.Path(path_type=Path), help="VQA JSONL (default: the tiny model's test split).")
@click.option("--captions", type=click.Path(path_type=Path), help="Image-caption JSONL for perplexity.")
@click.option("--limit", type=ranges.COUNT, help="Evaluate the first N records only.")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration set for on-demand quantization.")
@click.option("--samples", type=ranges.COUNT, help="Calibration samples for on-demand quantization.")
@click.option("--out", type=click.Path(path_type=Path), help="Results folder (default benchmarks/results/eval-NAME).")
@click.option("--force", is_flag=True, help="Replace an existing results folder.")
def command(model, profile_names, dataset, captions, limit, calib, samples, out, force):
    """Accuracy per question type and fidelity to the float model, per precision.

    \b
    Example:
      qtool eval qwen2-vl-tiny --profiles bf16,gptq-int4,rtn-int4 --limit 500
    """
    out = out or Path("benchmarks/results") / f"eval-{Path(model).name}"
    check_target(out, force)
    if limit is not None and limit < 1:
        raise click.BadParameter("--limit must be at least 1")
    with layer_progress("quantize (for eval)") as progress:
        report = qeval.run(model, [p.strip() for p in profile_names.split(",") if p.strip()], dataset=dataset,
                           captions=captions, limit=limit, calib=calib, samples=samples,
                           status=lambda m: status.print(m), progress=progress)
    eval_report.write(report, out, force)
    keep = ("precision", "accuracy %", "recovery %", "KL answer (mean ± se / p99)", "top-1 answer %")
    emit(report.to_dict(), title=f"eval {model}: full table in {out}/table.md",
         rows=[{k: r[k] for k in keep} for r in eval_report.rows(report)])

"""``qtool release`` and ``qtool verify``: the bundle a model publisher ships, and its check."""

from __future__ import annotations

from pathlib import Path

import click

from qtool import bench
from qtool.cli import ranges
from qtool.cli.output import emit, status
from qtool.cli.progress import layer_progress
from qtool.release import ReleaseSettings, run
from qtool.release.verify import verify


@click.command("release")
@click.argument("model")
@click.option("--profiles", "profile_names", default="gptq-int4,gptq-int8,awq-int4", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Release folder (updated in place).")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration set (default: the shipped set).")
@click.option("--samples", type=ranges.COUNT, help="Calibration samples.")
@click.option("--eval-limit", type=ranges.COUNT, default=500, show_default=True,
              help="Questions evaluated for the cards.")
@click.option("--bench-gen", default="64", show_default=True, help="Generation lengths benchmarked for the cards.")
@click.option("--bench-repeats", type=ranges.COUNT, default=3, show_default=True)
def release_command(model, profile_names, out, calib, samples, eval_limit, bench_gen, bench_repeats):
    """Build every variant of MODEL with a model card, SHA256SUMS and release.json; re-running redoes
    only what is missing or changed.

    \b
    Example:
      qtool release qwen2-vl-tiny --profiles gptq-int4,awq-int4 --out out/release
    """
    settings = ReleaseSettings(calib=calib, samples=samples, eval_limit=eval_limit,
                               bench=bench.BenchSettings(gen=ranges.int_list(bench_gen),
                                                         repeats=bench_repeats))
    with layer_progress("quantize") as progress:
        manifest = run(model, [p.strip() for p in profile_names.split(",") if p.strip()], out, settings,
                       status=lambda m: status.print(m), progress=progress)
    emit(manifest, title=f"release {out}",
         rows=[{"variant": k, "profile": v["profile"], "rebuilt": k in manifest["rebuilt"]}
               for k, v in manifest["variants"].items()])


@click.command("verify")
@click.argument("folder", type=click.Path(path_type=Path))
def verify_command(folder):
    """Check every hash and size in a release FOLDER, load every variant in a fresh process with its consumer,
    ask each the held-out questions its release recorded answers for, and (when `make serve-env` has built
    vLLM) serve transformers variants with vLLM."""
    rows = verify(folder, status=lambda m: status.print(m))
    emit({"folder": str(folder), "variants": rows}, title=f"verified {folder}: every file's SHA-256 and size match",
         rows=rows)


command = (release_command, verify_command)

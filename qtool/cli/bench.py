"""``qtool bench``: the BF16-vs-Int8-vs-Int4 speed and memory table."""

from __future__ import annotations

from pathlib import Path

import click

from qtool import bench
from qtool.bench import report as bench_report
from qtool.bench import serving
from qtool.cli import ranges
from qtool.cli.output import emit, status
from qtool.cli.progress import layer_progress
from qtool.errors import ProfilesFailed
from qtool.outputs import check_target


@click.command("bench")
@click.argument("model")
@click.option("--profiles", "profile_names",
              help="Comma-separated profiles, profile TOML files or artifact folders qtool built from MODEL "
                   "(default: the --engine's set).")
@click.option("--engine", type=click.Choice(list(bench.ENGINE_PROFILES)), default="torch", show_default=True,
              help="Default profile set: torch (transformers), llamacpp (GGUF via llama-cpp-python), onnx "
                   "(vision tower in ONNX Runtime, language model in torch), or all.")
@click.option("--image-tokens", type=ranges.IMAGE_TOKENS, default=64, show_default=True,
              help="Visual tokens of the one input image.")
@click.option("--gen", default="64", show_default=True, help="Comma-separated generation lengths.")
@click.option("--repeats", type=ranges.COUNT, default=3, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=ranges.THREADS, help="torch threads in each measuring process.")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration set for on-demand quantization.")
@click.option("--samples", type=ranges.COUNT, help="Calibration samples for on-demand quantization.")
@click.option("--out", type=click.Path(path_type=Path), help="Results folder (default benchmarks/results/NAME).")
@click.option("--force", is_flag=True, help="Replace an existing results folder.")
@click.option("--concurrency", default="1,4,16", show_default=True,
              help="--engine vllm: requests in flight, comma-separated (each row sends --repeats x this many).")
@click.option("--tp", type=click.IntRange(min=1), default=1, show_default=True, help="--engine vllm: tensor parallel.")
def command(model, profile_names, engine, image_tokens, gen, repeats, device, threads, calib, samples, out, force,
            concurrency, tp):
    """Measure load time, prefill/decode tok/s and peak memory of MODEL per profile.

    \b
    Example:
      qtool bench qwen2-vl-tiny --profiles bf16,gptq-int4 --gen 64,256 --out /tmp/bench
      qtool bench qwen2-vl-tiny --profiles bf16,gguf-q8_0,gguf-q4_k_m --out /tmp/bench
      qtool bench qwen2-vl-tiny --engine onnx --out /tmp/bench
      qtool bench qwen2-vl-tiny --engine vllm --concurrency 1,4,16 --out /tmp/serving
    """
    given = [f"--{n}" for n in ("concurrency", "tp") if click.get_current_context().get_parameter_source(n).name
             == "COMMANDLINE"]
    if engine != "vllm" and given:
        raise click.UsageError(f"{' and '.join(given)} {'apply' if len(given) > 1 else 'applies'} to --engine vllm only")
    if engine == "vllm":
        _serving(model, profile_names, image_tokens, ranges.int_list(gen), repeats, calib, samples, out, force,
                 ranges.int_list(concurrency), tp)
        return
    settings = bench.BenchSettings(image_tokens=image_tokens, gen=ranges.int_list(gen), repeats=repeats,
                                   device=device, threads=threads, calib=calib, samples=samples)
    out = out or Path("benchmarks/results") / f"{Path(model).name}-{device}"

    check_target(out, force)
    with layer_progress("quantize (for bench)") as progress:
        names = profile_names or bench.ENGINE_PROFILES[engine]
        result = bench.run(model, [p.strip() for p in names.split(",") if p.strip()], settings,
                           status=lambda msg: status.print(msg), progress=progress)
    bench_report.write(result, out, force)
    rows = bench.summary_rows(result)
    keep = [c for c in (rows[0] if rows else {}) if c == "profile" or c.startswith(("decode tok/s", "peak MiB"))]
    emit(result.to_dict(), title=f"bench {model}: full table in {out}/table.md",
         rows=[{c: r[c] for c in keep} for r in rows])
    if result.failed:
        names = ", ".join(f"{name} ({why})" for name, why in result.failed.items())
        raise ProfilesFailed(f"no measurement for {names}; the other profiles are in {out}",
                             "rerun the failed profiles alone with --profiles to see their full error")


def _serving(model, profile_names, image_tokens, gen, repeats, calib, samples, out, force, concurrency, tp):
    if len(gen) != 1:
        raise click.UsageError("--engine vllm takes one --gen length")
    settings = serving.ServingSettings(concurrency=concurrency, rounds=repeats, image_tokens=image_tokens,
                                       max_tokens=gen[0], tp=tp)
    out = out or Path("benchmarks/results") / f"{Path(model).name}-vllm"
    check_target(out, force)
    names = profile_names or bench.ENGINE_PROFILES["vllm"]
    with layer_progress("quantize (for bench)") as progress:
        result = serving.run(model, [p.strip() for p in names.split(",") if p.strip()], settings, calib=calib,
                             samples=samples, status=lambda msg: status.print(msg), progress=progress)
    serving.write(result, out, force)
    emit(result.to_dict(), title=f"vLLM serving {model}: full table in {out}/table.md", rows=serving.table(result))
    if result.failed:
        names = ", ".join(f"{name} ({why})" for name, why in result.failed.items())
        raise ProfilesFailed(f"not served: {names}; the other profiles are in {out}",
                             "rerun the failed profiles alone with --profiles to see their full error")

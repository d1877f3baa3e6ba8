"""``qtool quantize``: one model, one profile, one artifact."""

from __future__ import annotations

from pathlib import Path

import click

from qtool.cli import ranges
from qtool.cli.output import emit
from qtool.cli.progress import layer_progress
from qtool.profiles import MODALITIES, load_profile
from qtool.quantization import quantize
from qtool.quantization.engine import quantizing_methods


@click.command("quantize")
@click.argument("model")
@click.option("--profile", "profile_name", required=True, help="gptq-int4, gptq-int8, awq-int4, rtn-int4 or a .toml")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration set (default: the shipped set).")
@click.option("--samples", type=ranges.COUNT, help="Calibration records to use (default: the profile's).")
@click.option("--bits", type=int, help="Override the profile's bits.")
@click.option("--group-size", type=int, help="Override the profile's group size.")
@click.option("--modality", type=click.Choice(MODALITIES), help="Override what calibration conversations hold: "
              "image-text (Qwen's recipe, the default), text (the same conversations without images) or mixed.")
@click.option("--out", type=click.Path(path_type=Path), help="Output folder (default: out/MODEL-PROFILE).")
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from its last finished layer.")
@click.option("--restart", is_flag=True, help="Discard an interrupted run's checkpoint and start over.")
@click.option("--allow-pickle", is_flag=True, help="Allow loading pickle (.bin) weights: runs code from the file.")
@click.option("--trust-remote-code", is_flag=True, help="Allow the model folder's own Python code to run.")
def command(model, profile_name, calib, samples, bits, group_size, modality, out, device, force, resume,
            restart, allow_pickle, trust_remote_code):
    """Quantize MODEL (a folder or a bundled name such as qwen2-vl-tiny).

    \b
    Example:
      qtool quantize qwen2-vl-tiny --profile gptq-int4 --out out/tiny-gptq-int4
    """
    profile = load_profile(profile_name, {"bits": bits, "group_size": group_size, "modality": modality},
                           methods=quantizing_methods())
    if allow_pickle:
        click.echo("warning: --allow-pickle: pickle weights can run arbitrary code when loaded", err=True)
    if trust_remote_code:
        click.echo("warning: --trust-remote-code: Python files in the model folder will run", err=True)
    with layer_progress(f"quantize {profile.name}") as progress:
        result = quantize(model, profile, out=out, calib=calib, samples=samples, device=device,
                          force=force, resume=resume, restart=restart,
                          allow_pickle=allow_pickle, trust_remote_code=trust_remote_code, progress=progress)
    summary = {
        "artifact": result.out, "profile": result.profile, "layers": result.layers,
        "calibration samples": result.samples, "wall time (s)": result.wall_s,
        "resumed layers": result.resumed_layers, "peak RSS (MiB)": result.peak_rss_mb,
        "peak GPU (MiB)": result.peak_gpu_mb,
        "weights (MiB)": f"{result.source_bytes / 2**20:.1f} -> {result.artifact_bytes / 2**20:.1f}",
        "mean layer loss": result.mean_layer_loss,
    }
    emit(result.to_dict(), title="quantized",
         rows=[{"field": k, "value": v} for k, v in summary.items()])

"""``qtool export``: artifacts for other runtimes (``onnx``: the vision tower; ``gguf``: llama.cpp)."""

from __future__ import annotations

from pathlib import Path

import click

from qtool.cli.output import emit, status
from qtool.export.gguf_export import export_gguf
from qtool.export.onnx_vision import export_onnx
from qtool.runtime import onnx_io


def _precisions(ctx, param, value: str) -> tuple[str, ...]:
    return tuple(p.strip().lower() for p in value.split(",") if p.strip())   # checked by export_onnx


@click.group("export")
def command() -> None:
    """Export a model, or part of it, for another runtime.

    \b
    Example:
      qtool export onnx qwen2-vl-tiny --out out/tiny-onnx --precision fp32,int8
    """


@command.command("onnx")
@click.argument("model")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to create.")
@click.option("--precision", "precisions", default="fp32", show_default=True, callback=_precisions,
              help=f"Comma-separated: {', '.join(onnx_io.PRECISIONS)} (fp32 is always written).")
@click.option("--opset", default=onnx_io.DEFAULT_OPSET, show_default=True,
              type=click.IntRange(onnx_io.MIN_OPSET, onnx_io.MAX_OPSET), help="ONNX opset.")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def onnx_command(model: str, out: Path, precisions: tuple[str, ...], opset: int, force: bool) -> None:
    """Export MODEL's vision tower (with the patch merger) to ONNX, exact at any resolution.

    Writes vision.onnx (+ vision.{fp16,int8,int4}.onnx), vision.json for qtool.runtime.vision and
    validation.json (ONNX Runtime vs torch at unseen sizes). Exits 3 if fp32 disagrees with torch.

    \b
    Example:
      qtool export onnx qwen2-vl-tiny --out out/tiny-onnx --precision fp32,fp16,int8,int4
    """

    result = export_onnx(model, out, precisions=precisions, opset=opset, force=force,
                         progress=lambda msg: status.print(f"[dim]{msg}[/dim]"))
    worst = result.validation["worst"]
    emit(result.to_dict(), title=f"exported {result.out}", rows=[
        {"precision": p, "file": f, "size (KiB)": f"{result.sizes[p] / 1024:.0f}",
         "worst rel L2 vs torch": f"{worst[p]['rel_l2']:.2e}", "worst max abs": f"{worst[p]['max_abs']:.2e}"}
        for p, f in result.files.items()])


@command.command("gguf")
@click.argument("model")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder to create.")
@click.option("--quant", "quants", default="f16,q8_0,q4_k_m", show_default=True, callback=_precisions,
              help="Comma-separated language-model types: f32, bf16, f16, q8_0, q5_k_m, q4_k_m, q4_0.")
@click.option("--mmproj", default="f16", show_default=True, type=click.Choice(["f32", "f16", "q8_0"]),
              help="Type of the vision projector's matrices.")
@click.option("--threads", type=click.IntRange(1), help="Threads for llama.cpp's quantizer (default: all cores).")
@click.option("--force", is_flag=True, help="Replace an existing output folder.")
def gguf_command(model: str, out: Path, quants: tuple[str, ...], mmproj: str, threads: int | None,
                 force: bool) -> None:
    """Export MODEL for llama.cpp: one language-model GGUF per --quant plus an mmproj file.

    The K-quants come from llama.cpp's own quantizer; llama.cpp's tokenizer is checked against the
    model's before the folder is published. Run the pair with llama-cpp-python's MTMDChatHandler
    (see docs/gguf.md) or `qtool bench MODEL --profiles gguf-q4_k_m`.

    \b
    Example:
      qtool export gguf qwen2-vl-tiny --out out/tiny-gguf --quant f16,q8_0,q4_k_m
    """

    result = export_gguf(model, out, quants=quants, mmproj=mmproj, threads=threads, force=force,
                         progress=lambda msg: status.print(f"[dim]{msg}[/dim]"))
    emit(result.to_dict(), title=f"exported {result.out}", rows=[
        {"file": f, "size (MiB)": f"{size / 2**20:.1f}"} for f, size in result.sizes.items()])

"""Bench outputs: JSON records, a markdown table in Qwen's layout, a PNG chart."""

from __future__ import annotations

from pathlib import Path

from qtool import machine
from qtool.bench import BenchReport, summary_rows
from qtool.reporting import RANDOM_NOTE, finish_figure, markdown_table, write_results


def markdown(report: BenchReport) -> str:
    s = report.settings
    memory = "torch.cuda.max_memory_allocated" if s["device"] == "cuda" else "peak RSS of the profile's own process"
    parts = [
        f"# qtool bench: {report.model}",
        "",
        f"Machine: {machine.label(report.machine)}. Device: {s['device']}. One image of {s['image_tokens']} visual "
        f"tokens plus a short prompt, batch 1, greedy, {s['repeats']} repeats (median shown) after a warm-up.",
        "",
    ]
    if report.random_weights:
        parts += [RANDOM_NOTE, ""]
    parts += [
        markdown_table(summary_rows(report)),
        "",
        "- decode tok/s: (new tokens - 1) / decode time, prefill excluded; e2e tok/s: new tokens / whole generate "
        "time (Qwen's definition).",
        f"- peak MiB: {memory}, measured per profile in a fresh process.",
        "- bound eff.: measured decode speed / (device copy bandwidth / bytes read per decoded token: decoder "
        "weights, lm_head and the KV cache at mid-generation).",
        "",
    ]
    parts += [f"**Not measured: {name}**: {why}." for name, why in report.failed.items()]
    return "\n".join(parts)


def chart(report: BenchReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["profile"] for r in report.records]
    lengths = [x["gen"] for x in report.records[0]["lengths"]] if report.records else []
    fig, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(lengths))
    for i, gen in enumerate(lengths):
        xs = [j + i * width for j in range(len(names))]
        speed.bar(xs, [r["lengths"][i]["decode_tok_s_median"] for r in report.records], width, label=f"gen {gen}")
        memory.bar(xs, [r["lengths"][i]["peak_memory_mb"] for r in report.records], width, label=f"gen {gen}")
    for ax, title in ((speed, "decode tok/s (median)"), (memory, "peak memory (MiB)")):
        ax.set_xticks([j + width * (len(lengths) - 1) / 2 for j in range(len(names))], names, rotation=20)
        ax.set_title(title)
        ax.legend()
    suffix = " (random weights: speed/memory only)" if report.random_weights else ""
    finish_figure(fig, f"{Path(report.model).name} on {machine.label(report.machine)}{suffix}", path)


def write(report: BenchReport, out: Path, force: bool = False) -> Path:
    return write_results(out, force, "bench", report.to_dict(), markdown(report), lambda path: chart(report, path))

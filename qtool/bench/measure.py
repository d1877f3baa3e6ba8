"""Measurement helpers shared by the bench workers; torch-free so the llama.cpp worker's peak
memory is llama.cpp's own."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

PROMPT = "Describe this image in detail."
STATS = (("median", statistics.median), ("min", min), ("max", max))
TIMED = ("decode_tok_s", "e2e_tok_s", "prefill_tok_s", "prefill_s", "vision_s")  # vision_s: where measurable


def peak_rss_mb() -> float:
    """This process's peak RSS.

    Not ``ru_maxrss``: Linux carries it across fork+exec, so a worker would report its parent's
    (the CLI's) high-water mark. ``VmHWM`` belongs to the address space created at exec.
    """
    peak = proc_status_mib("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def proc_status_mib(field: str, pid: int | str = "self") -> float | None:
    """A memory field of /proc/PID/status (VmRSS, VmHWM) in MiB; None where there is no such file."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_bandwidth_gbs(nbytes: int = 512 * 2**20) -> float:
    """Memory bandwidth from one large copy (read + write), best of 5."""
    src = np.ones(nbytes, dtype=np.uint8)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t)
    del src, dst
    return 2 * nbytes / best / 1e9


def token_grid(tokens: int) -> tuple[int, int]:
    """The most square (rows, columns) of visual tokens with ``tokens`` cells."""
    h = int(tokens ** 0.5)
    while tokens % h:
        h -= 1
    return h, tokens // h


def image_for(tokens: int) -> Image.Image:
    """An image that Qwen-VL turns into exactly ``tokens`` visual tokens (28x28 px each)."""
    h, w = token_grid(tokens)
    pixels = np.random.default_rng(0).integers(0, 256, (28 * h, 28 * w, 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def summarize(gen: int, runs: list[dict], peak_mb: float) -> dict:
    """One generation length: its runs, the peak memory and median/min/max of each timing."""
    return {"gen": gen, "runs": runs, "peak_memory_mb": peak_mb,
            **{f"{k}_{stat}": fn([r[k] for r in runs]) for k in TIMED for stat, fn in STATS
               if all(r.get(k) is not None for r in runs)}}


def add_bounds(lengths: list[dict], bandwidth_gbs: float, weight_bytes: int, kv_per_position: int,
               n_input: int) -> None:
    """Decode speed if every token only had to read the weights and KV cache once, and the share reached."""
    for length in lengths:
        bound = bandwidth_gbs * 1e9 / (weight_bytes + kv_per_position * (n_input + length["gen"] / 2))
        decode = [r["decode_tok_s"] for r in length["runs"] if r["decode_tok_s"]]
        length["bound_decode_tok_s"] = bound
        length["bound_efficiency"] = statistics.median(decode) / bound if decode else None


def serve(run: Callable[[dict], dict]) -> None:
    """A worker's entry point: ``python -m WORKER SPEC.json RESULT.json``."""
    spec = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(json.dumps(run(spec), indent=2))

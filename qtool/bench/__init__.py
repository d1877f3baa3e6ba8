"""``bench``: speed and memory per precision, each profile in its own fresh process."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from qtool import artifacts as registry
from qtool import machine, profiles
from qtool.errors import QtoolError
from qtool.models.checkpoint import CheckpointInfo, checkpoint_of
from qtool.quantization import check_device

Status = Callable[[str], None]
# --engine -> the profiles bench measures when none are named
ENGINE_PROFILES = {
    "torch": "bf16,fp32,gptq-int8,gptq-int4,awq-int4",
    "llamacpp": "gguf-f16,gguf-q8_0,gguf-q4_k_m",
    "onnx": "bf16,onnx-vision-fp32,onnx-vision-fp16,onnx-vision-int8,onnx-vision-int4",
    "all": "bf16,fp32,gptq-int8,gptq-int4,awq-int4,gguf-f16,gguf-q8_0,gguf-q4_k_m,onnx-vision-fp32,onnx-vision-int8",
    "vllm": "bf16,gptq-int4,awq-int4",   # a serving table (qtool.bench.serving), not the per-process one
}


@dataclass(frozen=True)
class BenchSettings:
    image_tokens: int = 64
    gen: tuple[int, ...] = (64,)
    repeats: int = 3
    device: str = "cpu"
    threads: int | None = None
    calib: Path | None = None
    samples: int | None = None


@dataclass
class BenchReport:
    model: str
    random_weights: bool
    settings: dict
    machine: dict
    records: list[dict] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)   # profile -> why its worker produced no result

    def to_dict(self) -> dict:
        return {"model": self.model, "random_weights": self.random_weights, "settings": self.settings,
                "machine": self.machine, "records": self.records, "failed": self.failed}


class WorkerFailed(RuntimeError):
    """A profile's measuring process died or wrote no result."""


def check_settings(s: BenchSettings, option_prefix: str = "") -> None:
    """``option_prefix``: how the caller's command names the options (release: ``bench-``)."""
    check_device(s.device)
    if s.repeats < 1:
        raise QtoolError(f"--{option_prefix}repeats {s.repeats} must be at least 1",
                         f"pass --{option_prefix}repeats 3 or more")
    if not s.gen or min(s.gen) < 2:
        raise QtoolError(f"--{option_prefix}gen lengths must be at least 2 tokens",
                         f"pass e.g. --{option_prefix}gen 128,512")
    if not 1 <= s.image_tokens <= 16384:
        raise QtoolError(f"--image-tokens {s.image_tokens} is out of range", "use 1 to 16384")


def run(model: str | Path | CheckpointInfo, profile_names: list[str], settings: BenchSettings,
        status: Status | None = None, progress=None, artifacts: dict[str, Path] | None = None) -> BenchReport:
    """Measure each profile (a name, a TOML file or an artifact folder qtool built from ``model``); ``artifacts``
    maps profile names to already-built artifacts."""
    check_settings(settings)
    info = checkpoint_of(model)
    chosen, given = registry.resolve(info, profile_names, settings.samples)
    artifacts = {**given, **(artifacts or {})}
    for p in chosen:
        kind = registry.kind_of(p)
        if settings.device not in kind.bench_devices:
            raise QtoolError(f"{p.name} ({kind.name}) is measured on {' or '.join(kind.bench_devices)} only",
                             f"bench it with --device {kind.bench_devices[0]}")
    max_ctx = info.config["text_config"].get("max_position_embeddings", 32768)
    if settings.image_tokens + max(settings.gen) + 64 > max_ctx:
        raise QtoolError(f"image tokens + longest --gen exceed the model's context of {max_ctx}",
                         "use shorter --gen lengths or fewer --image-tokens")
    label = str(info.path) if isinstance(model, CheckpointInfo) else str(model)
    report = BenchReport(model=label, random_weights=info.random_weights,
                         settings={k: (str(v) if isinstance(v, Path) else v) for k, v in settings.__dict__.items()},
                         machine=machine.info())
    for profile in chosen:
        say = status or (lambda _msg: None)
        say(f"{profile.name}: preparing artifact")
        path = artifacts.get(profile.name) or registry.artifact_for(
            info, profile, calib=settings.calib, device=settings.device, progress=progress)
        say(f"{profile.name}: measuring in a fresh process")
        try:
            record = _measure(path, profile, settings, info.path)
        except WorkerFailed as e:   # one crashed runtime must not throw away the other profiles' measurements
            say(f"{profile.name}: FAILED: {e}")
            report.failed[profile.name] = str(e)
            continue
        record["artifact"] = str(path)
        report.records.append(record)
    return report


def _measure(path: Path, profile: profiles.Profile, settings: BenchSettings, source: Path) -> dict:
    dtype = getattr(profile, "dtype", "bfloat16")
    kind = registry.kind_of(profile)
    spec = {"profile": profile.name, "dtype": dtype, "device": settings.device,
            "image_tokens": settings.image_tokens, "gen": list(settings.gen), "repeats": settings.repeats,
            "threads": settings.threads, **kind.bench_spec(path, profile, source)}
    worker = kind.bench_worker
    with tempfile.TemporaryDirectory(prefix="qtool-bench-") as tmp:
        spec_file, result_file = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_file.write_text(json.dumps(spec))
        proc = subprocess.run([sys.executable, "-m", worker, str(spec_file), str(result_file)],
                              capture_output=True, text=True)
        if proc.returncode < 0:
            raise WorkerFailed(f"its process was killed by {signal.Signals(-proc.returncode).name}")
        if proc.returncode != 0 or not result_file.exists():
            tail = proc.stderr.strip().splitlines()[-1:] or ["no output"]
            raise WorkerFailed(f"its process failed: {tail[0]}")
        return json.loads(result_file.read_text())


def summary_rows(report: BenchReport) -> list[dict]:
    """One row per profile, columns per generation length (Qwen's table layout)."""
    rows = []
    for r in report.records:
        row = {"profile": r["profile"], "kernel": r["kernel"], "load s": round(r["load_s"], 2),
               "weights MiB": round(r["weights_in_memory_bytes"] / 2**20, 1)}
        for length in r["lengths"]:
            g = length["gen"]
            row[f"decode tok/s ({g})"] = round(length["decode_tok_s_median"], 2)
            row[f"e2e tok/s ({g})"] = round(length["e2e_tok_s_median"], 2)
            row[f"peak MiB ({g})"] = round(length["peak_memory_mb"], 1)
            row[f"bound eff. ({g})"] = f"{100 * length['bound_efficiency']:.1f}%"
        row["prefill tok/s"] = round(statistics.median(x["prefill_tok_s_median"] for x in r["lengths"]), 1)
        vision = [x["vision_s_median"] for x in r["lengths"] if "vision_s_median" in x]
        row["vision ms"] = round(1000 * statistics.median(vision), 1) if vision else "-"
        rows.append(row)
    return rows

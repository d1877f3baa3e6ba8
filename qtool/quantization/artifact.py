"""Make an engine's output folder a clean artifact in the layout of Qwen's releases."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

from qtool.models import ArchAdapter

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
ENGINE_LOG = "quant_log.csv"


def copy_side_files(source: Path, out: Path) -> None:
    """Processor, tokenizer and generation files the engine did not write (or rewrote)."""
    for f in source.iterdir():
        if f.is_file() and not f.name.endswith(WEIGHT_SUFFIXES) and f.name not in ("config.json", "qtool.json") \
                and not f.name.endswith(".index.json"):
            if f.name == "generation_config.json" or not (out / f.name).exists():
                shutil.copy2(f, out / f.name)  # engine adds do_sample=true to generation_config: undo


def fix_quantization_config(out: Path, adapter: ArchAdapter) -> dict:
    config_path = out / "config.json"
    config = json.loads(config_path.read_text())
    qc = config["quantization_config"]
    qc.get("meta", {}).pop("offload_to_disk_path", None)  # a temp path of the machine that quantized
    if qc.get("quant_method") == "awq":
        # Without this, transformers quantizes the vision tower on load. transformers matches these names as
        # prefixes of its own module names (model.visual...), vLLM as substrings of its names (visual.blocks...).
        vllm_name = adapter.vision_path.rsplit(".", 1)[-1]
        qc["modules_to_not_convert"] = [adapter.vision_path, vllm_name, "lm_head"]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    qc_file = out / "quantize_config.json"
    if qc_file.exists():
        stored = json.loads(qc_file.read_text())
        stored.get("meta", {}).pop("offload_to_disk_path", None)
        qc_file.write_text(json.dumps(stored, indent=2) + "\n")
    return qc


def layer_errors(out: Path) -> list[dict]:
    """Per-module quantization loss from the engine's log (removed from the artifact)."""
    log = out / ENGINE_LOG
    if not log.exists():
        return []
    with open(log) as f:
        rows = [{"layer": int(r["layer"]), "module": r["module"], "loss": _number(r["loss"]),
                 "samples": int(r["samples"]) if (r.get("samples") or "").isdigit() else None}
                for r in csv.DictReader(f)]
    log.unlink()
    return rows


def _number(text: str) -> float | None:
    """The engine writes plain floats, or ``method: value`` for fallback paths such as RTN."""
    try:
        return float(text.rsplit(":", 1)[-1])
    except ValueError:
        return None

"""What a CPU bench process holds besides the model: measured once per profile on a one-layer model.

A fresh process does what the bench worker does (imports, ``load_model``, a short generate) on the
*probe model*: the bundled tiny model's config cut to one decoder layer, random weights, quantized with the
profile itself where the profile quantizes. Its peak RSS minus its own weights is the runtime term of
``qtool plan --device cpu``: interpreter and libraries, what loading imports (optimum's GPTQ path pulls in
datasets and pandas), and the state a quantized kernel creates at load (GPTQModel's compiled CPU
kernels). The probe is small enough that its weights, KV cache and activations are a few MiB.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

from qtool import artifacts as registry
from qtool import paths, profiles
from qtool.models.checkpoint import inspect_checkpoint

PROBE_LAYERS = 1
PROBE_CODE = """
import json, sys, torch
from qtool.bench.worker import load_model, prompt_inputs
from qtool.bench.measure import peak_rss_mb
spec = json.loads(sys.argv[1])
model, processor = load_model(spec, getattr(torch, spec["dtype"]), "cpu")
enc, _ = prompt_inputs(processor, 4, "cpu")
with torch.inference_mode():
    model.generate(**enc, max_new_tokens=2, do_sample=False)
held = sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
print(json.dumps({"peak_mib": peak_rss_mb(), "weights_mib": held / 2**20}))
"""


def probe_model() -> Path:
    """The one-layer random model (built once into the cache, per version of the tiny model's config)."""
    tiny = paths.ASSETS / "qwen2-vl-tiny"
    key = hashlib.sha256((tiny / "config.json").read_bytes()).hexdigest()[:12]
    path = paths.cache() / "runtime-probe" / f"model-{key}"
    if (path / "config.json").is_file():
        return path
    import torch
    from transformers import AutoConfig, AutoProcessor, Qwen2VLForConditionalGeneration

    config = AutoConfig.from_pretrained(tiny)
    config.text_config.num_hidden_layers = PROBE_LAYERS
    if getattr(config.text_config, "layer_types", None):
        config.text_config.layer_types = config.text_config.layer_types[:PROBE_LAYERS]
    torch.manual_seed(0)
    model = Qwen2VLForConditionalGeneration(config).to(torch.bfloat16)
    tmp = path.with_name("model.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoProcessor.from_pretrained(tiny).save_pretrained(tmp)
    tmp.rename(path)
    return path


def probe_artifact(profile: profiles.Profile) -> Path:
    """The probe model in ``profile``'s format: float as is, quantized through ``qtool quantize`` (cached)."""
    return registry.artifact_for(inspect_checkpoint(probe_model()), registry.with_samples(profile, 2))


def measure(profile: profiles.Profile) -> dict:
    """``{"peak_mib", "weights_mib"}`` of a fresh process that loads and runs the probe in ``profile``."""
    spec = {"path": str(probe_artifact(profile)), "dtype": getattr(profile, "dtype", "bfloat16")}
    scratch = paths.cache() / "engine-runs" / "runtime-probe"  # GPTQModel writes ./logs while loading
    scratch.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-c", PROBE_CODE, json.dumps(spec)], capture_output=True, text=True,
                          check=True, cwd=scratch)
    return json.loads(proc.stdout.strip().splitlines()[-1])

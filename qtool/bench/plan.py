"""``plan``: predict peak memory per profile and say what fits on a given GPU.

peak = weights + KV cache + prefill activations (+ on CPU, the runtime's own
resident memory, measured per profile on a one-layer probe model (``runtime_probe``),
and the load transient: a dtype cast of the checkpoint or the CPU kernel's repack
holds the old and the new copy at once).
Weights are counted from the architecture per tensor with each format's real
packing: GPTQ qweight/qzeros at ``bits`` per value, fp16 scales per group,
int32 g_idx per in-feature; AWQ the same without g_idx.
"""

from __future__ import annotations

import functools
import re
from dataclasses import asdict, dataclass

from qtool import artifacts as registry
from qtool import kernels, machine, profiles
from qtool.bench import runtime_probe
from qtool.errors import QtoolError
from qtool.models import ADAPTERS
from qtool.models.adapter import head_dim
from qtool.models.checkpoint import checkpoint_of
from qtool.models.shapes import SHAPES, checkpoint_tensors, config_for

UNITS = {"b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_size(text: str) -> int:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]i?b|b)?\s*", text.lower())
    if not m:
        raise QtoolError(f"cannot read the size {text!r}", "write it like 8GiB, 24GB or 80000MiB")
    size = float(m.group(1)) * UNITS[m.group(2) or "gib"]
    if not 2**20 <= size < 2**60:
        raise QtoolError(f"the size {text!r} is out of range", "give a memory size from 1MiB up, like 8GiB")
    return int(size)


@dataclass(frozen=True)
class PlanRow:
    profile: str
    weights_bytes: int
    kv_bytes: int
    activation_bytes: int
    runtime_bytes: int
    total_bytes: int
    fits: bool | None
    load_bytes: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def model_config(model: str):
    """The transformers config of a checkpoint folder, a bundled name or a real shape name."""
    from transformers import AutoConfig

    if model in SHAPES:
        return config_for(model)
    return AutoConfig.from_pretrained(checkpoint_of(model).path)


DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def _bytes_per_element(profile) -> int:
    return DTYPE_BYTES.get(getattr(profile, "dtype", "bfloat16"), 2)


def _packed(profile) -> bool:
    """Whether the profile's artifact packs the decoder linears at ``bits`` (GPTQ / AWQ / RTN checkpoints)."""
    return registry.kind_of(profile).name == "quantized"


def weight_bytes(config, adapter, profile) -> int:
    float_bytes = _bytes_per_element(profile)
    quantized = _packed(profile)
    total = 0
    for name, shape in checkpoint_tensors(config).items():
        numel = 1
        for d in shape:
            numel *= d
        if quantized and _is_quantized_linear(name, shape, adapter):
            out_f, in_f = shape
            bits, group = profile.bits, (profile.group_size if profile.group_size > 0 else in_f)
            groups = in_f // group
            total += numel * bits // 8 + groups * out_f * 2 + groups * out_f * bits // 8
            if not isinstance(profile, profiles.AWQProfile):
                total += in_f * 4  # g_idx
        else:
            total += numel * float_bytes
    return total


def _is_quantized_linear(name: str, shape, adapter) -> bool:
    """A decoder linear that quantized profiles pack."""
    return name.endswith(".weight") and len(shape) == 2 and ".layers." in name and \
        any(f".{m}.weight" in name for m in adapter.quantized_linears)


def kv_bytes(text_config, context: int, profile) -> int:
    per_position = 2 * text_config.num_hidden_layers * text_config.num_key_value_heads * head_dim(text_config)
    return per_position * context * _bytes_per_element(profile)


def activation_bytes(config, image_tokens: int, prompt_tokens: int, profile) -> int:
    """Largest transient of the prefill: the vision tower's or the decoder's MLP and attention buffers."""
    b = _bytes_per_element(profile)
    t, v = config.text_config, config.vision_config
    seq = image_tokens + prompt_tokens
    patches = 4 * image_tokens
    embed = getattr(v, "embed_dim", None) or v.hidden_size
    vision = patches * embed * 4 * 6 + v.num_heads * patches * patches * 4
    text = seq * (3 * t.intermediate_size + 4 * t.hidden_size) * b + t.num_attention_heads * seq * seq * b
    logits = t.vocab_size * 4 * 2
    return max(vision, text) + logits


def load_transient_bytes(config, adapter, profile, device: str, cpu_flags: list[str] | None = None) -> int:
    """CPU, measured on the 2B shape (AVX-512 Xeon): fp32 from a bf16 checkpoint peaks with both copies alive
    (+4213 MiB over weights + runtime, predicted 4213); GPTQ's CPU kernels repack the packed linears at load
    (+1385 MiB for Int8, +897 for Int4, predicted 1250 and 625), AWQ's twice on CPUs without AVX-512
    (``kernels.cpu_repack_copies``). GPU loads are not measured, so nothing is added there."""
    if device != "cpu":
        return 0
    if _packed(profile):
        packed = sum(shape[0] * shape[1] * profile.bits // 8 for name, shape in checkpoint_tensors(config).items()
                     if _is_quantized_linear(name, shape, adapter))
        flags = machine.cpu_flags() if cpu_flags is None else cpu_flags
        return packed * kernels.cpu_repack_copies(profiles.method_of(profile), flags)
    source = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None) or "bfloat16"
    checkpoint_bytes = DTYPE_BYTES.get(str(source).removeprefix("torch."), 2)
    profile_bytes = _bytes_per_element(profile)
    if checkpoint_bytes == profile_bytes:
        return 0
    return weight_bytes(config, adapter, profile) // profile_bytes * checkpoint_bytes


@functools.cache
def runtime_bytes(device: str, profile_name: str) -> int:
    """CPU: what a bench process of this profile holds besides the model, measured on a one-layer probe model
    (``qtool.bench.runtime_probe``). GPU: nothing (``torch.cuda.max_memory_allocated`` excludes the context)."""
    if device == "cuda":
        return 0
    probe = runtime_probe.measure(profiles.load_profile(profile_name))
    return int((probe["peak_mib"] - probe["weights_mib"]) * 2**20)


def plan(config, profile_names: list[str], *, budget: int | None, image_tokens: int = 256, context: int = 2048,
         prompt_tokens: int = 32, device: str = "cuda") -> list[PlanRow]:
    adapter = ADAPTERS[config.model_type]
    rows = []
    for name in profile_names:
        p = profiles.load_profile(name)
        runtime = runtime_bytes(device, p.name)
        w = weight_bytes(config, adapter, p)
        kv = kv_bytes(config.text_config, context, p)
        act = activation_bytes(config, image_tokens, prompt_tokens, p)
        load = load_transient_bytes(config, adapter, p, device)
        total = w + kv + act + runtime + load
        rows.append(PlanRow(p.name, w, kv, act, runtime, total, None if budget is None else total <= budget, load))
    return rows


def recommend(rows: list[PlanRow]) -> str | None:
    """The most precise profile that fits (profiles are assumed listed from most to least precise)."""
    fitting = [r for r in rows if r.fits]
    return fitting[0].profile if fitting else None

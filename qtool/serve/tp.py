"""Tensor-parallel readiness: does every quantized linear split evenly across N ranks the way vLLM splits it?

vLLM shards column-parallel linears (q/k/v, gate/up) by output features and row-parallel ones (o_proj,
down_proj) by input features. A GPTQ/AWQ weight keeps one scale per ``group_size`` input features and packs
``32 / bits`` values per int32, so each rank's slice must hold whole groups and whole packed words; vLLM's GPU
kernels (Marlin) also need 128-multiples of input and 64-multiples of output per rank. Attention heads are
split across ranks too (key/value heads may be replicated when there are fewer than ranks).

The known real case: Qwen2-VL-72B's MLP intermediate size 29568 at TP 8 gives 3696 input features per rank to
down_proj, not a multiple of 128 (Qwen re-published its quantized 72B checkpoints padded to 29696).
"""

from __future__ import annotations

from qtool.models.adapter import head_dim

MARLIN_K, MARLIN_N = 128, 64     # vLLM's Marlin: per-rank input / output multiples (GPU)


def _linears(text) -> list[tuple[str, int, int, str]]:
    """(name, in features, out features, how vLLM splits it) of one decoder layer."""
    width = head_dim(text)
    hidden, inter = text.hidden_size, text.intermediate_size
    return [
        ("self_attn.q_proj", hidden, text.num_attention_heads * width, "column"),
        ("self_attn.k_proj", hidden, text.num_key_value_heads * width, "column"),
        ("self_attn.v_proj", hidden, text.num_key_value_heads * width, "column"),
        ("self_attn.o_proj", text.num_attention_heads * width, hidden, "row"),
        ("mlp.gate_proj", hidden, inter, "column"),
        ("mlp.up_proj", hidden, inter, "column"),
        ("mlp.down_proj", inter, hidden, "row"),
    ]


def problems(config, tp: int, *, bits: int | None = None, group_size: int | None = None,
             gpu: bool = True) -> list[str]:
    """Every reason ``config`` cannot be served at ``--tp tp`` with ``bits``/``group_size`` weights (none for
    float weights), first the first failing layer's."""
    text, vision = config.text_config, config.vision_config
    out = []
    heads, kv = text.num_attention_heads, text.num_key_value_heads
    if heads % tp:
        out.append(f"{heads} attention heads do not split into {tp} ranks")
    if (kv >= tp and kv % tp) or (kv < tp and tp % kv):
        out.append(f"{kv} key/value heads neither split into nor replicate across {tp} ranks")
    if vision.num_heads % tp:
        out.append(f"the vision tower's {vision.num_heads} heads do not split into {tp} ranks")
    if bits is None:
        return out
    pack = 32 // bits
    for name, in_f, out_f, split in _linears(text):
        layer = f"model.language_model.layers.0.{name}"
        size = (in_f if split == "row" else out_f)
        if size % tp:
            out.append(f"{layer}: {size} {'input' if split == 'row' else 'output'} features do not split into "
                       f"{tp} ranks")
            continue
        k, n = (in_f // tp, out_f) if split == "row" else (in_f, out_f // tp)
        group = k if group_size in (None, -1) else group_size
        if k % group:
            out.append(f"{layer}: {k} input features per rank are not a multiple of group_size {group}")
        elif k % pack or n % pack:
            out.append(f"{layer}: {k}x{n} per rank does not hold whole {bits}-bit packed words")
        elif gpu and (k % MARLIN_K or n % MARLIN_N):
            out.append(f"{layer}: {k}x{n} per rank is not a multiple of {MARLIN_K}x{MARLIN_N} (vLLM's Marlin "
                       "kernels on GPU)")
    return out


def readiness(config, profiles_: list, tp: int, gpu: bool = True) -> dict[str, str]:
    """Per profile: "ok", or its first problem at ``--tp tp`` and what would fix an MLP that does not split."""
    out = {}
    for p in profiles_:
        found = problems(config, tp, bits=getattr(p, "bits", None), group_size=getattr(p, "group_size", None),
                         gpu=gpu)
        if not found:
            out[p.name] = "ok"
            continue
        out[p.name] = found[0]
        if "mlp." in found[0] and getattr(p, "group_size", -1) not in (None, -1):
            step = max(p.group_size, MARLIN_K if gpu else 1) * tp
            inter = config.text_config.intermediate_size
            padded = -(-inter // step) * step
            out[p.name] += (f"; zero-pad intermediate_size {inter} -> {padded} before quantizing (same outputs; "
                            "Qwen's 72B Int4/AWQ releases did this) or serve with a smaller --tp")
    return out

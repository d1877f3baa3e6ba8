"""What machine a number was measured on: recorded next to every benchmark."""

from __future__ import annotations

import os
import platform
from pathlib import Path

from qtool.fingerprint import versions


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


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
        "cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "memory_gib": memory_gib(), "gpu": gpu, "platform": platform.platform(),
        "python": platform.python_version(), "versions": versions(),
    }


def label(machine: dict) -> str:
    """One line naming the machine, for table captions."""
    if machine.get("gpu"):
        return f"{machine['gpu']} ({machine['cpu']})"
    return f"{machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB"

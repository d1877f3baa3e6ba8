"""Architecture adapters, keyed by config.json ``model_type``."""

from qtool.models.adapter import ArchAdapter
from qtool.models.qwen2_5_vl import QWEN2_5_VL
from qtool.models.qwen2_vl import QWEN2_VL
from qtool.models.qwen3_vl import QWEN3_VL

ADAPTERS: dict[str, ArchAdapter] = {a.model_type: a for a in (QWEN2_VL, QWEN2_5_VL, QWEN3_VL)}

__all__ = ["ADAPTERS", "ArchAdapter", "QWEN2_VL", "QWEN2_5_VL", "QWEN3_VL"]

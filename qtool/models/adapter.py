"""What qtool needs to know about one architecture, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchAdapter:
    model_type: str                                # config.json "model_type"
    hf_class: str                                  # transformers class that loads it
    processor_class: str                           # transformers processor class
    quantized_linears: tuple[str, ...]             # linears inside a decoder block that quantized profiles pack
    vision_path: str                               # vision tower + merger (kept float), as transformers names it
    gguf_arch: str                                 # llama.cpp text architecture
    gguf_projector: str                            # llama.cpp mmproj projector type
    to_messages: Callable[..., list[dict]]         # calibration record -> chat messages
    windowed_vision: bool = False                  # Qwen2.5-VL window attention
    deepstack: bool = False                        # Qwen3-VL: tower features from several depths feed the decoder
    engine_module_tree: list | None = None         # GPTQModel's module tree, where its own definition is wrong


def head_dim(text_config) -> int:
    """Attention head width: Qwen3-VL states it (4B, 32B: not hidden / heads), Qwen2/2.5-VL imply it."""
    return getattr(text_config, "head_dim", None) or text_config.hidden_size // text_config.num_attention_heads

"""What qtool needs to know about one architecture, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ArchAdapter:
    model_type: str                                # config.json "model_type"
    hf_class: str                                  # transformers class that loads it
    processor_class: str                           # transformers processor class
    decoder_path: str                              # the repeated decoder blocks
    decoder_layer_class: str                       # unit of sequential calibration
    quant_groups: tuple[tuple[str, ...], ...]      # linears inside a block, quantized in this order
    keep_fp: tuple[str, ...]                       # module prefixes never quantized by default
    vision_path: str                               # vision tower + merger
    vision_blocks_path: str                        # repeated vision blocks
    vision_linears: tuple[str, ...]                # linears in a vision block (--quantize-vision)
    gguf_arch: str                                 # llama.cpp text architecture
    gguf_projector: str                            # llama.cpp mmproj projector type
    to_messages: Callable[..., list[dict]]         # calibration record -> chat messages
    windowed_vision: bool = False                  # Qwen2.5-VL window attention

    @property
    def quantized_linears(self) -> tuple[str, ...]:
        return tuple(name for group in self.quant_groups for name in group)

"""Calibration conversations packed into sequences of one length, for engines that need one batch shape.

GPTQModel 7.7's AWQ fits its scales and clips to the concatenation of every calibration batch only when
all batches have the same shape; otherwise it keeps the last batch alone ("latest_batch") and fits the
whole model to one conversation (benchmarks/results/awq-batches-qwen2-vl-tiny). Packing lets it see all.

A sequence holds whole conversations, images whole and in order, like a multi-image chat; the room left
at its end is filled with the text of the conversations that follow (their images and vision markers
dropped), and the next sequence starts with the next conversation whole. The length is the longest
conversation's, so no conversation is split.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

PER_TOKEN = ("input_ids", "attention_mask", "mm_token_type_ids")
PER_IMAGE = ("pixel_values", "image_grid_thw")


@dataclass(frozen=True)
class VisionTokens:
    image: int
    start: int
    end: int

    @classmethod
    def of(cls, config) -> VisionTokens:
        return cls(config.image_token_id, config.vision_start_token_id, config.vision_end_token_id)


@dataclass(frozen=True)
class PackStats:
    conversations: int
    sequences: int
    length: int
    fill_tokens: int   # text tokens repeated to fill the end of a sequence


@dataclass
class _Conversation:
    tokens: dict[str, torch.Tensor]      # per-token keys, 1-D
    pixels: torch.Tensor | None
    grids: torch.Tensor | None
    text: torch.Tensor                   # bool per token: outside every image (markers included)

    @property
    def length(self) -> int:
        return len(self.text)


@dataclass
class _Sequence:
    tokens: dict[str, list[torch.Tensor]] = field(default_factory=dict)
    pixels: list[torch.Tensor] = field(default_factory=list)
    grids: list[torch.Tensor] = field(default_factory=list)
    size: int = 0

    def add(self, c: _Conversation, keep: torch.Tensor | None = None) -> None:
        for key, values in c.tokens.items():
            self.tokens.setdefault(key, []).append(values if keep is None else values[keep])
        if keep is None and c.pixels is not None:
            self.pixels.append(c.pixels)
            self.grids.append(c.grids)
        self.size += c.length if keep is None else int(keep.sum())

    def fill(self, following: list[_Conversation], length: int) -> int:
        """Text of ``following`` (cycled) up to ``length`` tokens; the number of tokens added."""
        start = self.size
        for c in itertools.cycle(following):
            room = length - self.size
            if room <= 0:
                break
            keep = c.text & (c.text.long().cumsum(0) <= room)
            self.add(c, keep)
        return self.size - start

    def batch(self) -> dict[str, torch.Tensor]:
        import torch   # here, not at the top: `qtool quantize` refuses bad requests before torch loads

        out = {key: torch.cat(parts)[None] for key, parts in self.tokens.items()}
        if self.pixels:
            out["pixel_values"] = torch.cat(self.pixels)
            out["image_grid_thw"] = torch.cat(self.grids)
        return out


def _split(sample, ids: VisionTokens) -> _Conversation:
    unknown = set(sample.keys()) - set(PER_TOKEN) - set(PER_IMAGE)
    if unknown or sample["input_ids"].shape[0] != 1:
        raise RuntimeError(f"cannot pack calibration batch with keys {sorted(sample.keys())} "
                           f"and input_ids {tuple(sample['input_ids'].shape)}: expected one conversation")
    input_ids = sample["input_ids"][0]
    vision = (input_ids == ids.image) | (input_ids == ids.start) | (input_ids == ids.end)
    tokens = {k: sample[k][0] for k in PER_TOKEN if k in sample}
    return _Conversation(tokens, sample.get("pixel_values"), sample.get("image_grid_thw"), ~vision)


def pack(samples: list, ids: VisionTokens) -> tuple[list[dict[str, torch.Tensor]], PackStats]:
    """One-conversation processor outputs -> equal-length multi-conversation batches."""
    convs = [_split(s, ids) for s in samples]
    if not any(bool(c.text.any()) for c in convs):
        raise RuntimeError("calibration conversations have no text tokens to fill sequences with")
    length = max(c.length for c in convs)
    sequences, current, filled = [], _Sequence(), 0
    for i, c in enumerate(convs):
        if current.size + c.length > length:
            filled += current.fill(convs[i:] + convs[:i], length)
            sequences.append(current.batch())
            current = _Sequence()
        current.add(c)
    filled += current.fill(convs, length)
    sequences.append(current.batch())
    return sequences, PackStats(len(convs), len(sequences), length, filled)

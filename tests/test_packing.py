"""AWQ calibration packed to one sequence length, on real processor outputs (the packed AWQ run itself is the
suite's awq-int4 artifact: conftest.quantize_args)."""

import pytest
import torch
from conftest import TINY
from transformers import AutoConfig, AutoProcessor

from qtool import paths
from qtool.calibration.packing import VisionTokens, pack
from qtool.calibration.records import load_records
from qtool.calibration.samples import conversations, pick
from qtool.models.checkpoint import checkpoint_of


@pytest.fixture(scope="module")
def processed():
    """Seven calibration conversations as GPTQModel's Qwen2-VL preparation makes them, one per batch."""
    info = checkpoint_of(TINY)
    processor = AutoProcessor.from_pretrained(TINY)
    convs = conversations(pick(load_records(paths.CALIB_DATA), 7), info.adapter, "mixed")
    out = []
    for conv in convs:
        images = [item["image"] for m in conv for item in m["content"] if item.get("type") == "image"]
        text = processor.apply_chat_template([conv], tokenize=False, add_generation_prompt=True)
        out.append(processor(text=text, images=images or None, return_tensors="pt"))
    return out, VisionTokens.of(AutoConfig.from_pretrained(TINY))


def test_packed_sequences_have_one_length_and_every_conversation_whole(processed):
    samples, ids = processed
    sequences, stats = pack(samples, ids)
    lengths = {s["input_ids"].shape[1] for s in sequences}
    assert lengths == {max(s["input_ids"].shape[1] for s in samples)} == {stats.length}
    assert len(sequences) == stats.sequences < len(samples) and stats.fill_tokens > 0
    stream = torch.cat([s["input_ids"][0] for s in sequences]).tolist()
    position = 0
    for s in samples:   # each conversation appears whole, in order
        whole = s["input_ids"][0].tolist()
        position = next(i for i in range(position, len(stream)) if stream[i:i + len(whole)] == whole) + len(whole)
    merge = 2 * 2
    for seq in sequences:
        assert torch.equal(seq["attention_mask"], torch.ones_like(seq["input_ids"]))
        assert seq["mm_token_type_ids"].shape == seq["input_ids"].shape
        image_tokens = int((seq["input_ids"] == ids.image).sum())
        grids = seq.get("image_grid_thw", torch.zeros(0, 3, dtype=torch.long))
        assert image_tokens * merge == int(grids.prod(-1).sum())
        assert int((seq["input_ids"] == ids.start).sum()) == len(grids) == int((seq["input_ids"] == ids.end).sum())
    with_images = [s for s in samples if "pixel_values" in s]
    assert torch.equal(torch.cat([s["pixel_values"] for s in sequences if "pixel_values" in s]),
                       torch.cat([s["pixel_values"] for s in with_images]))


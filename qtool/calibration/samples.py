"""From a validated set to the chat conversations the quantization engine calibrates on."""

from __future__ import annotations

from qtool.calibration.images import load_image
from qtool.models import ArchAdapter


def pick(calib_set, n: int) -> list:
    """``n`` records spread evenly over the set (the set mixes photos, charts, documents...)."""
    records = list(calib_set.records)
    if n >= len(records):
        return records
    step = len(records) / n
    return [records[int(i * step)] for i in range(n)]


def conversations(records, adapter: ArchAdapter, modality: str = "image-text") -> list[list[dict]]:
    """Each record as chat messages with its (safely loaded) image in place; ``modality`` "text" drops the
    images (the same conversations, text only), "mixed" drops every second record's image."""
    out = []
    for i, r in enumerate(records):
        messages = adapter.to_messages(r.text, r.messages)
        keep = modality == "image-text" or (modality == "mixed" and i % 2 == 0)
        image = load_image(r.image) if keep else None
        for m in messages:
            m["content"] = [item for item in m["content"] if keep or item.get("type") != "image"]
            for item in m["content"]:
                if item.get("type") == "image":
                    item["image"] = image
        out.append(messages)
    return out

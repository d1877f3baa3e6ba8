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


def conversations(records, adapter: ArchAdapter) -> list[list[dict]]:
    """Each record as chat messages with its (safely loaded) image in place."""
    out = []
    for r in records:
        messages = adapter.to_messages(r.text, r.messages)
        image = load_image(r.image)
        for m in messages:
            for item in m["content"]:
                if item.get("type") == "image":
                    item["image"] = image
        out.append(messages)
    return out

"""Qwen3-VL's DeepStack features in the calibration activations.

transformers adds the tower's DeepStack features to the visual tokens after decoder layers 0..k-1, inside the
text model's layer loop. GPTQModel captures the first layer's inputs once and then replays one layer at a time,
so without help the layers after those would calibrate on visual-token activations that never occur at
inference. For the duration of a quantize call the text model hands the features to its layers as one keyword
argument (GPTQModel caches the first layer's keyword arguments per calibration batch and passes them to every
layer it replays), each layer adds its own feature to its output, and the text model's own addition is off: a
full forward computes what it computes without the patch (tests/test_qwen3_vl.py checks both).
"""

from __future__ import annotations

import contextlib
from collections import Counter

KEY = "qtool_deepstack"   # (visual_pos_masks, [feature per layer])


@contextlib.contextmanager
def deepstack_in_layers(adapter):
    """Yields a Counter of DeepStack additions per decoder layer index (empty for architectures without it)."""
    added: Counter = Counter()
    if not adapter.deepstack:
        yield added
        return
    from transformers.models.qwen3_vl import modeling_qwen3_vl as qwen3_vl

    text_cls, layer_cls = qwen3_vl.Qwen3VLTextModel, qwen3_vl.Qwen3VLTextDecoderLayer
    text_forward, layer_forward = text_cls.forward, layer_cls.forward

    def text(self, *args, visual_pos_masks=None, deepstack_visual_embeds=None, **kwargs):
        if deepstack_visual_embeds is not None:
            kwargs[KEY] = (visual_pos_masks, list(deepstack_visual_embeds))
        return text_forward(self, *args, **kwargs)

    def layer(self, hidden_states, *args, **kwargs):
        found = kwargs.pop(KEY, None)
        out = layer_forward(self, hidden_states, *args, **kwargs)
        index = self.self_attn.layer_idx
        if found is None or index >= len(found[1]):
            return out
        masks, features = found
        out = out.clone()
        masks = masks.to(out.device)
        out[masks, :] = out[masks, :] + features[index].to(out.device, out.dtype)
        added[index] += 1
        return out

    text_cls.forward, layer_cls.forward = text, layer
    try:
        yield added
    finally:
        text_cls.forward, layer_cls.forward = text_forward, layer_forward

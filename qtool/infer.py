"""Greedy image-question answering with transformers, shared by eval, ask, release and training.

A :class:`TorchModel` may take its vision embeddings from an ONNX Runtime encoder instead of the torch
tower: the prompt, the image placeholder tokens and the 3D rotary positions still come from the processor
and ``image_grid_thw``, so the vision tower is the only difference between the two paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from qtool import kernels, paths
from qtool.capture import engine_scratch
from qtool.models.chat import ANSWER_TOKENS, user_turn

IGNORE = -100


def answer_mask(ids: torch.Tensor, prefix: list[int], end: int) -> torch.Tensor:
    """Labels that keep only assistant answers and their closing <|im_end|>."""
    labels = torch.full_like(ids, IGNORE)
    for row in range(ids.shape[0]):
        seq = ids[row].tolist()
        i = 0
        while i < len(seq):
            if seq[i:i + len(prefix)] == prefix:
                j = i + len(prefix)
                while j < len(seq) and seq[j] != end:
                    j += 1
                labels[row, i + len(prefix): j + 1] = ids[row, i + len(prefix): j + 1]
                i = j
            i += 1
    return labels


def load_model(path, dtype: str = "bfloat16"):
    """A model folder (float or GPTQ/AWQ) and its processor, loaded by stock transformers on the CPU with the
    kernel ``qtool.kernels`` chooses.

    GPTQModel prints and writes ``./logs`` while loading quantized kernels: that happens in a scratch folder.
    """
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = Path(path).absolute()  # before engine_scratch changes the working directory
    kernel = kernels.load_kwargs(path, "cpu")
    with engine_scratch(paths.cache().absolute() / "engine-runs" / "load"):
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype), **kernel)
    return model.eval(), AutoProcessor.from_pretrained(path)


def encoder_outputs(encoded: Sequence, dtype: torch.dtype) -> dict:
    """``mm_encoder_outputs`` for transformers from ONNX Runtime results (``qtool.runtime.vision.VisionOutput``,
    one per image, in prompt order): the merged embeddings and, for Qwen3-VL, each DeepStack tap's features."""
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    def tensors(arrays):
        return tuple(torch.from_numpy(a).to(dtype) for a in arrays)

    pooled = tensors(e.embeds for e in encoded)
    if encoded[0].deepstack is None:
        return {"image": BaseModelOutputWithPooling(pooler_output=pooled)}
    from transformers.models.qwen3_vl.modeling_qwen3_vl import BaseModelOutputWithDeepstackFeatures

    taps = [tensors(e.deepstack[i] for e in encoded) for i in range(len(encoded[0].deepstack))]
    return {"image": BaseModelOutputWithDeepstackFeatures(pooler_output=pooled, deepstack_features=taps)}


@torch.inference_mode()
def answer(model, processor, images: Sequence[Image.Image], questions: Sequence[str],
           max_new_tokens: int = ANSWER_TOKENS, batch_size: int = 32, encoder=None) -> list[str]:
    """Greedy answers, batched with left padding (same result as one by one). With ``encoder`` (a
    ``qtool.runtime.vision.VisionEncoder``) the vision embeddings come from ONNX Runtime."""
    tokenizer = processor.tokenizer
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    embeds: dict[int, object] = {}
    out: list[str] = []
    try:
        for start in range(0, len(questions), batch_size):
            imgs = list(images[start:start + batch_size])
            texts = [
                processor.apply_chat_template([user_turn(im, q)], tokenize=False, add_generation_prompt=True)
                for im, q in zip(imgs, questions[start:start + batch_size])
            ]
            enc = processor(text=texts, images=imgs, padding=True, return_tensors="pt").to(model.device)
            extra = {}
            if encoder is not None:
                enc.pop("pixel_values")
                for im in imgs:
                    if id(im) not in embeds:
                        embeds[id(im)] = encoder.encode([im])
                encoded = [embeds[id(im)] for im in imgs]
                grids = [list(e.grids[0]) for e in encoded]
                if grids != enc["image_grid_thw"].tolist():
                    raise RuntimeError(f"runtime grids {grids} differ from the processor's")
                dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
                extra = {"mm_encoder_outputs": encoder_outputs(encoded, dtype)}
            gen = model.generate(**enc, **extra, max_new_tokens=max_new_tokens, do_sample=False)
            new = gen[:, enc["input_ids"].shape[1]:]
            out += [t.strip() for t in tokenizer.batch_decode(new, skip_special_tokens=True)]
    finally:
        tokenizer.padding_side = side
    return out


@torch.inference_mode()
def next_token_logprobs(model, processor, image: Image.Image, question: str, k: int = 5,
                        by_id: bool = False) -> dict[str | int, float]:
    """The top-``k`` log-probabilities of the first answer token after an image question, by token text or,
    ``by_id``, by token id."""
    text = processor.apply_chat_template([user_turn(image, question)], tokenize=False, add_generation_prompt=True)
    enc = processor(text=[text], images=[image], return_tensors="pt").to(model.device)
    top = model(**enc).logits[0, -1].float().log_softmax(-1).topk(k)
    ids = [int(i) for i in top.indices]
    return {i if by_id else processor.tokenizer.decode([i]): float(v) for v, i in zip(top.values, ids)}


@dataclass
class TorchModel:
    """A loaded transformers model: what eval's teacher-forced fidelity reads (``model``, ``processor``)."""
    model: object
    processor: object
    encoder: object = None     # an ONNX Runtime VisionEncoder in place of the torch vision tower

    @property
    def kernel(self) -> str:
        return kernels.kernel_name(self.model) + (" + ORT vision" if self.encoder is not None else "")

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str], batch_size: int = 32) -> list[str]:
        return answer(self.model, self.processor, images, questions, batch_size=batch_size, encoder=self.encoder)

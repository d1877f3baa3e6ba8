"""How close an exported GGUF pair is to the transformers model it came from.

Three measures, each against torch on the same inputs: the language model's logits on text
prompts, the mmproj's image embeddings, and greedy answers to held-out image questions.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from qtool import infer
from qtool.export.gguf_export import gguf_files
from qtool.export.onnx_validate import max_abs, rel_l2
from qtool.export.vision_tower import load_vision_tower
from qtool.infer import answer, load_model
from qtool.models.chat import first_token_logprobs, openai_user_turn
from qtool.runtime.llamacpp import GGUFModel, image_embeddings


def text_logits(folder: Path, quant: str, model_path: Path, prompts: Sequence[str]) -> dict:
    """Logits at every position of text-only chat prompts: GGUF vs transformers in float32."""
    import torch

    text_file, _ = gguf_files(folder, quant)
    model, processor = load_model(model_path, "float32")
    gguf = GGUFModel(text_file, None, n_ctx=512, logits_all=True)
    worst, agree, total = 0.0, 0, 0
    for prompt in prompts:
        text = processor.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": prompt}]}],
                                             tokenize=False, add_generation_prompt=True)
        ids = processor.tokenizer(text, add_special_tokens=False).input_ids
        with torch.inference_mode():
            ref = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
        out = gguf.logits(ids)
        worst = max(worst, float(np.abs(out - ref).max()))
        agree += int((out.argmax(-1) == ref.argmax(-1)).sum())
        total += len(ids)
    return {"quant": quant, "prompts": len(prompts), "positions": total, "max_abs": worst,
            "logit_scale": float(np.abs(ref).max()), "top1_agreement": agree / total}


def vision_embeddings(folder: Path, model_path: Path, images: Sequence[Image.Image], quant: str = "f16") -> dict:
    """The mmproj's image embeddings vs the transformers vision tower, per image (``quant``: any
    language-model file of the export; mtmd needs one loaded beside the mmproj)."""
    import torch
    from transformers import AutoConfig, AutoProcessor

    text_file, mmproj = gguf_files(folder, quant)
    visual = load_vision_tower(model_path, AutoConfig.from_pretrained(model_path))
    processor = AutoProcessor.from_pretrained(model_path).image_processor
    gguf = GGUFModel(text_file, mmproj, n_ctx=512)
    rows = []
    for image in images:
        enc = processor(images=[image], return_tensors="pt")
        with torch.no_grad():
            out = visual(enc["pixel_values"].float(), grid_thw=enc["image_grid_thw"])
        # Qwen3-VL: llama.cpp's mmproj returns the DeepStack features beside the merger's, in one row per token
        ref = torch.cat([out.pooler_output, *(getattr(out, "deepstack_features", None) or [])], -1).float().numpy()
        out = image_embeddings(gguf, image)
        row = {"size": list(image.size), "tokens": int(ref.shape[0]), "gguf_tokens": int(out.shape[0])}
        if out.shape == ref.shape:
            row.update(max_abs=max_abs(out, ref), rel_l2=rel_l2(out, ref))
        rows.append(row)
    return {"mmproj": mmproj.name, "images": rows,
            "worst_rel_l2": max((r.get("rel_l2", float("inf")) for r in rows), default=None)}


def answers(folder: Path, quant: str, model_path: Path, images: Sequence[Image.Image], questions: Sequence[str],
            reference: Sequence[str] | None = None) -> dict:
    """Greedy answers through llama.cpp (mtmd) vs the float model's (transformers, float32)."""

    if reference is None:
        model, processor = load_model(model_path, "float32")
        reference = answer(model, processor, images, questions)
    text_file, mmproj = gguf_files(folder, quant)
    gguf = GGUFModel(text_file, mmproj, n_ctx=1024)
    got = [gguf.answer(image, q) for image, q in zip(images, questions)]
    same = sum(a == b for a, b in zip(got, reference))
    return {"quant": quant, "questions": len(questions), "agreement": same / len(questions),
            "answers": got, "reference": list(reference)}


def next_token_logprobs(folder: Path, quant: str, model_path: Path, image: Image.Image, question: str,
                        k: int = 5) -> dict:
    """The top-``k`` log-probabilities of the first answer token after an image question: llama.cpp (mtmd, the
    image through the mmproj and the language model) vs transformers in float32, by token text."""
    text_file, mmproj = gguf_files(folder, quant)
    gguf = GGUFModel(text_file, mmproj, n_ctx=1024, logits_all=True)
    reply = gguf.llm.create_chat_completion(
        messages=[openai_user_turn(image, question)],
        max_tokens=1, temperature=0.0, top_k=1, logprobs=True, top_logprobs=k)
    got = first_token_logprobs(reply)
    ref = infer.next_token_logprobs(*load_model(model_path, "float32"), image, question, k)
    return {"gguf": got, "transformers": ref}

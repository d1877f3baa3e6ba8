"""One profile's measurements, run in a fresh process so its peak memory is its own.

    python -m qtool.bench.worker SPEC.json RESULT.json
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from transformers import AutoModelForImageTextToText, AutoProcessor, LogitsProcessor, LogitsProcessorList

from qtool import kernels
from qtool.bench.measure import PROMPT, add_bounds, cpu_bandwidth_gbs, image_for, peak_rss_mb, serve, summarize
from qtool.infer import encoder_outputs
from qtool.models.adapter import head_dim
from qtool.runtime.onnx_io import graph_bytes
from qtool.runtime.vision import VisionEncoder

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class _Clock(LogitsProcessor):
    """Timestamps each decoding step; the first comes right after the prefill forward."""

    def __init__(self):
        self.stamps: list[float] = []

    def __call__(self, input_ids, scores):
        self.stamps.append(time.perf_counter())
        return scores


def peak_memory_mb(device: str) -> float:
    """GPU: torch's peak allocation. CPU: this process's peak RSS."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return peak_rss_mb()


def bandwidth_gbs(device: str, nbytes: int = 512 * 2**20) -> float:
    """Device memory bandwidth from one large copy (read + write), best of 5."""
    if device != "cuda":
        return cpu_bandwidth_gbs(nbytes)
    src = torch.empty(nbytes, dtype=torch.uint8, device=device).fill_(1)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(5):
        torch.cuda.synchronize()
        t = time.perf_counter()
        dst.copy_(src)
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    del src, dst
    return 2 * nbytes / best / 1e9


def decoder_bytes(model) -> int:
    """Bytes of weights read for every decoded token: decoder layers, final norm, lm_head."""
    lm = model.model.language_model
    mods = [lm.layers, lm.norm, model.lm_head]
    return sum(t.numel() * t.element_size() for m in mods for t in list(m.parameters()) + list(m.buffers()))


def kv_bytes_per_position(model, dtype_bytes: int) -> int:
    c = model.config.text_config
    return 2 * c.num_hidden_layers * c.num_key_value_heads * head_dim(c) * dtype_bytes


class _VisionClock:
    """Times the torch vision tower inside ``generate`` (forward pre/post hooks)."""

    def __init__(self, visual):
        self.elapsed, self._start = 0.0, 0.0
        visual.register_forward_pre_hook(lambda *_: setattr(self, "_start", time.perf_counter()))
        visual.register_forward_hook(lambda *_: setattr(self, "elapsed", time.perf_counter() - self._start))


class _ONNXVision:
    """The vision tower in ONNX Runtime: image in, ``mm_encoder_outputs`` for ``generate`` out."""

    def __init__(self, folder: str, precision: str, dtype: torch.dtype, threads: int | None):

        self.encoder, self.dtype, self.elapsed = VisionEncoder(folder, precision, threads=threads), dtype, 0.0
        self.bytes = graph_bytes(Path(folder) / self.encoder.config.files[precision])

    def __call__(self, image) -> dict:
        t = time.perf_counter()
        outputs = encoder_outputs([self.encoder.encode([image])], self.dtype)
        self.elapsed = time.perf_counter() - t
        return {"mm_encoder_outputs": outputs}


def load_model(spec: dict, dtype: torch.dtype, device: str):
    """The checkpoint with the kernel ``qtool.kernels`` chooses for ``device``; with an ONNX vision tower, its
    torch blocks are never loaded (depth 0)."""
    kwargs = kernels.load_kwargs(spec["path"], device)
    if spec.get("onnx"):
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(spec["path"])
        config.vision_config.depth = 0
        kwargs["config"] = config
    model = AutoModelForImageTextToText.from_pretrained(spec["path"], dtype=dtype, device_map=device, **kwargs)
    return model.eval(), AutoProcessor.from_pretrained(spec["path"])


def prompt_inputs(processor, image_tokens: int, device: str, pixels: bool = True):
    """The bench prompt: one image of ``image_tokens`` visual tokens and PROMPT (no pixels: ONNX encodes them)."""
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": PROMPT}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    image = image_for(image_tokens)
    enc = processor(text=[text], images=[image], return_tensors="pt").to(device)
    if not pixels:
        enc.pop("pixel_values")
    return enc, image


def run(spec: dict) -> dict:
    device, dtype = spec["device"], DTYPES[spec["dtype"]]
    torch.manual_seed(0)
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    baseline_mb = peak_memory_mb("cpu")
    t = time.perf_counter()
    model, processor = load_model(spec, dtype, device)
    onnx = _ONNXVision(spec["onnx"], spec["precision"], dtype, spec.get("threads")) if spec.get("onnx") else None
    load_s = time.perf_counter() - t
    act_dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    enc, image = prompt_inputs(processor, spec["image_tokens"], device, pixels=not onnx)
    n_input = int(enc["input_ids"].shape[1])
    pad = processor.tokenizer.pad_token_id
    vision = onnx or _VisionClock(model.model.visual)

    def generate(new_tokens: int) -> dict:
        clock = _Clock()
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        with torch.inference_mode():
            extra = onnx(image) if onnx else {}
            out = model.generate(**enc, **extra, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                                 logits_processor=LogitsProcessorList([clock]), pad_token_id=pad)
        if device == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        made = int(out.shape[1]) - n_input
        prefill = clock.stamps[0] - t0
        return {"new_tokens": made, "prefill_s": prefill, "prefill_tok_s": n_input / prefill,
                "decode_tok_s": (made - 1) / (t1 - clock.stamps[0]) if made > 1 else None,
                "e2e_tok_s": made / (t1 - t0), "total_s": t1 - t0, "vision_s": vision.elapsed}

    generate(min(8, min(spec["gen"])))  # warm-up: kernels, allocator, caches
    weights = decoder_bytes(model)
    kv = kv_bytes_per_position(model, torch.finfo(act_dtype).bits // 8)
    lengths = []
    for gen in sorted(spec["gen"]):
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        runs = [generate(gen) for _ in range(spec["repeats"])]
        lengths.append(summarize(gen, runs, peak_memory_mb(device)))
    bandwidth = bandwidth_gbs(device)  # last: its 1 GiB of buffers must not count in the peaks above
    add_bounds(lengths, bandwidth, weights, kv, n_input)
    return {
        "profile": spec["profile"], "device": device, "dtype": str(act_dtype).replace("torch.", ""),
        "load_s": load_s, "weights_on_disk_bytes": sum(f.stat().st_size for f in Path(spec["path"]).glob("*.safetensors")),
        # ORT holds the vision graph's initializers: about its file size
        "weights_in_memory_bytes": sum(t.numel() * t.element_size() for t in list(model.parameters()) + list(model.buffers()))
        + (onnx.bytes if onnx else 0),
        "decoder_read_bytes_per_token": weights, "bandwidth_gbs": bandwidth,
        "kernel": kernels.kernel_name(model) + (f" + ORT {spec['precision']} vision" if onnx else ""), "input_tokens": n_input, "image_tokens": spec["image_tokens"],
        "baseline_rss_mb": baseline_mb, "pid": os.getpid(), "lengths": lengths,
    }


if __name__ == "__main__":
    serve(run)

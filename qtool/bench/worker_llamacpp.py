"""One GGUF profile's measurements with llama.cpp, in a fresh torch-free process.

    python -m qtool.bench.worker_llamacpp SPEC.json RESULT.json

Same prompt, image and fields as the torch worker. The answer streams token by token: the first
token arrives when the prefill (image encoding + prompt) is done, the rest are decode steps.
End-of-turn tokens are banned so every run decodes exactly ``gen`` tokens.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from qtool.bench.measure import (
    PROMPT,
    add_bounds,
    cpu_bandwidth_gbs,
    image_for,
    peak_rss_mb,
    serve,
    summarize,
    token_grid,
)
from qtool.models.chat import openai_user_turn
from qtool.runtime.llamacpp import GGUFModel

BANNED = ("<|im_end|>", "<|endoftext|>")
KV_BYTES = 2        # llama.cpp's default KV cache type is F16


def decoder_bytes(model_file: str) -> int:
    """Bytes of weights read per decoded token: all but the token embedding (one row is read), unless the file has
    no ``output.weight``: a tied model's output layer is the embedding, read whole for every token."""
    from gguf import GGUFReader

    tensors = {t.name: int(t.n_bytes) for t in GGUFReader(model_file).tensors}
    tied = "output.weight" not in tensors
    return sum(n for name, n in tensors.items() if tied or name != "token_embd.weight")


def run(spec: dict) -> dict:
    threads = spec.get("threads") or os.cpu_count() or 1
    baseline_mb = peak_rss_mb()
    image = image_for(spec["image_tokens"])
    n_ctx = spec["image_tokens"] + max(spec["gen"]) + 128
    t = time.perf_counter()
    model = GGUFModel(spec["path"], spec["mmproj"], n_ctx=n_ctx, threads=threads)
    load_s = time.perf_counter() - t
    llm = model.llm
    banned = {str(i): -1e9 for s in BANNED for i in llm.tokenize(s.encode(), add_bos=False, special=True)}
    messages = [openai_user_turn(image, PROMPT)]

    def generate(new_tokens: int) -> dict:
        t0 = time.perf_counter()
        stamps = []
        for chunk in llm.create_chat_completion(messages=messages, max_tokens=new_tokens, temperature=0.0,
                                                top_k=1, repeat_penalty=1.0, logit_bias=banned, stream=True):
            if chunk["choices"][0]["delta"].get("content") is not None or not stamps:
                stamps.append(time.perf_counter())
        t1 = time.perf_counter()
        made = llm.n_tokens - n_positions + 1        # the last sampled token is never evaluated
        prefill = stamps[0] - t0
        return {"new_tokens": made, "prefill_s": prefill, "prefill_tok_s": n_input / prefill,
                "decode_tok_s": (made - 1) / (t1 - stamps[0]) if made > 1 else None,
                "e2e_tok_s": made / (t1 - t0), "total_s": t1 - t0}

    llm.create_chat_completion(messages=messages, max_tokens=1, temperature=0.0, top_k=1)
    n_positions = llm.n_tokens                       # M-RoPE: an image takes max(rows, cols) positions
    rows, cols = token_grid(spec["image_tokens"])
    n_input = n_positions - max(rows, cols) + rows * cols
    generate(min(8, min(spec["gen"])))               # warm-up
    lengths = [summarize(gen, [generate(gen) for _ in range(spec["repeats"])], peak_rss_mb())
               for gen in sorted(spec["gen"])]
    weights = decoder_bytes(spec["path"])
    meta = llm.metadata
    arch = meta["general.architecture"]
    heads, kv_heads = int(meta[f"{arch}.attention.head_count"]), int(meta[f"{arch}.attention.head_count_kv"])
    head_dim = int(meta[f"{arch}.embedding_length"]) // heads
    kv = 2 * int(meta[f"{arch}.block_count"]) * kv_heads * head_dim * KV_BYTES
    bandwidth = cpu_bandwidth_gbs()                  # last: its buffers must not count in the peaks above
    add_bounds(lengths, bandwidth, weights, kv, n_input)
    files = [Path(spec["path"]), Path(spec["mmproj"])]
    return {
        "profile": spec["profile"], "device": "cpu", "dtype": spec["quant"], "engine": "llama.cpp",
        "load_s": load_s, "weights_on_disk_bytes": sum(f.stat().st_size for f in files),
        "weights_in_memory_bytes": sum(f.stat().st_size for f in files),     # llama.cpp maps the files
        "decoder_read_bytes_per_token": weights, "bandwidth_gbs": bandwidth,
        "kernel": f"llama.cpp {spec['quant']}", "input_tokens": n_input, "image_tokens": spec["image_tokens"],
        "baseline_rss_mb": baseline_mb, "pid": os.getpid(), "lengths": lengths,
    }


if __name__ == "__main__":
    serve(run)

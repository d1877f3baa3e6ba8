"""A Hugging Face model card (README.md) for one release variant, with measured tables."""

from __future__ import annotations

from qtool import machine
from qtool.bench.report import RANDOM_NOTE, markdown_table

METHOD_NAMES = {"GPTQProfile": "GPTQ", "AWQProfile": "AWQ (GEMM)", "RTNProfile": "round-to-nearest (GPTQ format)"}


def _usage(name: str, method: str) -> str:
    vllm_q = "awq" if method == "AWQProfile" else "gptq"
    return f"""## Usage

### transformers (CPU or GPU; GPTQ/AWQ kernels come from `gptqmodel`, loaded through `optimum`)
```python
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained("{name}", device_map="auto")
processor = AutoProcessor.from_pretrained("{name}")
messages = [{{"role": "user", "content": [{{"type": "image"}}, {{"type": "text", "text": "Describe the image."}}]}}]
text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
inputs = processor(text=[text], images=[image], return_tensors="pt").to(model.device)
print(processor.batch_decode(model.generate(**inputs, max_new_tokens=64)[:, inputs["input_ids"].shape[1]:],
                             skip_special_tokens=True))
```

### vLLM (CUDA)
```bash
vllm serve {name} --quantization {vllm_q} --max-model-len 8192
```
"""


def render(variant: str, manifest: dict, base_model: str, eval_rows: list[dict], bench_rows: list[dict],
           eval_machine: dict | None, bench_machine: dict | None, random_weights: bool) -> str:
    profile = manifest["profile"]
    data, method = profile["_data"], profile["_type"]
    bits = data.get("bits")
    calib = manifest.get("calibration") or {}
    versions = manifest.get("versions", {})
    tags = ["qwen2-vl", METHOD_NAMES.get(method, method).split()[0].lower(), f"int{bits}", "qtool"]
    recipe_rows = [{"field": k, "value": v} for k, v in data.items() if k != "description"]
    recipe_rows += [{"field": "calibration set", "value": f"{calib.get('path')} (sha256 {calib.get('sha256')})"},
                    {"field": "calibration samples", "value": calib.get("samples")},
                    {"field": "source weights sha256", "value": manifest["source"]["sha256"]}]
    recipe_rows += [{"field": f"{lib} version", "value": v} for lib, v in sorted(versions.items())]
    parts = [
        "---",
        f"base_model: {base_model}",
        "library_name: transformers",
        "pipeline_tag: image-text-to-text",
        "tags:",
        *[f"- {t}" for t in tags],
        "---",
        "",
        f"# {variant}",
        "",
        f"{METHOD_NAMES.get(method, method)} {bits}-bit (group {data.get('group_size')}) quantization of "
        f"`{base_model}`, made with qtool. The language decoder's linear layers are quantized; the vision tower, "
        "merger, embeddings and `lm_head` stay in their original float precision.",
        "",
    ]
    if random_weights:
        parts += [RANDOM_NOTE, ""]
    parts += ["## Recipe", "", markdown_table(recipe_rows), "", _usage(variant, method)]
    if eval_rows and not random_weights:
        parts += ["## Accuracy and fidelity", "",
                  f"Measured by `qtool eval` on {machine.label(eval_machine or {})}; every row against the bf16 "
                  "reference on the same questions.", "", markdown_table(eval_rows), ""]
    if bench_rows:
        parts += ["## Speed and memory", "", f"Measured by `qtool bench` on {machine.label(bench_machine or {})}.",
                  "", markdown_table(bench_rows), ""]
    return "\n".join(parts)

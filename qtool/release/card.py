"""A Hugging Face model card (README.md) for one release variant, with measured tables."""

from __future__ import annotations

from qtool import machine
from qtool.bench.report import RANDOM_NOTE, markdown_table

METHOD_NAMES = {"GPTQProfile": "GPTQ", "AWQProfile": "AWQ (GEMM)", "RTNProfile": "round-to-nearest (GPTQ format)",
                "GGUFProfile": "GGUF", "ONNXVisionProfile": "ONNX"}
LIBRARY = {"quantized": "transformers", "gguf": "gguf", "onnx-vision": "onnx"}

CHAT = ('messages = [{"role": "user", "content": [{"type": "image"}, '
        '{"type": "text", "text": "Describe the image."}]}]')


def _usage_quantized(name: str, manifest: dict) -> str:
    vllm_q = "awq" if manifest["profile"]["_type"] == "AWQProfile" else "gptq"
    return f"""### transformers (CPU or GPU; GPTQ/AWQ kernels come from `gptqmodel`, loaded through `optimum`)
```python
from transformers import AutoModelForImageTextToText, AutoProcessor
model = AutoModelForImageTextToText.from_pretrained("{name}", device_map="auto")
processor = AutoProcessor.from_pretrained("{name}")
{CHAT}
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


def _usage_gguf(name: str, manifest: dict) -> str:
    model = next(iter(manifest["files"].values()))
    mmproj = manifest["mmproj"]["file"]
    return f"""### llama.cpp
```bash
llama-mtmd-cli -m {name}/{model} --mmproj {name}/{mmproj} --image photo.jpg -p "Describe the image." --temp 0
llama-server -m {name}/{model} --mmproj {name}/{mmproj}      # OpenAI-compatible, images as image_url
```

### llama-cpp-python
```python
from llama_cpp import Llama
from llama_cpp.llama_chat_format import MTMDChatHandler
llm = Llama("{name}/{model}", chat_handler=MTMDChatHandler(clip_model_path="{name}/{mmproj}"), n_ctx=4096)
print(llm.create_chat_completion(messages=[{{"role": "user", "content": [
    {{"type": "image_url", "image_url": {{"url": "file:///path/to/photo.jpg"}}}},
    {{"type": "text", "text": "Describe the image."}}]}}], temperature=0))
```
"""


def _usage_onnx(name: str, manifest: dict) -> str:
    precision = manifest["profile"]["_data"]["precision"]
    graph = manifest["files"][precision]
    return f"""### ONNX Runtime (numpy, pillow and onnxruntime only; `pip install qtool` brings the small runtime)
```python
from PIL import Image
from qtool.runtime.vision import VisionEncoder
encoder = VisionEncoder("{name}", precision="{precision}")     # runs {graph}
out = encoder.encode([Image.open("photo.jpg")])
out.embeds   # float32 [visual tokens, hidden]: they replace the <|image_pad|> tokens of the language model's input
out.grids    # ((1, rows, columns),) in patches, as image_grid_thw
```
The graph's inputs (`vision.json` names them) are the patches plus per-patch rotary cos/sin and image ids,
computed outside the graph so that one graph serves every resolution; any ONNX Runtime binding can call it
with those inputs. The language model is not part of this variant: use the base model or a quantized variant.
"""


USAGE = {"quantized": _usage_quantized, "gguf": _usage_gguf, "onnx-vision": _usage_onnx}


def _intro(kind: str, data: dict, base_model: str) -> str:
    if kind == "gguf":
        return (f"`{base_model}` for llama.cpp: the language model in GGUF {data['quant'].upper()} and the vision "
                f"tower + merger as an mmproj in {data['mmproj'].upper()}, made with qtool.")
    if kind == "onnx-vision":
        return (f"The vision tower and patch merger of `{base_model}` as an ONNX graph ({data['precision']}), exact "
                "at any image size and any number of images, validated in ONNX Runtime against torch; made with qtool.")
    return (f"{METHOD_NAMES.get(data['_type'], data['_type'])} {data['bits']}-bit (group {data['group_size']}) "
            f"quantization of `{base_model}`, made with qtool. The language decoder's linear layers are quantized; "
            "the vision tower, merger, embeddings and `lm_head` stay in their original float precision.")


def _tags(kind: str, data: dict) -> list[str]:
    precision = {"gguf": data.get("quant"), "onnx-vision": data.get("precision")}.get(kind, f"int{data.get('bits')}")
    method = METHOD_NAMES.get(data["_type"], data["_type"]).split()[0].lower()
    return ["qwen2-vl", method, str(precision), "qtool"]


def _recipe(manifest: dict) -> list[dict]:
    data = manifest["profile"]["_data"]
    rows = [{"field": k, "value": v} for k, v in data.items() if k != "description"]
    calib = manifest.get("calibration")
    if calib:
        rows += [{"field": "calibration set", "value": f"{calib.get('path')} (sha256 {calib.get('sha256')})"},
                 {"field": "calibration samples", "value": calib.get("samples")}]
    source = manifest["source"]["sha256"] if "source" in manifest else manifest["source_sha256"]
    rows.append({"field": "source weights sha256", "value": source})
    return rows + [{"field": f"{lib} version", "value": v} for lib, v in sorted(manifest.get("versions", {}).items())]


def render(variant: str, kind: str, manifest: dict, base_model: str, accuracy_rows: list[dict],
           bench_rows: list[dict], eval_machine: dict | None, bench_machine: dict | None,
           random_weights: bool) -> str:
    data = dict(manifest["profile"]["_data"], _type=manifest["profile"]["_type"])
    parts = ["---", f"base_model: {base_model}", f"library_name: {LIBRARY[kind]}", "pipeline_tag: image-text-to-text",
             "tags:", *[f"- {t}" for t in _tags(kind, data)], "---", "", f"# {variant}", "",
             _intro(kind, data, base_model), ""]
    if random_weights:
        parts += [RANDOM_NOTE, ""]
    parts += ["## Recipe", "", markdown_table(_recipe(manifest)), "", "## Usage", "", USAGE[kind](variant, manifest)]
    if accuracy_rows and not random_weights:
        how = ("`qtool eval`; every row against the bf16 reference on the same questions" if kind == "quantized" else
               "greedy answers to the held-out questions, compared with the float32 torch model's")
        parts += ["## Accuracy and fidelity", "", f"Measured by {how}, on {machine.label(eval_machine or {})}.", "",
                  markdown_table(accuracy_rows), ""]
    if bench_rows:
        parts += ["## Speed and memory", "", f"Measured by `qtool bench` on {machine.label(bench_machine or {})}.",
                  "", markdown_table(bench_rows), ""]
    return "\n".join(parts)

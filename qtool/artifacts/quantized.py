"""quantized: a GPTQ / AWQ / RTN checkpoint made by ``qtool quantize``, loaded by stock transformers
(GPTQModel's kernels through optimum) and served by vLLM."""

from __future__ import annotations

from pathlib import Path

from qtool import infer, kernels, machine, profiles
from qtool.artifacts.kind import ArtifactKind, BuildOptions, Card
from qtool.quantization import quantize
from qtool.quantization.engine import needs_calibration

METHOD_NAMES = {"GPTQProfile": "GPTQ", "AWQProfile": "AWQ (GEMM)", "RTNProfile": "round-to-nearest (GPTQ format)"}
CHAT = ('messages = [{"role": "user", "content": [{"type": "image"}, '
        '{"type": "text", "text": "Describe the image."}]}]')


def build(source, profile, out: Path, options: BuildOptions) -> None:
    quantize(source, profile, out=out, calib=options.calib, device=options.device, force=True,
             progress=options.progress)


def load(path: Path, _profile, _source: Path, dtype: str | None) -> infer.TorchModel:
    return infer.TorchModel(*infer.load_model(path, dtype or "bfloat16"))


def intro(data: dict, base_model: str) -> str:
    return (f"{METHOD_NAMES.get(data['_type'], data['_type'])} {data['bits']}-bit (group {data['group_size']}) "
            f"quantization of `{base_model}`, made with qtool. The language decoder's linear layers are quantized; "
            "the vision tower, merger, embeddings and `lm_head` stay in their original float precision.")


def usage(name: str, manifest: dict) -> str:
    vllm_q = "awq" if manifest["profile"]["_type"] == "AWQProfile" else "gptq"
    qc = manifest.get("quantization_config") or {}
    backend = kernels.backend_for(qc, "cpu")
    cpu = "" if backend is None else (
        f"\nOn a CPU, pass `quantization_config={'AwqConfig' if vllm_q == 'awq' else 'GPTQConfig'}"
        f"(bits={qc['bits']}, backend=\"{backend}\")` to `from_pretrained` for the fastest CPU kernel "
        "(`qtool.kernels`; GPTQModel's default for this format is slower); leave it out on a GPU.\n")
    return f"""### transformers (CPU or GPU; GPTQ/AWQ kernels come from `gptqmodel`, loaded through `optimum`)
{cpu}
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


def vllm(profile, device: str) -> tuple[str, str] | None:
    if device != "cpu":
        return None
    if profile.bits == 8:   # vLLM 0.32 CPU: "Marlin does not support weight_bits = uint8b128"
        return ("vLLM's CPU build has no 8-bit GPTQ kernel",
                "serve a gptq-int4 or awq-int4 variant on CPU, or this one on a CUDA GPU (vLLM serves 8-bit GPTQ "
                "there)")
    # on an AVX2 CPU the engine fails at start-up with "'_C' object has no attribute 'cpu_gemm_wna16'"
    if not machine.vllm_avx512():
        return ("vLLM's CPU build has its 4-bit GPTQ/AWQ kernel only for AVX-512 CPUs, and this CPU has none",
                "serve the float model here (qtool serve MODEL), or this variant on an AVX-512 CPU or a CUDA GPU")
    return None


KIND = ArtifactKind(
    name="quantized", profile_types=(profiles.GPTQProfile, profiles.AWQProfile, profiles.RTNProfile),
    consumer="transformers", build=build, load=load, calibrated=needs_calibration,
    bench_worker="qtool.bench.worker", bench_spec=lambda path, _profile, _source: {"path": str(path)},
    teacher_forced=True, vllm=vllm, smoke="smoke_transformers.py", card=Card("transformers", intro, usage),
)

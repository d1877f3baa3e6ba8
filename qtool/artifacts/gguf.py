"""gguf: the language model as GGUF plus the vision tower as an mmproj, made by ``qtool export gguf`` and
run by llama.cpp (CPU build)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from qtool import profiles
from qtool.artifacts.kind import ArtifactKind, BuildOptions, Card
from qtool.export.gguf_export import export_gguf, gguf_files
from qtool.models.chat import ANSWER_TOKENS
from qtool.runtime.llamacpp import GGUFModel


def build(source, profile, out: Path, _options: BuildOptions) -> None:
    export_gguf(source, out, quants=(profile.quant,), mmproj=profile.mmproj, force=True)


class LlamaCppModel:
    def __init__(self, path: Path, profile):
        self.model = GGUFModel(*gguf_files(path, profile.quant), n_ctx=1024)
        self.kernel = f"llama.cpp {profile.quant}"

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        return [self.model.answer(image, question, ANSWER_TOKENS) for image, question in zip(images, questions)]


def bench_spec(path: Path, profile, _source: Path) -> dict:
    model_file, mmproj_file = gguf_files(path, profile.quant)
    return {"path": str(model_file), "mmproj": str(mmproj_file), "quant": profile.quant}


def intro(data: dict, base_model: str) -> str:
    return (f"`{base_model}` for llama.cpp: the language model in GGUF {data['quant'].upper()} and the vision "
            f"tower + merger as an mmproj in {data['mmproj'].upper()}, made with qtool.")


def usage(name: str, manifest: dict) -> str:
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


KIND = ArtifactKind(
    name="gguf", profile_types=(profiles.GGUFProfile,), consumer="llama.cpp", build=build,
    load=lambda path, profile, _source, _dtype: LlamaCppModel(path, profile),
    bench_worker="qtool.bench.worker_llamacpp", bench_spec=bench_spec, bench_devices=("cpu",),
    teacher_forced=False, smoke="smoke_llamacpp.py",
    vllm=lambda _p, _d: ("GGUF is llama.cpp's format", "serve it with llama-server (its model card shows how), or "
                         "serve "
                         "a gptq-*/awq-* variant with vLLM"), card=Card("gguf", intro, usage),
)

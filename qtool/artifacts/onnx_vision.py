"""onnx-vision: the vision tower + merger as one ONNX graph, made by ``qtool export onnx`` and run by ONNX
Runtime; the language model stays the source checkpoint's, in torch."""

from __future__ import annotations

from pathlib import Path

from qtool import infer, profiles
from qtool.artifacts.kind import ArtifactKind, BuildOptions, Card
from qtool.export.onnx_vision import export_onnx
from qtool.runtime.vision import VisionEncoder


def build(source, profile, out: Path, _options: BuildOptions) -> None:
    export_onnx(source, out, precisions=(profile.precision,), force=True)


def load(path: Path, profile, source: Path, dtype: str | None) -> infer.TorchModel:
    model, processor = infer.load_model(source, dtype or profile.dtype)
    return infer.TorchModel(model, processor, encoder=VisionEncoder(path, profile.precision))


def bench_spec(path: Path, profile, source: Path) -> dict:
    return {"path": str(source), "onnx": str(path), "precision": profile.precision}


def intro(data: dict, base_model: str) -> str:
    return (f"The vision tower and patch merger of `{base_model}` as an ONNX graph ({data['precision']}), exact "
            "at any image size and any number of images, validated in ONNX Runtime against torch; made with qtool.")


def usage(name: str, manifest: dict) -> str:
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


KIND = ArtifactKind(
    name="onnx-vision", profile_types=(profiles.ONNXVisionProfile,), consumer="onnxruntime", build=build,
    load=load, bench_worker="qtool.bench.worker", bench_spec=bench_spec, teacher_forced=False,
    vllm=lambda _p, _d: ("an ONNX vision tower is not a model vLLM loads", "serve the model it was exported from"),
    smoke="smoke_onnxruntime.py", card=Card("onnx", intro, usage),
)

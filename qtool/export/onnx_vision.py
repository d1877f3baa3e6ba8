"""The vision tower (with its patch merger) as a size-independent ONNX graph.

The stock tower cannot go through ``torch.export``: its attention splits the sequence with
``cu_seqlens.tolist()`` and Qwen2.5-VL builds its window index in Python loops, and the legacy
exporter silently freezes those values at the sample's size. :class:`VisionGraph` reuses the stock
module's weights and submodules but takes the grid-dependent values as inputs (rotary cos/sin,
image and window ids per patch) and attends with a block-diagonal mask built from the ids, so one
graph is exact for any resolution and any number of images.

Qwen2.5-VL's window attention needs no reordering here: the stock model permutes patches into
window order, attends within contiguous windows and permutes back, which equals attending in
the original order with a "same window" mask, because every other op works per patch and the
permutation moves whole merge blocks.

Qwen3-VL's tower (:class:`DeepStackVisionGraph`) also takes the bilinear taps that resample its learned
position table to each image's grid, and returns its DeepStack mergers' features as a second output.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

from qtool import fingerprint
from qtool.errors import QtoolError
from qtool.export import onnx_quant, onnx_validate
from qtool.export.vision_tower import image_processor_settings, load_vision_tower, reference_inputs
from qtool.models.checkpoint import CheckpointInfo, float_checkpoint
from qtool.outputs import check_target, staged_dir
from qtool.runtime import onnx_io as io

ARCHITECTURES = tuple(io.INPUTS)   # the towers whose inputs the runtime knows how to compute

Progress = Callable[[str], None]


class VisionGraph(nn.Module):
    """``pixel_values, rotary_cos, rotary_sin, segment_ids[, window_ids] -> image_embeds`` (Qwen2-VL, Qwen2.5-VL)."""

    def __init__(self, visual: nn.Module, windowed: bool = False):
        super().__init__()
        self.patch_weight = _patch_weight(visual)
        self.blocks = visual.blocks
        self.merger = visual.merger
        self.windowed = windowed
        self.full_blocks = frozenset(visual.fullatt_block_indexes if windowed else range(len(visual.blocks)))

    def forward(self, pixel_values, rotary_cos, rotary_sin, segment_ids, window_ids=None):
        x = nn.functional.linear(pixel_values, self.patch_weight)
        full = _block_bias(segment_ids)
        local = _block_bias(window_ids) if self.windowed else full
        for i, block in enumerate(self.blocks):
            x = _block(block, x, rotary_cos, rotary_sin, full if i in self.full_blocks else local)
        return self.merger(x)


class DeepStackVisionGraph(nn.Module):
    """``pixel_values, rotary_cos, rotary_sin, segment_ids, pos_indices, pos_weights -> image_embeds,
    deepstack_embeds`` (Qwen3-VL): a patch bias, the learned position table resampled to each image by the
    bilinear taps given as inputs, and one merger per DeepStack block whose features are stacked."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.patch_weight = _patch_weight(visual)
        self.patch_bias = nn.Parameter(visual.patch_embed.proj.bias.detach(), requires_grad=False)
        self.pos_embed = visual.pos_embed
        self.blocks = visual.blocks
        self.merger = visual.merger
        self.deepstack_mergers = visual.deepstack_merger_list
        self.deepstack_of_block = {block: i for i, block in enumerate(visual.deepstack_visual_indexes)}

    def forward(self, pixel_values, rotary_cos, rotary_sin, segment_ids, pos_indices, pos_weights):
        x = nn.functional.linear(pixel_values, self.patch_weight, self.patch_bias)
        x = x + (self.pos_embed(pos_indices) * pos_weights[:, :, None]).sum(1)
        bias = _block_bias(segment_ids)
        deep = []
        for i, block in enumerate(self.blocks):
            x = _block(block, x, rotary_cos, rotary_sin, bias)
            if i in self.deepstack_of_block:
                deep.append(self.deepstack_mergers[self.deepstack_of_block[i]](x))
        return self.merger(x), torch.stack(deep)


def graph_for(visual: nn.Module, model_type: str) -> nn.Module:
    if model_type == "qwen3_vl":
        return DeepStackVisionGraph(visual)
    return VisionGraph(visual, windowed=model_type == "qwen2_5_vl")


def _patch_weight(visual: nn.Module) -> nn.Parameter:
    """The patch embedding's Conv3d weight as a matrix: stride == kernel, so it is a matmul per patch."""
    weight = visual.patch_embed.proj.weight
    return nn.Parameter(weight.detach().reshape(weight.shape[0], -1), requires_grad=False)


def _block(block: nn.Module, x, cos, sin, bias):
    x = x + _attention(block.attn, block.norm1(x), cos, sin, bias)
    return x + block.mlp(block.norm2(x))


def _block_bias(ids):
    """[n, n] additive mask: 0 where two patches share an id, -inf elsewhere (built once per graph)."""
    return torch.where(ids[:, None] == ids[None, :], 0.0, float("-inf"))


def _attention(attn: nn.Module, x, cos, sin, bias):
    from transformers.models.qwen2_vl.modeling_qwen2_vl import (
        apply_rotary_pos_emb_vision,
    )

    n = x.shape[0]
    q, k, v = attn.qkv(x).reshape(n, 3, attn.num_heads, -1).permute(1, 0, 2, 3).unbind(0)
    q, k = apply_rotary_pos_emb_vision(q, k, cos, sin)
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))                     # [heads, n, head_dim]
    scores = torch.matmul(q * attn.scaling, k.transpose(1, 2)) + bias     # scale q: n*d work, not n*n
    out = torch.matmul(torch.softmax(scores, dim=-1), v)
    return attn.proj(out.transpose(0, 1).reshape(n, -1))


@dataclass(frozen=True)
class ExportResult:
    out: Path
    model: str
    model_type: str
    opset: int
    files: dict[str, str]                 # precision -> file name
    sizes: dict[str, int]                 # precision -> bytes on disk (incl. external data)
    validation: dict = field(repr=False)  # validation.json
    wall_s: float

    def to_dict(self) -> dict:
        return {**asdict(self), "out": str(self.out)}


def export_onnx(model: str | Path | CheckpointInfo, out: str | Path, *,
                precisions: Sequence[str] = io.DEFAULT_PRECISIONS,
                opset: int = io.DEFAULT_OPSET, force: bool = False,
                progress: Progress | None = None) -> ExportResult:
    """Export MODEL's vision tower to ``out`` in each precision, validate it, then publish the folder."""
    from transformers import AutoConfig

    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    precisions = check_precisions(precisions)
    if not io.MIN_OPSET <= opset <= io.MAX_OPSET:
        raise QtoolError(f"opset {opset} is not supported", f"choose {io.MIN_OPSET}..{io.MAX_OPSET}")
    out = Path(out).expanduser().absolute()
    check_target(out, force)
    info = float_checkpoint(model, exporter="ONNX export", architectures=ARCHITECTURES)
    path = info.path
    say(f"loading the vision tower of {path.name}")
    config = AutoConfig.from_pretrained(path)
    visual = load_vision_tower(path, config, info.weight_files)
    with torch.no_grad(), staged_dir(out, force) as tmp:
        say(f"exporting {io.PRECISIONS['fp32']} (opset {opset})")
        trace(visual, config.model_type, tmp / io.PRECISIONS["fp32"], opset)
        (tmp / io.CONFIG_FILE).write_text(json.dumps(runtime_config(config, visual, path), indent=2) + "\n")
        for precision in precisions:
            if precision != "fp32":
                say(f"writing {precision}")
                onnx_quant.VARIANTS[precision](tmp / io.PRECISIONS["fp32"], tmp / io.PRECISIONS[precision])
        say("validating ONNX Runtime against torch")
        report = onnx_validate.validate(visual, tmp, precisions)
        report = {"model": str(path), "model_type": info.adapter.model_type, **report}
        (tmp / io.VALIDATION_FILE).write_text(json.dumps(report, indent=2) + "\n")
        onnx_validate.check(report)
        files = {p: io.PRECISIONS[p] for p in precisions}
        sizes = {p: io.graph_bytes(tmp / f) for p, f in files.items()}
        wall_s = round(time.perf_counter() - start, 2)
        _write_manifest(tmp, info, opset, files, wall_s)
    return ExportResult(out=out, model=str(path), model_type=info.adapter.model_type, opset=opset, files=files,
                        sizes=sizes, validation=report, wall_s=wall_s)


def _write_manifest(folder: Path, info, opset: int, files: dict[str, str], wall_s: float) -> None:
    written = sorted(f.name for f in folder.iterdir() if f.is_file())
    manifest = {
        "format": "qtool-onnx-vision", "version": 1, "model": str(info.path), "model_type": info.adapter.model_type,
        "source_sha256": info.sha256, "opset": opset, "files": files,
        "sha256": {f: fingerprint.sha256_file(folder / f) for f in written},
        "sizes": {f: (folder / f).stat().st_size for f in written},
        "versions": fingerprint.versions(), "wall_s": wall_s,
    }
    (folder / io.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def check_precisions(precisions: Sequence[str]) -> tuple[str, ...]:
    unknown = [p for p in precisions if p not in io.PRECISIONS]
    if unknown:
        raise QtoolError(f"unknown precision {unknown[0]!r}", f"choose from {', '.join(io.PRECISIONS)}")
    return tuple(p for p in io.PRECISIONS if p in set(precisions) | {"fp32"})


def trace(visual: nn.Module, model_type: str, file: Path, opset: int) -> None:
    """``torch.onnx.export(dynamo=True)`` of the tower's graph with the patch count dynamic."""
    graph = graph_for(visual, model_type).eval()
    grid = torch.tensor([[1, h, w] for h, w in io.EXPORT_GRIDS])
    n = int(grid.prod(-1).sum())
    pixel_values = torch.randn(n, visual.patch_embed.proj.weight[0].numel(), generator=torch.Generator().manual_seed(0))
    aux = reference_inputs(visual, grid, model_type)
    names = io.INPUTS[model_type]
    args = (pixel_values, *(aux[name] for name in names[1:]))
    unit = visual.spatial_merge_size ** 2
    tokens = torch.export.Dim(io.TOKENS, min=1, max=2**20)
    dynamic = tuple({0: unit * tokens} for _ in names)
    large = sum(p.numel() * 4 for p in graph.parameters()) > io.EXTERNAL_DATA_BYTES
    with warnings.catch_warnings():   # torch.export's deprecation chatter, not the user's concern
        warnings.simplefilter("ignore")
        program = torch.onnx.export(graph, args, input_names=list(names), output_names=list(io.OUTPUTS[model_type]),
                                    opset_version=opset, dynamo=True, dynamic_shapes=dynamic,
                                    external_data=large, verbose=False)
    program.save(str(file), external_data=large)
    _name_axes(file)


def _name_axes(file: Path) -> None:
    """Give the dynamic axes the table's names (the exporter writes expressions like ``4*tokens``)."""
    import onnx

    model = onnx.load(str(file), load_external_data=False)
    for value in (*model.graph.input, *model.graph.output):
        for axis, name in io.DYNAMIC_AXES[value.name].items():
            value.type.tensor_type.shape.dim[axis].dim_param = name
    onnx.save(model, str(file))


def runtime_config(config, visual: nn.Module, path: Path) -> dict:
    """vision.json: everything qtool.runtime.vision needs besides the graph."""
    vc = config.vision_config
    image = image_processor_settings(path)
    windowed = config.model_type == "qwen2_5_vl"
    return {
        "format": "qtool-onnx-vision", "version": 1, "model_type": config.model_type,
        "inputs": list(io.INPUTS[config.model_type]), "outputs": list(io.OUTPUTS[config.model_type]),
        "files": dict(io.PRECISIONS),
        "patch_size": vc.patch_size, "merge_size": vc.spatial_merge_size,
        "temporal_patch_size": vc.temporal_patch_size, "in_channels": vc.in_channels,
        "image_mean": [float(v) for v in image["image_mean"]], "image_std": [float(v) for v in image["image_std"]],
        "rescale_factor": float(image["rescale_factor"]),
        "min_pixels": int(image["size"]["shortest_edge"]), "max_pixels": int(image["size"]["longest_edge"]),
        "resample": int(image["resample"]),     # PIL filter code (3: bicubic)
        "head_dim": visual.blocks[0].attn.head_dim, "rope_theta": vc.rope_parameters["rope_theta"],
        "hidden_size": getattr(vc, "out_hidden_size", None) or vc.hidden_size,
        "window_size": vc.window_size if windowed else None,
        "fullatt_block_indexes": list(vc.fullatt_block_indexes) if windowed else None,
        "position_grid_side": visual.num_grid_per_side if hasattr(visual, "pos_embed") else None,
    }

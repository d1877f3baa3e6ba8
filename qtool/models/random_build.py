"""Random-weight checkpoints with the exact shapes of the real models (speed and memory only).

The weights are streamed: names and shapes come from a meta-device model, and each shard is
generated, written and freed before the next, so peak memory stays about one shard. The folder is
written next to ``out_dir`` and renamed into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers.models.auto.video_processing_auto import VIDEO_PROCESSOR_MAPPING_NAMES

from qtool.errors import QtoolError
from qtool.models import ADAPTERS
from qtool.models.shapes import IMAGE, Shape, checkpoint_tensors, config_for, get_shape
from qtool.outputs import check_writable
from qtool.paths import ASSETS

DEFAULT_SHARD_BYTES = 2 * 2**30
MARKER = "qtool_random.json"    # present only in random-weight checkpoints
INDEX = "model.safetensors.index.json"
INIT_STD = 0.02                 # Qwen's initializer_range

# bytes_done, bytes_total, shard (1-based), shards
Progress = Callable[[int, int, int, int], None]


@dataclass(frozen=True)
class BuildResult:
    name: str
    path: Path
    shards: int
    bytes: int
    params: int
    seconds: float

    def to_dict(self) -> dict:
        return {**asdict(self), "path": str(self.path)}


def build_random(name: str, out_dir: str | Path, *, seed: int = 0, dtype: torch.dtype = torch.bfloat16,
                 shard_bytes: int = DEFAULT_SHARD_BYTES, force: bool = False,
                 progress: Progress | None = None) -> BuildResult:
    """Write a random-weight checkpoint of shape ``name`` to ``out_dir``, loadable by stock transformers."""
    start = time.perf_counter()
    shape, out_dir = get_shape(name), Path(out_dir).expanduser().absolute()
    _check_target(out_dir, force)
    processor = _processor(shape)
    config = _config(shape, processor.tokenizer, dtype)
    tensors = checkpoint_tensors(config)
    shards = _plan(tensors, dtype.itemsize, shard_bytes)
    total = sum(_nbytes(s, dtype.itemsize) for s in tensors.values())
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if shutil.disk_usage(out_dir.parent).free < total + 2**26:
        raise QtoolError(f"not enough free disk under {out_dir.parent} for {total / 2**30:.1f} GiB",
                         "free some space or choose another --out")
    tmp = out_dir.parent / f".{out_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)  # left by an earlier run killed with the same pid
    tmp.mkdir()
    try:
        _write_weights(tmp, shards, tensors, dtype, seed, total, progress)
        config.save_pretrained(tmp)
        _generation_config(config).save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / MARKER).write_text(json.dumps({
            "random_weights": True, "use": "speed and memory only", "shape": shape.name,
            "mirrors": shape.repo_id, "seed": seed, "init_std": INIT_STD,
        }, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    params = sum(_numel(s) for s in tensors.values())
    return BuildResult(shape.name, out_dir, len(shards), total, params,
                       round(time.perf_counter() - start, 2))


def random_tensor(name: str, shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Biases zero, 1-D weights (norms) one, others N(0, 0.02) from a generator seeded by ``name``."""
    if name.endswith(".bias"):
        return torch.zeros(shape, dtype=dtype)
    if len(shape) == 1:
        return torch.ones(shape, dtype=dtype)
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    gen = torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return torch.empty(shape, dtype=dtype).normal_(0.0, INIT_STD, generator=gen)


def _check_target(out_dir: Path, force: bool) -> None:
    if not out_dir.exists():
        check_writable(out_dir)
        return
    if not out_dir.is_dir():
        raise QtoolError(f"{out_dir} is a file", "choose a folder path for --out")
    if not force:
        raise QtoolError(f"{out_dir} already exists", "pass --force to replace it, or choose another --out")
    if any(out_dir.iterdir()) and not (out_dir / "config.json").is_file():
        raise QtoolError(f"refusing to replace {out_dir}: it is not empty and holds no config.json",
                         "choose another --out")


def _write_weights(tmp: Path, shards: list[list[str]], tensors: dict, dtype: torch.dtype, seed: int,
                   total: int, progress: Progress | None) -> None:
    names = (["model.safetensors"] if len(shards) == 1 else
             [f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)])
    done, weight_map = 0, {}
    for i, (fname, members) in enumerate(zip(names, shards), start=1):
        data = {}
        for tname in members:
            data[tname] = random_tensor(tname, tensors[tname], dtype, seed)
            done += data[tname].nbytes
            weight_map[tname] = fname
            if progress:
                progress(done, total, i, len(shards))
        save_file(data, tmp / fname, metadata={"format": "pt"})
        del data
    if len(shards) > 1:
        params = sum(_numel(s) for s in tensors.values())
        index = {"metadata": {"total_size": total, "total_parameters": params}, "weight_map": weight_map}
        (tmp / INDEX).write_text(json.dumps(index, indent=2) + "\n")


def _plan(tensors: dict[str, tuple[int, ...]], itemsize: int, shard_bytes: int) -> list[list[str]]:
    shards, size = [[]], 0
    for name, shape in tensors.items():
        n = _nbytes(shape, itemsize)
        if shards[-1] and size + n > shard_bytes:
            shards.append([])
            size = 0
        shards[-1].append(name)
        size += n
    return shards


def _config(shape: Shape, tokenizer, dtype: torch.dtype):
    ids = tokenizer.convert_tokens_to_ids
    config = config_for(
        shape.name, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
        pad_token_id=ids("<|endoftext|>"), image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"), vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
    )
    config.dtype = dtype
    return config


def _generation_config(config):
    text = config.text_config
    return transformers.GenerationConfig(bos_token_id=text.bos_token_id, pad_token_id=text.pad_token_id,
                                        eos_token_id=[text.eos_token_id, text.bos_token_id])


def _processor(shape: Shape):
    """The tiny model's tokenizer and chat template with Qwen's published image-size limits."""
    base = _base_processor()
    tokenizer = base.tokenizer
    tokenizer.model_max_length = shape.text["max_position_embeddings"]
    image = IMAGE[shape.model_type]
    image_processor = type(base.image_processor)(
        size={"shortest_edge": image["min_pixels"], "longest_edge": image["max_pixels"]},
        patch_size=image["patch_size"], image_mean=image["image_mean"], image_std=image["image_std"])
    cls = getattr(transformers, ADAPTERS[shape.model_type].processor_class)
    return cls(image_processor=image_processor, video_processor=_video_processor(shape.model_type, image),
               tokenizer=tokenizer, chat_template=base.chat_template)


def _video_processor(model_type: str, image: dict):
    """The architecture's own video processor class (Qwen3-VL's adds frame timestamps), same patching."""
    cls = getattr(transformers, VIDEO_PROCESSOR_MAPPING_NAMES[model_type]["torchvision"])
    return cls(patch_size=image["patch_size"], image_mean=image["image_mean"], image_std=image["image_std"])


@lru_cache(maxsize=1)
def _base_processor():
    """The bundled tiny model's processor: its tokenizer has Qwen2-VL's special tokens and chat template."""
    return transformers.AutoProcessor.from_pretrained(ASSETS / "qwen2-vl-tiny")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _nbytes(shape: tuple[int, ...], itemsize: int) -> int:
    return _numel(shape) * itemsize

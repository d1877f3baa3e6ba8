"""Find a model folder and check it before anything loads it (headers only, never the weights)."""

from __future__ import annotations

import functools
import json
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from qtool.errors import QtoolError
from qtool.fingerprint import sha256_files
from qtool.models import ADAPTERS, ArchAdapter
from qtool.models.shapes import SHAPES, checkpoint_tensors, config_for, model_tensors, param_count
from qtool.paths import ASSETS

BUNDLED = ("qwen2-vl-tiny",)
INDEX = "model.safetensors.index.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth")
RANDOM_MARKER = "qtool_random.json"
# safetensors dtype -> torch dtype name
DTYPES = {
    "BF16": "bfloat16", "F16": "float16", "F32": "float32", "F64": "float64",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2", "I8": "int8", "U8": "uint8",
    "I16": "int16", "I32": "int32", "I64": "int64", "BOOL": "bool",
}
REEXPORT = "re-download or re-export the checkpoint"


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    adapter: ArchAdapter
    config: dict                    # config.json as transformers reads it (always has text_config)
    weight_files: tuple[Path, ...]
    total_bytes: int
    dtype: str                      # dominant stored dtype (config's for pickle weights)
    format: str                     # "safetensors" or "pickle"
    tensors: int | None             # None for pickle weights (not read)
    params: int | None
    random_weights: bool            # built by `qtool models build-random`
    quantized: bool                 # config.json has a quantization_config

    @functools.cached_property
    def sha256(self) -> str:
        """One hash over the weight files: read once per run, however many artifacts are made from them."""
        return sha256_files(self.weight_files)

    def to_dict(self) -> dict:
        return {
            "path": str(self.path), "model_type": self.adapter.model_type,
            "hf_class": self.adapter.hf_class, "weight_files": [f.name for f in self.weight_files],
            "total_bytes": self.total_bytes, "dtype": self.dtype, "format": self.format,
            "tensors": self.tensors, "params": self.params,
            "random_weights": self.random_weights, "quantized": self.quantized,
        }


def resolve_model(name_or_path: str | Path) -> Path:
    """A bundled model name (``qwen2-vl-tiny``) or a folder path -> the model folder."""
    text = str(name_or_path)
    if text in BUNDLED:
        path = ASSETS / text
        if not (path / "config.json").is_file():
            raise QtoolError(
                f"bundled model {text} is not built yet ({path} has no config.json)",
                "it is written by the tiny-model training recipe (make tiny-model); run it, or pass a "
                "checkpoint folder")
        return path
    path = Path(text).expanduser()
    if not path.exists():
        if text in SHAPES:
            fix = (f"{text} is a model shape, not a folder: "
                   f"build one with `qtool models build-random {text} --out DIR`")
        else:
            fix = f"pass a checkpoint folder or a bundled model ({', '.join(BUNDLED)})"
        raise QtoolError(f"model folder {path} does not exist", fix)
    return path


def checkpoint_of(model: str | Path | CheckpointInfo, *, allow_pickle: bool = False) -> CheckpointInfo:
    """A bundled name or folder, inspected; an already inspected checkpoint as it is."""
    if isinstance(model, CheckpointInfo):
        return model
    return inspect_checkpoint(resolve_model(model), allow_pickle=allow_pickle)


def float_checkpoint(model: str | Path | CheckpointInfo, *, exporter: str = "",
                     architectures: tuple[str, ...] | None = None) -> CheckpointInfo:
    """A bundled name or folder that must hold a float (not yet quantized) checkpoint, checked; ``architectures``:
    the model types ``exporter`` handles (None: all)."""
    info = checkpoint_of(model)
    if info.quantized:
        raise QtoolError(f"{info.path} is a quantized checkpoint", "export the float model it was made from")
    if architectures is not None and info.adapter.model_type not in architectures:
        raise QtoolError(f"{exporter} does not handle {info.adapter.model_type} models yet (it does "
                         f"{', '.join(architectures)})", "quantize it with a gptq, awq or rtn profile instead")
    return info


def inspect_checkpoint(path: str | Path, *, allow_pickle: bool = False) -> CheckpointInfo:
    """Check a checkpoint folder for every problem that would fail or mislead a load."""
    path = Path(path).expanduser()
    if not path.exists():
        raise QtoolError(f"model folder {path} does not exist", "pass a folder with config.json and *.safetensors")
    if not path.is_dir():
        raise QtoolError(f"{path} is a file, not a model folder", "pass the folder that holds config.json")
    raw = _read_config(path)
    adapter = ADAPTERS.get(raw.get("model_type"))
    if adapter is None:
        raise QtoolError(f"model_type {raw.get('model_type')!r} in {path / 'config.json'} is not supported",
                         f"supported: {', '.join(ADAPTERS)}")
    hf_config = _hf_config(path, adapter)
    config = hf_config.to_dict()  # normalized: flat hub configs gain text_config / vision_config
    quantized = "quantization_config" in raw
    files = _weight_files(path, allow_pickle)
    common = dict(path=path, adapter=adapter, config=config, weight_files=files,
                  random_weights=(path / RANDOM_MARKER).is_file(), quantized=quantized)
    if files[0].suffix != ".safetensors":
        return CheckpointInfo(**common, total_bytes=sum(f.stat().st_size for f in files),
                              dtype=str(raw.get("dtype") or raw.get("torch_dtype")),
                              format="pickle", tensors=None, params=None)
    headers = {f: _read_header(f) for f in files}
    _check_index(path, headers)
    found = {name: tuple(h["shape"]) for f, hs in headers.items() for name, h in hs.items()}
    if not quantized:
        _check_shapes(hf_config, adapter, found, {n: f for f, hs in headers.items() for n in hs})
    by_dtype = Counter()
    for hs in headers.values():
        for h in hs.values():
            by_dtype[h["dtype"]] += h["data_offsets"][1] - h["data_offsets"][0]
    top = by_dtype.most_common(1)[0][0] if by_dtype else "none"
    params = sum(_numel(s) for s in found.values())
    return CheckpointInfo(**common, total_bytes=sum(f.stat().st_size for f in files),
                          dtype=DTYPES.get(top, top), format="safetensors",
                          tensors=len(found), params=params)


def list_models() -> dict:
    """What `qtool models` shows: architectures, bundled models, real shapes with parameter counts."""

    shapes = []
    for shape in (s for s in SHAPES.values() if s.listed):
        counts = param_count(config_for(shape.name))
        shapes.append({
            "name": shape.name, "mirrors": shape.repo_id, "model_type": shape.model_type,
            "layers": shape.text["num_hidden_layers"], "hidden_size": shape.text["hidden_size"],
            "tie_word_embeddings": shape.tie_word_embeddings,
            **{f"params_{k}": v for k, v in counts.items()},
        })
    return {
        "architectures": [{"model_type": a.model_type, "hf_class": a.hf_class,
                           "processor_class": a.processor_class} for a in ADAPTERS.values()],
        "bundled": [_bundled(name) for name in BUNDLED],
        "shapes": shapes,
    }


def _bundled(name: str) -> dict:
    path = ASSETS / name
    entry = {"name": name, "path": str(path), "present": path.is_dir(), "status": "missing",
             "params": None}
    if entry["present"]:
        try:
            info = inspect_checkpoint(path)
        except QtoolError as exc:
            entry["status"] = f"invalid: {exc.problem}"
        else:
            entry.update(status="ok", params=info.params, model_type=info.adapter.model_type)
    return entry


def _read_config(path: Path) -> dict:
    cfg = path / "config.json"
    if not cfg.is_file():
        raise QtoolError(f"no config.json in {path}", "point at the folder that holds the model's config.json")
    try:
        config = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise QtoolError(f"{cfg} is not valid JSON ({str(exc).splitlines()[0]})", REEXPORT) from None
    if not isinstance(config, dict):
        raise QtoolError(f"{cfg} is not a JSON object", REEXPORT)
    return config


def _weight_files(path: Path, allow_pickle: bool) -> tuple[Path, ...]:
    index = path / INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
            raise QtoolError(f"{index} is not a valid index (no weight_map)", REEXPORT) from None
        missing = sorted({f for f in weight_map.values() if not (path / f).is_file()})
        if missing:
            raise QtoolError(f"{INDEX} names {len(missing)} missing shard(s), first {missing[0]}",
                             "finish the download or re-export the checkpoint")
        return tuple(sorted(path / f for f in set(weight_map.values())))
    files = tuple(sorted(path.glob("*.safetensors")))
    if files:
        return files
    pickles = tuple(sorted(p for s in PICKLE_SUFFIXES for p in path.glob(f"*{s}")))
    if not pickles:
        raise QtoolError(f"no weights in {path} (no *.safetensors)", "download or export the model weights")
    if not allow_pickle:
        raise QtoolError(f"{path} has only pickle weights ({', '.join(p.name for p in pickles[:3])})",
                         "pickle files can run code when loaded: convert them to safetensors, "
                         "or pass --allow-pickle if you trust their source")
    return pickles


def _read_header(file: Path) -> dict:
    """The tensor entries of a safetensors header, after checking the file covers every offset."""
    from safetensors import SafetensorError, safe_open

    size = file.stat().st_size
    bad = f"{file.name} is truncated or corrupt"
    with file.open("rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise QtoolError(f"{bad} ({size} bytes, no header)", REEXPORT)
        n = struct.unpack("<Q", head)[0]
        if 8 + n > size:
            raise QtoolError(f"{bad} (header of {n} bytes, file of {size})", REEXPORT)
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise QtoolError(f"{bad} (header is not JSON)", REEXPORT) from None
    header.pop("__metadata__", None)
    end = max((h["data_offsets"][1] for h in header.values()), default=0)
    if 8 + n + end != size:
        raise QtoolError(f"{bad} (header expects {8 + n + end} bytes, file has {size})", REEXPORT)
    try:
        with safe_open(file, "pt"):
            pass
    except SafetensorError as exc:
        raise QtoolError(f"{bad} ({str(exc).splitlines()[0]})", REEXPORT) from None
    return header


def _check_index(path: Path, headers: dict[Path, dict]) -> None:
    index = path / INDEX
    if not index.is_file():
        return
    for name, fname in json.loads(index.read_text())["weight_map"].items():
        if name not in headers[path / fname]:
            raise QtoolError(f"{INDEX} places {name} in {fname}, which does not hold it", REEXPORT)


def _hf_config(path: Path, adapter: ArchAdapter):
    from transformers import AutoConfig

    try:
        return AutoConfig.from_pretrained(path)
    except (ValueError, TypeError, KeyError, OSError) as exc:  # what transformers raises for a bad config
        raise QtoolError(f"config.json does not describe a valid {adapter.model_type} model "
                         f"({str(exc).splitlines()[0]})", "fix config.json or re-export the checkpoint") from None


def _check_shapes(config, adapter: ArchAdapter, found: dict, where: dict) -> None:
    """Compare header shapes with a meta-device model built from config.json."""
    hub, own = checkpoint_tensors(config), model_tensors(config)
    for name in sorted(found):
        want = hub.get(name, own.get(name))
        if want is None:
            raise QtoolError(f"tensor {name} in {where[name].name} is not part of a {adapter.model_type} "
                             "model with this config.json", "the weights and config.json come from different models")
        if tuple(found[name]) != want:
            raise QtoolError(f"tensor {name} in {where[name].name} has shape {list(found[name])} but config.json "
                             f"implies {list(want)}", "the weights and config.json come from different models")
    expected = hub if len(found.keys() & hub.keys()) >= len(found.keys() & own.keys()) else own
    tied = {"lm_head.weight"} if config.tie_word_embeddings else set()
    missing = sorted(expected.keys() - found.keys() - tied)
    if missing:
        raise QtoolError(f"checkpoint lacks {len(missing)} tensor(s) config.json needs, first {missing[0]}",
                         "finish the download or re-export the checkpoint")


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n

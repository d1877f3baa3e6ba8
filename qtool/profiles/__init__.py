"""Named precision presets: the TOML files beside this module, shared by quantize, bench and release.

Each file names its ``method``; the method picks a small frozen dataclass whose
fields are the only keys allowed. Unknown keys, wrong types and impossible
values are rejected with one-line errors.
"""

from __future__ import annotations

from collections.abc import Iterable

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from qtool import paths
from qtool.errors import QtoolError
from qtool.runtime.gguf_tables import MMPROJ_TYPES, QUANTS
from qtool.runtime.onnx_io import PRECISIONS

GROUP_SIZES = (-1, 32, 64, 128, 256)
MODALITIES = ("image-text", "text", "mixed")   # what calibration conversations hold: see calibration.samples


@dataclass(frozen=True)
class FloatProfile:
    """No quantization: the model in one float dtype (the reference precision)."""
    VERSION: ClassVar[int] = 1
    name: str
    dtype: str = "bfloat16"
    description: str = ""

    def check(self) -> None:
        _choice(self, "dtype", ("bfloat16", "float16", "float32"))


@dataclass(frozen=True)
class GPTQProfile:
    """GPTQ weight-only quantization, GPTQ checkpoint format (Qwen's Int4/Int8 releases)."""
    VERSION: ClassVar[int] = 1
    name: str
    bits: int = 4
    group_size: int = 128
    damp: float = 0.1
    desc_act: bool = False
    sym: bool = True
    true_sequential: bool = True
    samples: int = 128
    modality: str = "image-text"
    description: str = ""

    def check(self) -> None:
        _choice(self, "bits", (4, 8))
        _choice(self, "group_size", GROUP_SIZES)
        _choice(self, "modality", MODALITIES)
        if not 0 < self.damp < 1:
            raise QtoolError(f"profile {self.name}: damp must be between 0 and 1, got {self.damp}",
                             "use a value such as 0.01 or 0.1")
        _positive(self, "samples")


@dataclass(frozen=True)
class AWQProfile:
    """AWQ (activation-aware scaling), GEMM checkpoint format (Qwen's AWQ releases)."""
    VERSION: ClassVar[int] = 1
    name: str
    bits: int = 4
    group_size: int = 128
    zero_point: bool = True
    samples: int = 128
    modality: str = "image-text"
    pack_conversations: bool = False   # fit to every conversation, not the last one (qtool.calibration.packing)
    description: str = ""

    def check(self) -> None:
        _choice(self, "bits", (4,))
        _choice(self, "group_size", GROUP_SIZES[1:])
        _choice(self, "modality", MODALITIES)
        _positive(self, "samples")


@dataclass(frozen=True)
class RTNProfile:
    """Round-to-nearest, no calibration, GPTQ packing: the baseline GPTQ and AWQ must beat."""
    VERSION: ClassVar[int] = 1
    name: str
    bits: int = 4
    group_size: int = 128
    sym: bool = True
    description: str = ""

    def check(self) -> None:
        _choice(self, "bits", (4, 8))
        _choice(self, "group_size", GROUP_SIZES)


@dataclass(frozen=True)
class GGUFProfile:
    """The model exported to GGUF and run by llama.cpp (``qtool export gguf``): K-quants for edge machines."""
    VERSION: ClassVar[int] = 1
    name: str
    quant: str = "q4_k_m"
    mmproj: str = "f16"
    description: str = ""

    def check(self) -> None:
        _choice(self, "quant", tuple(QUANTS))
        _choice(self, "mmproj", tuple(MMPROJ_TYPES))


@dataclass(frozen=True)
class ONNXVisionProfile:
    """The vision tower exported to ONNX (``qtool export onnx``) and run by ONNX Runtime; the language
    model stays in torch at ``dtype``."""
    VERSION: ClassVar[int] = 1
    name: str
    precision: str = "fp32"
    dtype: str = "bfloat16"
    description: str = ""

    def check(self) -> None:
        _choice(self, "precision", tuple(PRECISIONS))
        _choice(self, "dtype", ("bfloat16", "float16", "float32"))


Profile = FloatProfile | GPTQProfile | AWQProfile | RTNProfile | GGUFProfile | ONNXVisionProfile
METHODS: dict[str, type] = {"float": FloatProfile, "gptq": GPTQProfile, "awq": AWQProfile, "rtn": RTNProfile,
                            "gguf": GGUFProfile, "onnx-vision": ONNXVisionProfile}


def _choice(p, field: str, allowed: tuple) -> None:
    value = getattr(p, field)
    if value not in allowed:
        raise QtoolError(f"profile {p.name}: {field} = {value!r} is not supported",
                         f"use one of {', '.join(map(str, allowed))}")


def _positive(p, field: str) -> None:
    if getattr(p, field) < 1:
        raise QtoolError(f"profile {p.name}: {field} must be at least 1", f"set {field} to a positive integer")


def available(folder: Path | None = None, methods: Iterable[str] | None = None) -> list[str]:
    """Profile names in ``folder``, only those of ``methods`` when given (what a command can use)."""
    names = sorted(f.stem for f in (folder or paths.PROFILES).glob("*.toml"))
    if methods is None:
        return names
    return [n for n in names if _method_in_file((folder or paths.PROFILES) / f"{n}.toml") in set(methods)]


def _method_in_file(path: Path) -> str | None:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8")).get("method")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None


def load_profile(name_or_path: str | Path, overrides: dict | None = None, folder: Path | None = None,
                 methods: Iterable[str] | None = None) -> Profile:
    """Load a profile by name (profiles/NAME.toml) or path, applying ``overrides`` field by field. ``methods``:
    the ones the caller can use; an unknown name's suggestions list only profiles of those."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = (folder or paths.PROFILES) / f"{name_or_path}.toml"
    if not path.is_file():
        choices = ", ".join(available(folder, methods)) or "(none found)"
        raise QtoolError(f"unknown profile {str(name_or_path)!r}", f"use one of {choices} or a path to a .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise QtoolError(f"profile {path.name} is not valid TOML ({exc})", "fix the file's syntax") from None
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return profile_from_dict(data, default_name=path.stem, source=path.name)


def profile_from_dict(data: dict, default_name: str = "custom", source: str = "profile") -> Profile:
    data = dict(data)
    method = data.pop("method", None)
    if method not in METHODS:
        raise QtoolError(f"{source}: method = {method!r} is not known", f"set method to one of {', '.join(METHODS)}")
    cls = METHODS[method]
    data.setdefault("name", default_name)
    allowed = {f.name: f for f in fields(cls)}
    for key, value in data.items():
        if key not in allowed:
            raise QtoolError(f"{source}: unknown key {key!r} for method {method}",
                             f"allowed keys: {', '.join(allowed)}")
        _check_type(source, key, value, allowed[key])
    profile = cls(**data)
    profile.check()
    return profile


def _check_type(source: str, key: str, value, field: dataclasses.Field) -> None:
    expected = {"int": int, "float": (int, float), "bool": bool, "str": str}[str(field.type)]
    wrong = not isinstance(value, expected) or (expected is int and isinstance(value, bool))
    if expected == (int, float) and isinstance(value, bool):
        wrong = True
    if wrong:
        raise QtoolError(f"{source}: {key} = {value!r} has the wrong type", f"{key} must be a {field.type}")


def method_of(profile: Profile) -> str:
    return next(m for m, cls in METHODS.items() if isinstance(profile, cls))


def to_record(profile: Profile) -> dict:
    """The profile as stored in manifests: ``{"_type", "_version", "_data"}``."""
    return {"_type": type(profile).__name__, "_version": profile.VERSION, "_data": dataclasses.asdict(profile)}


def from_record(record: dict) -> Profile:
    cls = {c.__name__: c for c in METHODS.values()}.get(record.get("_type"))
    if cls is None:
        raise QtoolError(f"manifest names unknown profile type {record.get('_type')!r}",
                         "re-create the artifact with this qtool version")
    if record.get("_version") != cls.VERSION:
        raise QtoolError(f"manifest profile version {record.get('_version')} differs from {cls.VERSION}",
                         "re-create the artifact with this qtool version")
    return cls(**record["_data"])

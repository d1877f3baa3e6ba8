"""What an artifact kind declares (the registry in ``qtool.artifacts`` holds one per kind)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from qtool import profiles
from qtool.models.checkpoint import CheckpointInfo

MANIFEST = "qtool.json"   # every artifact's record of what it was made from


@dataclass(frozen=True)
class BuildOptions:
    calib: Path
    device: str = "cpu"
    progress: Callable | None = None


class Consumer:
    """A loaded artifact that answers image questions greedily (``qtool.infer.TorchModel`` and the like)."""

    kernel: str    # what runs the decoder's linears, as tables show it

    def answer(self, images: Sequence[Image.Image], questions: Sequence[str]) -> list[str]:
        raise NotImplementedError


@dataclass(frozen=True)
class Card:
    """What a release variant's model card says that depends on its kind."""
    library: str                                       # the card's library_name
    intro: Callable[[dict, str], str]                  # (profile data with "_type", base model) -> first paragraph
    usage: Callable[[str, dict], str]                  # (variant name, manifest) -> markdown "how to load it"


@dataclass(frozen=True)
class ArtifactKind:
    name: str
    profile_types: tuple[type, ...]
    consumer: str                                      # who loads it: transformers, llama.cpp, onnxruntime
    # (source, profile, out folder, options) -> None; None: the source checkpoint itself is the artifact
    build: Callable[[CheckpointInfo, profiles.Profile, Path, BuildOptions], None] | None
    # (artifact, profile, source folder, dtype or None for the profile's) -> a Consumer
    load: Callable[[Path, profiles.Profile, Path, str | None], Consumer]
    bench_worker: str                                  # module run once per profile: python -m WORKER SPEC RESULT
    bench_spec: Callable[[Path, profiles.Profile, Path], dict]   # (artifact, profile, source) -> what it loads
    teacher_forced: bool                               # eval reads its logits (KL, top-1); else answers only
    calibrated: Callable[[profiles.Profile], bool] = lambda _p: False
    bench_devices: tuple[str, ...] = ("cpu", "cuda")
    # (profile, device) -> None if vLLM serves it there, else (problem, fix) for a one-line error
    vllm: Callable[[profiles.Profile, str], tuple[str, str] | None] = lambda _p, _d: None
    smoke: str | None = None                           # verify's consumer-only script; None: never released
    card: Card | None = None

    @property
    def releasable(self) -> bool:
        return self.smoke is not None

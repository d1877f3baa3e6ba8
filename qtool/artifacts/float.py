"""float: the source checkpoint itself in a float dtype, loaded by transformers; the reference precision."""

from __future__ import annotations

from pathlib import Path

from qtool import infer, profiles
from qtool.artifacts.kind import ArtifactKind


def load(path: Path, profile, _source: Path, dtype: str | None) -> infer.TorchModel:
    return infer.TorchModel(*infer.load_model(path, dtype or profile.dtype))


KIND = ArtifactKind(
    name="float", profile_types=(profiles.FloatProfile,), consumer="transformers", build=None, load=load,
    bench_worker="qtool.bench.worker", bench_spec=lambda path, _profile, _source: {"path": str(path)},
    teacher_forced=True,
)

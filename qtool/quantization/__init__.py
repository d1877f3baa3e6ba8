"""``quantize``: one verb from (model, profile, calibration set) to a loadable artifact."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qtool import paths, profiles
from qtool.calibration.packing import VisionTokens, pack
from qtool.calibration.records import load_records
from qtool.calibration.samples import conversations as to_conversations
from qtool.calibration.samples import pick
from qtool.capture import engine_scratch
from qtool.errors import Interrupted, QtoolError
from qtool.fingerprint import versions
from qtool.models.checkpoint import CheckpointInfo, checkpoint_of
from qtool.outputs import check_target, staged_dir
from qtool.quantization import artifact
from qtool.quantization.deepstack import deepstack_in_layers
from qtool.quantization.engine import (engine_config, needs_calibration, packs_calibration, quantizes,
                                      quantizing_methods)

ProgressFn = Callable[[int, int], None]  # (layers done, layers total)


@dataclass(frozen=True)
class QuantizeResult:
    out: str
    profile: str
    layers: int
    samples: int
    wall_s: float
    peak_rss_mb: float
    peak_gpu_mb: float | None
    resumed_layers: int
    source_bytes: int
    artifact_bytes: int
    mean_layer_loss: float | None
    layer_errors: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def default_out(model: str | Path, profile_name: str) -> Path:
    return Path("out") / f"{Path(str(model)).name}-{profile_name}"


def check_device(device: str) -> None:
    if device not in ("cpu", "cuda"):
        raise QtoolError(f"unknown device {device!r}", "use --device cpu or --device cuda")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise QtoolError("--device cuda was asked for but no CUDA GPU is visible", "use --device cpu")


def check_group_size(info, profile) -> None:
    """Every quantized linear's in-features must be a multiple of the group size."""
    group = getattr(profile, "group_size", -1)
    if group in (-1, None):
        return
    text = info.config["text_config"]
    in_features = {"self_attn.q_proj": text["hidden_size"], "mlp.down_proj": text["intermediate_size"]}
    for module, width in in_features.items():
        if width % group:
            raise QtoolError(
                f"group_size {group} does not divide in-features {width} of {module}",
                "use a group size that divides it (32, 64, 128) or -1 for per-channel",
            )


def quantize(model: str | Path | CheckpointInfo, profile: profiles.Profile, *, out: Path | None = None,
             calib: Path | None = None, samples: int | None = None, device: str = "cpu",
             force: bool = False, resume: bool = False, restart: bool = False,
             allow_pickle: bool = False, trust_remote_code: bool = False,
             progress: ProgressFn | None = None) -> QuantizeResult:
    if not quantizes(profile):
        raise QtoolError(f"profile {profile.name} is a {profiles.method_of(profile)} profile and quantizes nothing",
                         f"use one of {', '.join(profiles.available(methods=quantizing_methods()))}")
    if samples is not None and samples < 1:
        raise QtoolError(f"--samples {samples} must be at least 1", "pass a positive number of calibration records")
    info = checkpoint_of(model, allow_pickle=allow_pickle)
    source = info.path.absolute()
    check_group_size(info, profile)
    check_device(device)
    out = Path(out) if out else default_out(info.path, profile.name)
    check_target(out, force)
    if resume and not resumable(profile):
        raise QtoolError(f"{profile.name} runs cannot be resumed: "
                         "GPTQModel 7.7 checkpoints and restores GPTQ layers only",
                         "drop --resume (the run starts over) or use a gptq-* profile")
    conversations, calib_hash, used = [], None, 0
    if needs_calibration(profile):

        calib_set = load_records(calib or paths.CALIB_DATA)
        picked = pick(calib_set, profile.samples if samples is None else samples)
        conversations = to_conversations(picked, info.adapter, profile.modality)
        calib_hash, used = calib_set.sha256, len(picked)
    run_key = _run_key(info, profile, calib_hash, used)
    ckpt = paths.cache().absolute() / "quantize-checkpoints" / run_key
    scratch = paths.cache().absolute() / "engine-runs" / run_key  # engine log; kept if the run fails
    done_before = checkpointed_layers(ckpt)
    if done_before and not (resume or restart):
        raise QtoolError(f"an interrupted run of this exact job has {done_before} layer(s) checkpointed in {ckpt}",
                         "pass --resume to continue it, or --restart to discard it")
    if restart:
        shutil.rmtree(ckpt, ignore_errors=True)
        done_before = 0
    t0 = time.time()
    with staged_dir(out, force) as tmp:
        layers = info.config["text_config"]["num_hidden_layers"]
        with module_tree(info.adapter), deepstack_in_layers(info.adapter) as deepstack:
            peak_gpu, packed = _run_engine(source, profile, device, conversations, tmp, ckpt, scratch, resume,
                                           layers, progress, trust_remote_code, done_before)
        artifact.copy_side_files(source, tmp)
        qc = artifact.fix_quantization_config(tmp, info.adapter)
        errors = artifact.layer_errors(tmp)
        result = QuantizeResult(
            out=str(out), profile=profile.name, layers=layers, samples=used, wall_s=round(time.time() - t0, 2),
            peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            peak_gpu_mb=peak_gpu, resumed_layers=done_before, source_bytes=info.total_bytes,
            artifact_bytes=sum(f.stat().st_size for f in tmp.glob("*.safetensors")),
            mean_layer_loss=_mean([e["loss"] for e in errors if e["loss"] is not None]),
            layer_errors=errors,
        )
        manifest = {
            "qtool_manifest": 1, "kind": "quantized", "profile": profiles.to_record(profile),
            "source": {"path": str(source), "sha256": info.sha256},
            "calibration": {"path": str(calib or paths.CALIB_DATA) if conversations else None,
                            "sha256": calib_hash, "samples": used,
                            **_fitted_to(profile, packed),
                            **({"deepstack_additions": {str(k): n for k, n in sorted(deepstack.items())}}
                               if info.adapter.deepstack else {})},
            "device": device, "versions": versions(), "quantization_config": qc,
            "result": {k: v for k, v in result.to_dict().items() if k != "out"},
        }
        (tmp / "qtool.json").write_text(json.dumps(manifest, indent=2) + "\n")
    shutil.rmtree(ckpt, ignore_errors=True)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def resumable(profile) -> bool:
    """Runs checkpointed per layer: GPTQ only (GPTQModel 7.7 fails to restore AWQ layers; RTN calibrates nothing)."""
    return isinstance(profile, profiles.GPTQProfile)


def checkpoint_manifest(ckpt: Path) -> dict:
    """The newest published generation of a GPTQModel checkpoint store (its cursor, packed-module artifacts)."""
    ref = json.loads((ckpt / "CURRENT").read_text())["generations"][0]
    return json.loads((ckpt / "objects" / ref).read_text())


def checkpointed_layers(ckpt: Path) -> int:
    """Decoder layers already finished in an interrupted run's checkpoint."""
    try:
        return int(checkpoint_manifest(ckpt)["cursor"])  # steps done, one per layer
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return 0


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _run_key(info, profile, calib_hash, samples) -> str:
    key = json.dumps([str(info.path), info.total_bytes, profiles.to_record(profile), calib_hash, samples])
    return hashlib.sha256(key.encode()).hexdigest()[:16]


@contextlib.contextmanager
def layer_checkpoints_for_vl_models():
    """Let GPTQModel's per-layer checkpoints serve Qwen-VL models, for this call only.

    GPTQModel 7.7 gates checkpointing on an allow-list of model types (llama, qwen3_moe), but its
    state adapter is model-agnostic: it stores the packed layers and the next layer's captured inputs.
    tests/test_interrupt.py checks that a killed and resumed Qwen2-VL run writes the same artifact as
    an uninterrupted one. The patch is undone when the call returns.
    """
    from gptqmodel.looper import gptq_checkpoint

    original = gptq_checkpoint.validate_checkpoint_support

    def validate(model, **kwargs):
        config = model.model.config
        had = "model_type" in config.__dict__
        saved = config.__dict__.get("model_type")
        config.model_type = "llama"  # the allow-list is the only model-specific part of the check
        try:
            return original(model, **kwargs)
        finally:
            if had:
                config.model_type = saved
            else:
                del config.model_type

    gptq_checkpoint.validate_checkpoint_support = validate
    try:
        yield
    finally:
        gptq_checkpoint.validate_checkpoint_support = original


@contextlib.contextmanager
def module_tree(adapter):
    """The adapter's module tree in place of GPTQModel's definition, for this call only (None: keep GPTQModel's)."""
    if adapter.engine_module_tree is None:
        yield
        return
    from gptqmodel.models.auto import MODEL_MAP

    cls = MODEL_MAP[adapter.model_type]
    original = cls.module_tree
    cls.module_tree = adapter.engine_module_tree
    try:
        yield
    finally:
        cls.module_tree = original


class _LayerHook:
    """GPTQModel's per-layer callback: drives the progress bar and frees the previous layer checkpoint.

    Each checkpoint clones every materialized float tensor (the vision tower: 1.3 GB for the 2B/7B
    shapes). GPTQModel 7.7's ``ContinuationCodec.dumps`` encodes through a recursive closure whose cell
    refers to itself, so the clones stay in a reference cycle until a full collection, which Python
    rarely runs during quantization: a copy per layer piled up (2B GPTQ-Int4 peaked at 20.2 GiB).
    """

    def __init__(self, total: int, progress: ProgressFn | None, done: int = 0, collect: bool = False):
        self.total, self.progress, self.done, self.collect = total, progress, done, collect
        if progress:
            progress(done, total)

    def layer_complete(self, layer_idx: int, submodule_finalized: bool):
        if not submodule_finalized:
            return
        if self.collect:
            gc.collect()
        if self.progress:
            self.done = max(self.done, layer_idx + 1)
            self.progress(self.done, self.total)


def _run_engine(source: Path, profile, device: str, conversations: list, tmp: Path, ckpt: Path, scratch: Path,
                resume: bool, layers: int, progress: ProgressFn | None, trust_remote_code: bool, done_before: int):
    os.environ.setdefault("GPTQMODEL_CPU_WORKERS", str(max(1, min(4, os.cpu_count() or 1))))
    import torch

    with engine_scratch(scratch):
        from gptqmodel import GPTQModel
        from gptqmodel.looper.checkpoint_store import CheckpointConfig

        model = GPTQModel.load(str(source), engine_config(profile, device), dtype=torch.bfloat16,
                               trust_remote_code=trust_remote_code)
        checkpointed = resumable(profile)
        model.layer_callback = _LayerHook(layers, progress, done_before, collect=checkpointed)
        packed = []
        if conversations and packs_calibration(profile):
            model.prepare_dataset = _packing(model.prepare_dataset, model.model.config, packed)
        kwargs = {}
        if checkpointed:
            ckpt.mkdir(parents=True, exist_ok=True)
            kwargs["checkpoint"] = CheckpointConfig(path=str(ckpt), resume="auto" if resume else "never",
                                                    interval="layer:1")
        from gptqmodel.looper.checkpoint import CheckpointStopped

        try:
            with layer_checkpoints_for_vl_models():
                model.quantize(conversations or None, batch_size=1, **kwargs)
        except CheckpointStopped:
            raise Interrupted(f"stopped after {checkpointed_layers(ckpt)} of {layers} layers, which are checkpointed",
                              "re-run the same command with --resume to continue") from None
        model.save(str(tmp))
        from gptqmodel import DEVICE_THREAD_POOL
        # GPTQModel's worker threads append its per-layer log to a path relative to the working directory
        # (./logs): let them finish before engine_scratch changes the directory back
        DEVICE_THREAD_POOL.wait()
    if progress:
        progress(layers, layers)
    peak_gpu = round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None
    return peak_gpu, (packed[0] if packed else None)


def _fitted_to(profile, packed) -> dict:
    """What AWQ's scales were fitted to: GPTQModel 7.7 keeps only the last batch when lengths differ."""
    if packed:
        return {"awq_fitted_to": "all conversations", "packed": asdict(packed)}
    return {"awq_fitted_to": "last conversation"} if isinstance(profile, profiles.AWQProfile) else {}


def _packing(prepare, config, record: list):
    """The engine's dataset preparation, one conversation at a time, then packed to one sequence length."""
    ids = VisionTokens.of(config)

    def prepare_packed(calibration_dataset, batch_size: int = 1, **kwargs):
        batches, stats = pack(prepare(calibration_dataset, batch_size=1, **kwargs), ids)
        record.append(stats)
        return batches
    return prepare_packed

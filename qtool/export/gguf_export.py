"""``qtool export gguf``: a float checkpoint -> language-model GGUFs (one per quant) + an mmproj.

The float file is written by :mod:`qtool.export.gguf_writer`; every other quant is made from it
by llama.cpp's own quantizer, so the K-quant mixes are exactly llama.cpp's. The base float file
is the source's own precision (bf16 stays bf16: lossless) and is kept only if it was asked for.
Before the folder is published, llama.cpp's tokenizer must reproduce the model's own tokenizer
on chat prompts, or the export fails.
"""

from __future__ import annotations

import ctypes
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from qtool import fingerprint, paths
from qtool.calibration.records import load_records
from qtool.capture import engine_output_to
from qtool.errors import QtoolError
from qtool.export import gguf_writer
from qtool.models.checkpoint import CheckpointInfo, float_checkpoint
from qtool.outputs import check_target, staged_dir
from qtool.runtime import gguf_tables as tables
from qtool.runtime.llamacpp import llama_cpp, quiet_logs

Progress = Callable[[str], None]
LOG = "llama.cpp.log"
ARCHITECTURES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
# source dtype (safetensors) -> the float GGUF type that holds it exactly
LOSSLESS = {"bfloat16": "bf16", "float16": "f16", "float32": "f32"}


@dataclass(frozen=True)
class GGUFExport:
    out: Path
    model: str
    model_type: str
    files: dict[str, str]          # quant -> language-model file name
    mmproj: str                    # mmproj file name
    sizes: dict[str, int]          # file name -> bytes
    tokenizer_check: dict
    wall_s: float

    def to_dict(self) -> dict:
        return {**asdict(self), "out": str(self.out)}


def check_quants(quants: Sequence[str]) -> tuple[str, ...]:
    unknown = [q for q in quants if q not in tables.QUANTS]
    if unknown or not quants:
        raise QtoolError(f"unknown GGUF quant {unknown[0] if unknown else '(none)'!r}",
                         f"choose from {', '.join(tables.QUANTS)}")
    return tuple(q for q in tables.QUANTS if q in set(quants))


def export_gguf(model: str | Path | CheckpointInfo, out: str | Path, *,
                quants: Sequence[str] = tables.DEFAULT_QUANTS,
                mmproj: str = tables.DEFAULT_MMPROJ, force: bool = False, threads: int | None = None,
                progress: Progress | None = None) -> GGUFExport:
    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    quants = check_quants(quants)
    if mmproj not in tables.MMPROJ_TYPES:
        raise QtoolError(f"unknown mmproj type {mmproj!r}", f"choose from {', '.join(tables.MMPROJ_TYPES)}")
    llama_cpp()                                   # fail before any work if the extra is missing
    out = Path(out).expanduser().absolute()
    check_target(out, force)
    info = float_checkpoint(model, exporter="GGUF export", architectures=ARCHITECTURES)
    path = info.path
    name = path.name
    base = LOSSLESS.get(info.dtype, "f32")
    files = {q: tables.TEXT_FILE.format(name=name, quant=q) for q in quants}
    mmproj_file = tables.MMPROJ_FILE.format(name=name, quant=mmproj)
    with staged_dir(out, force) as tmp:
        base_file = tmp / (files[base] if base in files else f".base-{base}.gguf")
        say(f"writing the language model ({base})")
        gguf_writer.write_language_model(info, base_file, base)
        for quant in quants:
            if quant == base:
                continue
            if quant in tables.FLOAT_QUANTS:
                say(f"writing the language model ({quant})")
                gguf_writer.write_language_model(info, tmp / files[quant], quant)
            else:
                say(f"quantizing to {quant} with llama.cpp")
                quantize(base_file, tmp / files[quant], quant, threads, log=tmp / LOG)
        say(f"writing the vision projector (mmproj, {mmproj})")
        gguf_writer.write_mmproj(info, tmp / mmproj_file, mmproj)
        say("checking llama.cpp's tokenizer against the model's")
        check = tokenizer_check(base_file, path)
        if base not in files:
            base_file.unlink()
        sizes = {f: (tmp / f).stat().st_size for f in [*files.values(), mmproj_file]}
        manifest = {
            "format": "qtool-gguf", "version": 1, "model": str(path), "model_type": info.adapter.model_type,
            "architecture": info.adapter.gguf_arch, "projector": info.adapter.gguf_projector,
            "source_sha256": info.sha256,
            "files": files, "mmproj": {"file": mmproj_file, "type": mmproj},
            "sha256": {f: fingerprint.sha256_file(tmp / f) for f in sizes}, "sizes": sizes,
            "tokenizer_check": check, "versions": fingerprint.versions(),
            "wall_s": round(time.perf_counter() - start, 2),
        }
        (tmp / tables.MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return GGUFExport(out=out, model=str(path), model_type=info.adapter.model_type, files=files,
                      mmproj=mmproj_file, sizes=sizes, tokenizer_check=check, wall_s=manifest["wall_s"])


def gguf_files(folder: Path, quant: str) -> tuple[Path, Path]:
    """An export folder's language-model file for ``quant`` and its mmproj, as its manifest names them."""
    manifest = json.loads((folder / tables.MANIFEST).read_text())
    return folder / manifest["files"][quant], folder / manifest["mmproj"]["file"]


def quantize(src: Path, dst: Path, quant: str, threads: int | None, log: Path) -> None:
    """llama.cpp's quantizer (``llama_model_quantize``): its K-quant mixes, its output log."""

    lc = llama_cpp()
    params = lc.llama_model_quantize_default_params()
    params.ftype = int(tables.QUANTS[quant])
    params.nthread = threads or os.cpu_count() or 1
    with engine_output_to(log):
        rc = lc.llama_model_quantize(str(src).encode(), str(dst).encode(), ctypes.byref(params))
    if rc != 0:   # the input is a GGUF this exporter just wrote: a failure here is not the user's input
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        raise RuntimeError(f"llama.cpp failed to quantize to {quant} (code {rc}); the end of its log:\n{tail}")


def tokenizer_check(gguf_file: Path, model_path: Path, texts: Sequence[str] | None = None) -> dict:
    """Token ids from llama.cpp (vocab only) vs the model's own tokenizer, on chat-formatted prompts."""
    from transformers import AutoTokenizer

    lc = llama_cpp()
    quiet_logs()
    hf = AutoTokenizer.from_pretrained(model_path)
    texts = list(texts or _probe_texts(hf))
    with engine_output_to(Path(os.devnull)):      # a context-size warning that means nothing here
        vocab = lc.Llama(model_path=str(gguf_file), vocab_only=True, verbose=False)
    mismatches = [t for t in texts
                  if vocab.tokenize(t.encode(), add_bos=False, special=True) != hf(t, add_special_tokens=False).input_ids]
    result = {"texts": len(texts), "mismatches": len(mismatches), "pre_tokenizer": tables.PRE_TOKENIZER}
    if mismatches:
        raise QtoolError(f"llama.cpp tokenizes {len(mismatches)} of {len(texts)} probe texts differently "
                         f"(first: {mismatches[0][:60]!r})", "the tokenizer's pre-tokenizer is not Qwen2's; "
                         "export a model with the Qwen2 tokenizer")
    return result


def _probe_texts(tokenizer) -> list[str]:
    """Chat prompts over the calibration texts, digits, punctuation, whitespace runs and non-ASCII."""

    samples = [r.text for r in load_records(paths.CALIB_DATA).records[:40]]
    samples += ["What colour is the circle? Answer: red.", "12345 + 67890 = 80235", "  two  spaces\n\nand\ttabs",
                "naïve café – 東京 🚀", "it's they're we'll I'd", "<|vision_start|><|image_pad|><|vision_end|>"]
    chats = [tokenizer.apply_chat_template([{"role": "user", "content": s}], tokenize=False,
                                           add_generation_prompt=True) for s in samples if s]
    return samples + chats

"""``verify``: every file's hash and size, every variant loaded by its consumer in a fresh process, the held-out
answers recorded at release time asked again, and transformers variants served by vLLM where it is built."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from qtool import artifacts as registry
from qtool import infer, kernels, serve
from qtool.errors import QtoolError
from qtool.fingerprint import sha256_file
from qtool.models import chat
from qtool.release import answers
from qtool.release.bundle import CHECKSUMS, MANIFEST
from qtool.serve import client

VLLM_AGREEMENT = 0.9   # vLLM's own kernels round differently: near, not identical, answers
# random weights: the first answer token's top-20 log-probabilities on the first 4 questions, vLLM vs
# transformers, by token id. Measured on CPU 4-bit kernels: within 0.01 on the Qwen3-VL test model, within 0.063
# (about 4 bf16 steps of the logits) with 18-19 of 20 tokens shared on the Qwen2-VL-2B shape; an artifact that
# loads wrong shares next to none of 20 tokens out of a 150k vocabulary.
LOGPROB_QUESTIONS, LOGPROB_TOP, LOGPROB_TOLERANCE = 4, 20, 0.1


def check_files(root: Path) -> dict:
    root = Path(root)
    if not root.is_dir():
        raise QtoolError(f"release folder {root} does not exist", "pass the --out folder of `qtool release`")
    for name in (MANIFEST, CHECKSUMS):
        if not (root / name).is_file():
            raise QtoolError(f"{root / name} is missing", "re-run `qtool release` to seal the folder")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
    except (ValueError, KeyError):
        raise QtoolError(f"{root / MANIFEST} is not a qtool release manifest", "re-run `qtool release`") from None
    listed = {line.split("  ", 1)[1]: line.split("  ", 1)[0]
              for line in (root / CHECKSUMS).read_text().splitlines() if "  " in line}
    if listed.keys() != files.keys() or any(listed[k] != files[k]["sha256"] for k in files):
        raise QtoolError(f"{CHECKSUMS} and {MANIFEST} disagree", "re-run `qtool release` to rebuild them")
    for rel, expected in files.items():
        path = root / rel
        if not path.is_file():
            raise QtoolError(f"missing file {rel}", "re-run `qtool release` to rebuild the variant")
        if path.stat().st_size != expected["bytes"]:
            raise QtoolError(f"size mismatch in {rel} ({path.stat().st_size} != {expected['bytes']} bytes)",
                             "the file is truncated or replaced; re-run `qtool release`")
        if sha256_file(path) != expected["sha256"]:
            raise QtoolError(f"checksum mismatch in {rel}", "the file is corrupted; re-run `qtool release`")
    extra = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()
                   and p.relative_to(root).as_posix() not in files and p.name not in (MANIFEST, CHECKSUMS)
                   and not p.relative_to(root).as_posix().startswith("."))
    if extra:
        raise QtoolError(f"unlisted file {extra[0]} in the release", "remove it or re-run `qtool release`")
    return manifest


def smoke(root: Path, name: str, consumer: str) -> dict:
    kind = registry.kind_for_consumer(consumer)
    if kind is None:
        raise QtoolError(f"variant {name} names unknown consumer {consumer!r}", "re-run `qtool release`")
    folder = Path(root) / name
    backend = kernels.backend_for(kernels.quantization_config(folder), "cpu") or ""
    proc = subprocess.run([sys.executable, str(registry.SMOKE_DIR / kind.smoke), str(folder), backend],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode < 0:   # killed by a signal: the consumer crashed, which is not the release's fault
        raise RuntimeError(f"{kind.smoke} crashed on {name} ({signal.Signals(-proc.returncode).name}):\n"
                           f"{proc.stderr[-2000:]}")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise QtoolError(f"variant {name} does not load with {consumer}: {last}", "re-run `qtool release`")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not result.get("finite"):
        raise QtoolError(f"variant {name} produces non-finite logits", "re-run `qtool release`")
    return result


def first_token_reference(loaded) -> list[dict[int, float]]:
    """``loaded`` (a variant in transformers): the first answer token's top log-probabilities by token id, on the
    first ``LOGPROB_QUESTIONS`` of the release's held-out questions."""
    _, images, asked = answers.questions()
    return [infer.next_token_logprobs(loaded.model, loaded.processor, image, q, LOGPROB_TOP, by_id=True)
            for image, q in list(zip(images, asked))[:LOGPROB_QUESTIONS]]


def vllm_skip(profile) -> str | None:
    """Why vLLM will not serve ``profile`` here, as verify's row shows it; None if it will."""
    if not serve.vllm_env().joinpath("bin", "python").is_file():
        return "-"
    refused = serve.refusal(profile)
    return f"- ({refused[0]})" if refused else None


def in_vllm(folder: Path, profile, expected: list[str], expected_logprobs: list[dict] | None = None) -> str:
    """The release's held-out questions through vLLM against ``expected`` (transformers' answers now), or why vLLM
    does not serve the variant here. Random weights give near-uniform next-token distributions whose greedy paths
    part at the kernels' rounding (Qwen3-VL test model: 18 of 20 bf16 and 15 of 20 GPTQ-Int4 answers the same), so
    for them (``expected_logprobs`` given) the answers are shown and the first answer token's log-probabilities
    are checked instead."""
    skipped = vllm_skip(profile)
    if skipped:
        return skipped
    served = serve.servable(folder)
    _, images, asked = answers.questions()
    probed = list(zip(images, asked))[:len(expected_logprobs or [])]
    with serve.Server(served, port=serve.free_port(), max_model_len=1024) as server:
        got = serve.VLLMModel(server).answer(images, asked)
        in_server = [client.next_token_logprobs(server.port, served.name, image, q, LOGPROB_TOP, by_id=True)
                     for image, q in probed]
    same = sum(a == b for a, b in zip(got, expected))
    if expected_logprobs is not None:
        gaps = [chat.logprob_gap(s, t) for s, t in zip(in_server, expected_logprobs)]
        shared, worst = min(n for n, _ in gaps), max(gap for _, gap in gaps)
        if shared < LOGPROB_TOP // 2 or worst > LOGPROB_TOLERANCE:
            raise QtoolError(f"variant {folder.name}'s first answer token in vLLM is not transformers': {shared} of "
                             f"the top {LOGPROB_TOP} shared (at least {LOGPROB_TOP // 2} expected), log-probabilities "
                             f"up to {worst:.3g} apart (at most {LOGPROB_TOLERANCE})",
                             "re-run `qtool release`; if it persists, report it")
        return (f"{same}/{len(expected)} (random weights); first token: {shared}+ of top {LOGPROB_TOP} shared, "
                f"log-probs within {worst:.2g}")
    if same < VLLM_AGREEMENT * len(expected):
        raise QtoolError(f"variant {folder.name} answers {len(expected) - same} of {len(expected)} held-out "
                         "questions differently in vLLM than in transformers",
                         "re-run `qtool release`; if it persists, report it")
    return f"{same}/{len(expected)}"


def verify(root: Path, status=None) -> list[dict]:
    say = status or (lambda _m: None)
    manifest = check_files(root)
    rows = []
    random_weights = manifest.get("random_weights", False)
    for name, variant in manifest["variants"].items():
        say(f"{name}: loading with {variant['kind']} in a fresh process")
        result = smoke(root, name, variant["kind"])
        if result.get("torch_imported"):
            raise QtoolError(f"variant {name} needed torch to load with {variant['kind']}", "report this as a bug")
        row = {"variant": name, "consumer": variant["kind"], "load": result["loaded"], "output": result["output"]}
        folder = Path(root) / name
        _, profile, _ = registry.describe(folder)
        source = Path(manifest.get("source_path", manifest["model"]))
        if registry.kind_of(profile).name == "onnx-vision" and not (source / "config.json").is_file():
            row["answers as released"] = "- (source model not here)"
        elif "answers" in variant or variant["kind"] == "transformers":
            say(f"{name}: answering the release's held-out questions with {variant['kind']}")
            loaded = registry.load(folder, profile, source)
            now = answers.ask(loaded)
            probe = random_weights and variant["kind"] == "transformers" and vllm_skip(profile) is None
            logprobs = first_token_reference(loaded) if probe else None
            del loaded   # not held while vLLM runs
            if "answers" in variant:
                row["answers as released"] = answers.check(name, variant["answers"], now)
            if variant["kind"] == "transformers":
                say(f"{name}: checking it in vLLM")
                row["vLLM = transformers"] = in_vllm(folder, profile, now, logprobs)
        rows.append(row)
    return rows

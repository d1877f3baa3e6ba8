"""qtool release / verify on the tiny model: one variant per kind (GPTQ, GGUF, ONNX), corruption, resumability."""

import json
import shutil

import pytest
import torch
from conftest import assert_one_line_error, qtool_in_process, run_qtool

import qtool.release as release_module
from qtool import machine
from qtool.bench import BenchSettings

FAST = ("--eval-limit", "15", "--bench-gen", "4", "--bench-repeats", "1", "--samples", "16")
PROFILES = "gptq-int4,gguf-q8_0,onnx-vision-int8"
VARIANTS = ["qwen2-vl-tiny-gguf-q8_0", "qwen2-vl-tiny-gptq-int4", "qwen2-vl-tiny-onnx-vision-int8"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "rel"
    proc = run_qtool("--json", "release", "qwen2-vl-tiny", "--profiles", PROFILES, "--out", out, *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads(proc.stdout)


def copy_of(release, tmp_path):
    out, _ = release
    dst = tmp_path / "copy"
    shutil.copytree(out, dst)
    return dst


def test_release_layout(release):
    out, manifest = release
    variants = sorted(manifest["variants"])
    assert variants == VARIANTS
    assert [manifest["variants"][v]["kind"] for v in variants] == ["llama.cpp", "transformers", "onnxruntime"]
    for v in variants:
        card = (out / v / "README.md").read_text()
        assert card.startswith("---\nbase_model:") and "## Recipe" in card and "## Usage" in card
        assert "## Accuracy and fidelity" in card and "## Speed and memory" in card
        assert json.loads((out / v / "qtool.json").read_text())["profile"]["_data"]["name"] in v
    assert "vllm serve" in (out / VARIANTS[1] / "README.md").read_text()
    assert "llama-mtmd-cli" in (out / VARIANTS[0] / "README.md").read_text()
    assert "VisionEncoder" in (out / VARIANTS[2] / "README.md").read_text()
    sums = (out / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ")[1] for line in sums}
    assert {"qwen2-vl-tiny-gptq-int4/model.safetensors", "qwen2-vl-tiny-gguf-q8_0/qwen2-vl-tiny-q8_0.gguf",
            "qwen2-vl-tiny-gguf-q8_0/mmproj-qwen2-vl-tiny-f16.gguf", "qwen2-vl-tiny-onnx-vision-int8/vision.int8.onnx",
            "eval/table.md", "eval/agreement.json"} <= listed
    agreement = {r["variant"]: r for r in json.loads((out / "eval" / "agreement.json").read_text())}
    assert set(agreement) == {VARIANTS[0], VARIANTS[2]} and all(r["questions"] == 15 for r in agreement.values())
    saved = json.loads((out / "release.json").read_text())
    assert saved["versions"]["gptqmodel"] and set(saved["timings_s"]) == set(variants)
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in saved["files"].values())


def test_verify_passes(release):
    out, _ = release
    proc = run_qtool("--json", "verify", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["variants"]
    assert sorted(r["variant"] for r in rows) == VARIANTS
    outputs = {r["variant"]: r["output"] for r in rows}
    assert outputs[VARIANTS[0]] == outputs[VARIANTS[1]] == "4 tokens"       # llama.cpp and transformers generate
    assert outputs[VARIANTS[2]].endswith("embeddings") and outputs[VARIANTS[2]].split("x")[0] == "20"  # 112x140 px
    assert all(int(r["answers as released"].removesuffix("/20")) >= 18 for r in rows), rows
    served = {r["variant"]: r["vLLM = transformers"] for r in rows if r["consumer"] == "transformers"}
    assert list(served) == ["qwen2-vl-tiny-gptq-int4"]
    if machine.vllm_avx512():
        assert int(served["qwen2-vl-tiny-gptq-int4"].removesuffix("/20")) >= 18
    else:   # vLLM's CPU build has its 4-bit kernel only for AVX-512
        assert served["qwen2-vl-tiny-gptq-int4"] == "- (vLLM's CPU build has its 4-bit GPTQ/AWQ kernel only " \
            "for AVX-512 CPUs, and this CPU has none)"


def test_flipped_byte_is_named(release, tmp_path):
    dst = copy_of(release, tmp_path)
    weights = dst / "qwen2-vl-tiny-gguf-q8_0" / "qwen2-vl-tiny-q8_0.gguf"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    assert_one_line_error(run_qtool("verify", dst), "checksum mismatch", "qwen2-vl-tiny-gguf-q8_0/qwen2-vl-tiny-q8_0.gguf")


def test_missing_file_is_named(release, tmp_path):
    dst = copy_of(release, tmp_path)
    (dst / "qwen2-vl-tiny-gptq-int4" / "config.json").unlink()
    assert_one_line_error(run_qtool("verify", dst), "missing file", "qwen2-vl-tiny-gptq-int4/config.json")


def test_rerun_rebuilds_only_the_missing_variant(release, tmp_path):
    """Only the rebuilt variant is measured again; bench is one run for all (its ratios compare them)."""
    dst = copy_of(release, tmp_path)
    shutil.rmtree(dst / "qwen2-vl-tiny-onnx-vision-int8")
    before = json.loads((dst / "release.json").read_text())
    kept = {f: (dst / f).stat().st_mtime_ns for f in ("qwen2-vl-tiny-gptq-int4/model.safetensors",
                                                      "qwen2-vl-tiny-gguf-q8_0/qwen2-vl-tiny-q8_0.gguf",
                                                      "eval/eval.json")}
    bench_before = (dst / "bench" / "bench.json").stat().st_mtime_ns
    proc = run_qtool("--json", "release", "qwen2-vl-tiny", "--profiles", PROFILES, "--out", dst, *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    after = json.loads(proc.stdout)
    assert after["rebuilt"] == ["qwen2-vl-tiny-onnx-vision-int8"]
    assert {f: (dst / f).stat().st_mtime_ns for f in kept} == kept
    assert (dst / "bench" / "bench.json").stat().st_mtime_ns != bench_before
    agreement = {r["variant"]: r for r in json.loads((dst / "eval" / "agreement.json").read_text())}
    assert sorted(agreement) == [VARIANTS[0], VARIANTS[2]] and agreement[VARIANTS[2]]["questions"] == 15
    for v in VARIANTS[:2]:
        assert after["variants"][v]["answers"] == before["variants"][v]["answers"]
    assert "onnx-vision-int8" in proc.stderr and "answering the held-out questions with qwen2-vl-tiny-onnx" \
        "-vision-int8" in proc.stderr and "evaluating all variants" not in proc.stderr


def test_changed_settings_reuse_nothing(release):
    """Measurements made with other settings (here fewer eval questions) are not this release's."""
    out, manifest = release
    same = release_module.ReleaseSettings(eval_limit=15, samples=16,
                                          bench=BenchSettings(gen=(4,), repeats=1))
    assert release_module._Previous.read(out, manifest["source_sha256"],
                                         release_module._settings_record(same)).manifest == manifest
    fewer = release_module.ReleaseSettings(eval_limit=10, samples=16, bench=same.bench)
    assert release_module._Previous.read(out, manifest["source_sha256"],
                                         release_module._settings_record(fewer)).manifest == {}


def test_ask_with_relative_model_paths(release):
    out, _ = release
    proc = run_qtool("--json", "ask", "qwen2-vl-tiny", "qwen2-vl-tiny-gptq-int4", "--heldout", "3", cwd=out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert len(rows) == 3 and all(r["qwen2-vl-tiny-gptq-int4"] and r["expected"] for r in rows)


def test_float_profile_is_not_a_release_variant(tmp_path):
    proc = qtool_in_process("release", "qwen2-vl-tiny", "--profiles", "gptq-int4,bf16", "--out", tmp_path / "rel")
    assert_one_line_error(proc, "quantized or exported profiles", "gguf-q4_k_m")
    assert not (tmp_path / "rel").exists()


def test_damaged_weights_with_regenerated_checksums_fail_on_answers(release, tmp_path):
    """The hashes only prove the files are the ones listed; the recorded answers prove they still behave."""
    from safetensors.torch import load_file, save_file

    from qtool.fingerprint import sha256_file

    dst = copy_of(release, tmp_path)
    weights = dst / "qwen2-vl-tiny-gptq-int4" / "model.safetensors"
    tensors = load_file(weights)
    shuffle = torch.Generator().manual_seed(0)
    for name in tensors:
        if name.endswith(".qweight"):   # output channels shuffled: still a valid GPTQ file, a broken model
            tensors[name] = tensors[name][:, torch.randperm(tensors[name].shape[1], generator=shuffle)]
    save_file(tensors, weights, metadata={"format": "pt"})
    manifest = json.loads((dst / "release.json").read_text())
    rel = "qwen2-vl-tiny-gptq-int4/model.safetensors"
    manifest["files"][rel] = {"sha256": sha256_file(weights), "bytes": weights.stat().st_size}
    (dst / "release.json").write_text(json.dumps(manifest, indent=2) + "\n")
    (dst / "SHA256SUMS").write_text("".join(f"{f['sha256']}  {r}\n" for r, f in manifest["files"].items()))
    proc = run_qtool("verify", dst)
    last = proc.stderr.strip().splitlines()[-1]     # after verify's progress lines for the variants before
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert last.startswith("error: variant qwen2-vl-tiny-gptq-int4 answers") and "than when it was released" in last

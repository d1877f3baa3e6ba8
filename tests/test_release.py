"""qtool release / verify on the tiny model: two variants, corruption, resumability."""

import json
import shutil

import pytest

from conftest import assert_one_line_error, run_qtool

FAST = ("--eval-limit", "15", "--bench-gen", "4", "--bench-repeats", "1", "--samples", "16")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "rel"
    proc = run_qtool("--json", "release", "qwen2-vl-tiny", "--profiles", "gptq-int4,rtn-int4", "--out", out, *FAST)
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
    assert variants == ["qwen2-vl-tiny-gptq-int4", "qwen2-vl-tiny-rtn-int4"]
    for v in variants:
        card = (out / v / "README.md").read_text()
        assert card.startswith("---\nbase_model:") and "## Recipe" in card and "## Usage" in card
        assert "## Accuracy and fidelity" in card and "## Speed and memory" in card and "vllm serve" in card
        assert (out / v / "qtool.json").is_file() and (out / v / "model.safetensors").is_file()
    sums = (out / "SHA256SUMS").read_text().splitlines()
    listed = {line.split("  ")[1] for line in sums}
    assert "qwen2-vl-tiny-gptq-int4/model.safetensors" in listed and "eval/table.md" in listed
    saved = json.loads((out / "release.json").read_text())
    assert saved["versions"]["gptqmodel"] and set(saved["timings_s"]) == set(variants)
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in saved["files"].values())


def test_verify_passes(release):
    out, _ = release
    proc = run_qtool("--json", "verify", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)["variants"]
    assert {r["variant"] for r in rows} == {"qwen2-vl-tiny-gptq-int4", "qwen2-vl-tiny-rtn-int4"}
    assert all(r["generated tokens"] > 0 for r in rows)


def test_flipped_byte_is_named(release, tmp_path):
    dst = copy_of(release, tmp_path)
    weights = dst / "qwen2-vl-tiny-rtn-int4" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01
    weights.write_bytes(bytes(data))
    assert_one_line_error(run_qtool("verify", dst), "checksum mismatch", "qwen2-vl-tiny-rtn-int4/model.safetensors")


def test_missing_file_is_named(release, tmp_path):
    dst = copy_of(release, tmp_path)
    (dst / "qwen2-vl-tiny-gptq-int4" / "config.json").unlink()
    assert_one_line_error(run_qtool("verify", dst), "missing file", "qwen2-vl-tiny-gptq-int4/config.json")


def test_rerun_rebuilds_only_the_missing_variant(release, tmp_path):
    dst = copy_of(release, tmp_path)
    shutil.rmtree(dst / "qwen2-vl-tiny-rtn-int4")
    kept = (dst / "qwen2-vl-tiny-gptq-int4" / "model.safetensors").stat().st_mtime_ns
    proc = run_qtool("--json", "release", "qwen2-vl-tiny", "--profiles", "gptq-int4,rtn-int4", "--out", dst, *FAST)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["rebuilt"] == ["qwen2-vl-tiny-rtn-int4"]
    assert (dst / "qwen2-vl-tiny-gptq-int4" / "model.safetensors").stat().st_mtime_ns == kept
    assert run_qtool("verify", dst).returncode == 0


def test_ask_with_relative_model_paths(release):
    out, _ = release
    proc = run_qtool("--json", "ask", "qwen2-vl-tiny", "qwen2-vl-tiny-gptq-int4", "--heldout", "3", cwd=out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads(proc.stdout)
    assert len(rows) == 3 and all(r["qwen2-vl-tiny-gptq-int4"] and r["expected"] for r in rows)

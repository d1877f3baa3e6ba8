"""The bad-input catalogue: each case gives one line naming the problem and the fix, exit 2,
no traceback, and nothing left behind. (Calibration-set cases live in test_calibration.py;
profile cases in test_profiles.py; release cases in test_release.py.) Refusals run the CLI in this process; the
cases that need a real filesystem failure during the write run it as a subprocess."""

import json
import os
import shutil
import subprocess

import pytest
from conftest import TINY, assert_one_line_error, qtool_in_process, run_qtool


def model_copy(tmp_path):
    dst = tmp_path / "model"
    shutil.copytree(TINY, dst)
    return dst


def quantize(model, tmp_path, *extra, profile="rtn-int4"):
    return qtool_in_process("quantize", model, "--profile", profile, "--out", tmp_path / "out", *extra)


def assert_nothing_left(tmp_path):
    assert not (tmp_path / "out").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_missing_model_folder(tmp_path):
    assert_one_line_error(quantize(tmp_path / "nope", tmp_path), "does not exist")
    assert_nothing_left(tmp_path)


def test_model_path_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    assert_one_line_error(quantize(tmp_path / "f", tmp_path), "not a model folder")


def test_real_shape_name_without_folder_hints_build_random(tmp_path):
    assert_one_line_error(quantize("qwen2-vl-7b", tmp_path), "build-random")


def test_unsupported_architecture(tmp_path):
    m = model_copy(tmp_path)
    cfg = json.loads((m / "config.json").read_text())
    cfg["model_type"] = "llava"
    (m / "config.json").write_text(json.dumps(cfg))
    assert_one_line_error(quantize(m, tmp_path), "llava", "qwen2_vl")
    assert_nothing_left(tmp_path)


def test_config_not_json(tmp_path):
    m = model_copy(tmp_path)
    (m / "config.json").write_text("{not json")
    assert_one_line_error(quantize(m, tmp_path), "config.json")


def test_no_config(tmp_path):
    m = model_copy(tmp_path)
    (m / "config.json").unlink()
    assert_one_line_error(quantize(m, tmp_path), "config.json")


def test_no_weights(tmp_path):
    m = model_copy(tmp_path)
    (m / "model.safetensors").unlink()
    assert_one_line_error(quantize(m, tmp_path), "weights")


def test_truncated_safetensors(tmp_path):
    m = model_copy(tmp_path)
    w = m / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    assert_one_line_error(quantize(m, tmp_path), "model.safetensors")
    assert_nothing_left(tmp_path)


def test_corrupt_safetensors_header(tmp_path):
    m = model_copy(tmp_path)
    w = m / "model.safetensors"
    w.write_bytes(b"\xff" * 64 + w.read_bytes()[64:])
    assert_one_line_error(quantize(m, tmp_path), "model.safetensors")


def test_pickle_only_checkpoint_needs_allow_pickle(tmp_path):
    import torch

    m = model_copy(tmp_path)
    (m / "model.safetensors").unlink()
    torch.save({"x": torch.zeros(1)}, m / "pytorch_model.bin")
    assert_one_line_error(quantize(m, tmp_path), "--allow-pickle")
    assert_nothing_left(tmp_path)


def test_config_shapes_do_not_match_weights(tmp_path):
    m = model_copy(tmp_path)
    cfg = json.loads((m / "config.json").read_text())
    cfg["text_config"]["intermediate_size"] = 1024
    (m / "config.json").write_text(json.dumps(cfg))
    assert_one_line_error(quantize(m, tmp_path), "shape")


def test_bits_not_supported(tmp_path):
    assert_one_line_error(quantize("qwen2-vl-tiny", tmp_path, "--bits", "3"), "bits", "4, 8")


def test_cuda_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert_one_line_error(quantize("qwen2-vl-tiny", tmp_path, "--device", "cuda"), "cuda", "--device cpu")


def test_awq_resume_refused(tmp_path):
    # GPTQModel 7.7 cannot restore AWQ layer checkpoints: qtool says so up front instead of failing after the load
    assert_one_line_error(quantize("qwen2-vl-tiny", tmp_path, "--resume", profile="awq-int4"), "awq-int4", "--resume")
    assert not (tmp_path / "out").exists()


def test_output_is_a_file(tmp_path):
    (tmp_path / "out").write_text("keep me")
    assert_one_line_error(quantize("qwen2-vl-tiny", tmp_path), "is not a folder")
    assert (tmp_path / "out").read_text() == "keep me"


def test_output_exists(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    assert_one_line_error(quantize("qwen2-vl-tiny", tmp_path), "already exists", "--force")
    assert (tmp_path / "out" / "mine.txt").read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_output_not_writable(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--out", ro / "out")
    assert_one_line_error(proc, "cannot write")


def test_output_not_writable_read_only_mount(tmp_path):
    """As root, permissions do not stop writes; a read-only bind mount does."""
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(ro), str(ro)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--out", ro / "out")
        assert_one_line_error(proc, "cannot write")
    finally:
        subprocess.run(["umount", str(ro)])


def test_disk_full(tmp_path):
    small = tmp_path / "small"
    small.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        proc = run_qtool("quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--out", small / "out")
        assert_one_line_error(proc, "disk full", "free space")
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)])


def test_unknown_command_option_is_one_line(tmp_path):
    proc = qtool_in_process("quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--frobnicate")
    assert_one_line_error(proc, "--frobnicate")


def test_verify_of_a_non_release(tmp_path):
    assert_one_line_error(qtool_in_process("verify", tmp_path), "release.json")


def test_verify_of_a_missing_folder(tmp_path):
    assert_one_line_error(qtool_in_process("verify", tmp_path / "nope"), "does not exist")

"""Interrupted quantization: SIGKILL leaves no output and resumes from the last finished layer;
Ctrl-C stops cleanly with exit 130."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import GPTQ_SAMPLES, REPO, assert_one_line_error, qtool_in_process, run_qtool
from safetensors import safe_open

from qtool.quantization import checkpoint_manifest, checkpointed_layers

ARGS = ["quantize", "qwen2-vl-tiny", "--profile", "gptq-int4", "--samples", str(GPTQ_SAMPLES)]


def start(out: Path, env: dict, *extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qtool", "--json", *ARGS, "--out", str(out), *extra],
                            cwd=REPO, env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_layers(cache: Path, n: int, proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = list((cache / "quantize-checkpoints").glob("*"))
        if runs and checkpointed_layers(runs[0]) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    pytest.fail("no layer checkpoint appeared")


def packed_layers(ckpt: Path) -> int:
    """Decoder layers whose packed linears the checkpoint holds (counted from its artifacts, not its cursor)."""
    return len({name.rsplit(".", 2)[0] for name in checkpoint_manifest(ckpt)["artifacts"]})


def tensors(folder: Path) -> dict:
    with safe_open(folder / "model.safetensors", "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture(scope="module")
def reference(artifacts):
    """The session's uninterrupted run with the same arguments (conftest's ``artifacts``)."""
    return artifacts["gptq-int4"][0]


def test_sigkill_then_resume_matches_uninterrupted_run(tmp_path, reference):
    cache, out = tmp_path / "cache", tmp_path / "out"
    env = {"QTOOL_CACHE": str(cache)}
    proc = start(out, env)
    wait_for_layers(cache, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists()  # the partial folder is hidden and never renamed onto --out
    # a plain re-run refuses to throw the finished layers away
    assert_one_line_error(qtool_in_process(*ARGS, "--out", out, env=env), "--resume")
    assert not out.exists()
    layers_in_checkpoint = packed_layers(next((cache / "quantize-checkpoints").glob("*")))
    done = run_qtool("--json", *ARGS, "--out", out, "--resume", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["resumed_layers"] == layers_in_checkpoint >= 1
    assert not list(tmp_path.glob(".out.partial-*"))  # the dead run's partial folder was cleaned up
    resumed, full = tensors(out), tensors(reference)
    assert resumed.keys() == full.keys()
    assert all(resumed[k].equal(full[k]) for k in full), "resumed artifact differs from an uninterrupted run"


def test_sigint_stops_cleanly_with_130(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    proc = start(out, {"QTOOL_CACHE": str(cache)})
    wait_for_layers(cache, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err
    assert not out.exists()


def test_previous_output_untouched_by_a_killed_forced_run(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    out.mkdir()
    (out / "previous.txt").write_text("previous artifact")
    proc = start(out, {"QTOOL_CACHE": str(cache)}, "--force")
    wait_for_layers(cache, 1, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert [p.name for p in out.iterdir()] == ["previous.txt"]

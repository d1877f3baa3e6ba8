import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "qtool" / "assets" / "qwen2-vl-tiny"
CALIB = REPO / "qtool" / "calibration" / "default_set"   # the shipped calibration set

QUANTIZED = ("gptq-int4", "gptq-int8", "awq-int4", "rtn-int4")   # the tiny model's quantized artifacts

os.environ.setdefault("GPTQMODEL_CPU_WORKERS", "2")


@pytest.fixture(autouse=True)
def _qtool_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("qtool-home")
    monkeypatch.setenv("QTOOL_HOME", str(home))
    monkeypatch.setenv("QTOOL_CACHE", str(home / "cache"))


def run_qtool(*args, cwd=None, env=None, timeout=900) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes, stdout/stderr as a user sees them)."""
    full_env = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "qtool", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd or REPO, env=full_env, timeout=timeout)


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in err.lower(), (needle, err)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """The tiny model quantized once per test session with every quantized profile: {profile: (folder, result)}."""
    root = tmp_path_factory.mktemp("artifacts")
    out = {}
    for profile in QUANTIZED:
        proc = run_qtool("--json", "quantize", "qwen2-vl-tiny", "--profile", profile, "--samples", "64",
                         "--out", root / profile, env={"QTOOL_CACHE": str(root / "cache")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[profile] = (root / profile, json.loads(proc.stdout))
    return out

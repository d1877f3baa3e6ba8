import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from qtool import paths

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


def qtool_in_process(*args, cwd=None, env=None) -> subprocess.CompletedProcess:
    """``qtool.cli.main`` in this process, with its exit code and output as ``run_qtool`` gives them: for requests
    refused before any work, where a subprocess would spend seconds importing torch and transformers again.
    An exception other than the CLI's own exit propagates (an internal failure fails the test)."""
    from qtool.cli import main

    saved = logging.root.manager.disable, warnings.filters[:], dict(os.environ), os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    os.environ.update({k: str(v) for k, v in (env or {}).items()})
    os.chdir(cwd or REPO)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main([str(a) for a in args])
    finally:
        logging.disable(saved[0])
        warnings.filters[:] = saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
        os.chdir(saved[3])
    code = exc.value.code
    return subprocess.CompletedProcess(args, code if isinstance(code, int) else 1, out.getvalue(), err.getvalue())


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle.lower() in err.lower(), (needle, err)


PACKED_AWQ_SAMPLES = 4   # packed AWQ searches every token: few conversations keep it short
GPTQ_SAMPLES = 24


def quantize_args(profile: str, folder: Path, samples: int) -> tuple:
    """``--profile``/``--samples`` for the suite's artifacts. AWQ is the shipped profile with
    ``pack_conversations = true``: the suite covers the packed path end to end here, the default AWQ path in
    test_qwen3_vl."""
    if profile != "awq-int4":
        return "--profile", profile, "--samples", samples
    folder.mkdir(parents=True, exist_ok=True)
    toml = folder / "awq-int4.toml"
    toml.write_text((paths.PROFILES / "awq-int4.toml").read_text() + "pack_conversations = true\n")
    return "--profile", toml, "--samples", PACKED_AWQ_SAMPLES


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory):
    """The tiny model quantized once per test session with every quantized profile: {profile: (folder, result)}."""
    root = tmp_path_factory.mktemp("artifacts")
    out = {}
    for profile in QUANTIZED:
        args = quantize_args(profile, root / "profiles", GPTQ_SAMPLES)
        proc = run_qtool("--json", "quantize", "qwen2-vl-tiny", *args, "--out", root / profile,
                         env={"QTOOL_CACHE": str(root / "cache")})
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[profile] = (root / profile, json.loads(proc.stdout))
    return out

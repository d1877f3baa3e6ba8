"""The wheel works outside the repository: profiles, the calibration set and the bundled model ship inside it.

The wheel is built from this checkout and installed (without dependencies) into a new virtualenv. That
virtualenv takes qtool's dependencies from the test's own environment through a path file, which adds the
folder to ``sys.path`` without running its path files: the editable install of this checkout stays out,
so every ``qtool`` import must come from the wheel. Commands run from a folder outside the repository.
"""

import json
import os
import site
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "-w", str(tmp / "dist"), str(REPO)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((tmp / "dist").glob("qtool-*.whl"))
    env = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    deps = next(Path(p) for p in site.getsitepackages() if Path(p).name == "site-packages")
    own = next((env / "lib").glob("python*/site-packages"))
    (own / "qtool_test_dependencies.pth").write_text(f"{deps}\n")
    install = subprocess.run([str(env / "bin" / "pip"), "install", "-q", "--no-deps", "--no-index", str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    work = tmp / "elsewhere"
    work.mkdir()
    return env, work, own


# GPTQModel compiles its CPU packing extension once per home folder (~40 s): the fresh HOME below gets the one
# this machine already built, a dependency cache like the site-packages it borrows.
EXTENSIONS = os.environ.get("GPTQMODEL_TORCH_EXTENSIONS_DIR",
                            str(Path.home() / ".cache" / "gptqmodel" / "torch_extensions"))


def _qtool(env: Path, work: Path, *args):
    return subprocess.run([str(env / "bin" / "qtool"), *map(str, args)], capture_output=True, text=True, cwd=work,
                          env={"PATH": f"{env / 'bin'}:/usr/bin:/bin", "HOME": str(work),
                               "QTOOL_HOME": str(work / ".qtool"), "GPTQMODEL_CPU_WORKERS": "2",
                               "GPTQMODEL_TORCH_EXTENSIONS_DIR": EXTENSIONS}, timeout=1200)


def test_qtool_imports_from_the_wheel_not_the_checkout(installed):
    env, work, own = installed
    where = subprocess.run([str(env / "bin" / "python"), "-c", "import qtool; print(qtool.__file__)"],
                           capture_output=True, text=True, cwd=work)
    assert where.returncode == 0, where.stderr
    path = Path(where.stdout.strip())
    assert path.is_relative_to(own) and not path.is_relative_to(REPO)
    assert (path.parent / "profiles" / "gptq-int4.toml").is_file()


def test_the_shipped_calibration_set_validates(installed):
    env, work, _ = installed
    proc = _qtool(env, work, "--json", "calib", "validate")
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["records"] >= 64 and "site-packages" in report["path"]


def test_quantize_the_bundled_model_with_a_shipped_profile(installed):
    env, work, _ = installed
    proc = _qtool(env, work, "--json", "quantize", "qwen2-vl-tiny", "--profile", "rtn-int4", "--out", "tiny-rtn")
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((work / "tiny-rtn" / "qtool.json").read_text())
    assert manifest["profile"]["_data"]["name"] == "rtn-int4"
    assert manifest["quantization_config"]["bits"] == 4
    assert list((work / "tiny-rtn").glob("*.safetensors"))

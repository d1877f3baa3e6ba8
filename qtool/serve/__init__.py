"""``serve``: an artifact behind vLLM's OpenAI-compatible server, run as a separate process in vLLM's own
environment (vLLM pins another torch and transformers than qtool; ``make serve-env`` builds it once per machine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from qtool import artifacts as registry
from qtool import fastest, machine, paths, profiles
from qtool.errors import QtoolError
from qtool.models.chat import ANSWER_TOKENS
from qtool.serve import client

VLLM_VERSION = "0.32.0"
Status = Callable[[str], None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vllm_env() -> Path:
    return Path(os.environ.get("QTOOL_VLLM_ENV", Path.home() / ".cache" / "qtool" / f"vllm-{VLLM_VERSION}"))


def vllm_python() -> Path:
    python = vllm_env() / "bin" / "python"
    if not python.is_file():
        raise QtoolError(f"no vLLM environment at {vllm_env()}",
                         "build it with `make serve-env` (once per machine), or point QTOOL_VLLM_ENV at one")
    return python


@dataclass(frozen=True)
class Served:
    """What ``serve`` starts: the folder vLLM loads and the name clients ask for."""
    folder: Path
    name: str
    profile: profiles.Profile


def refusal(profile: profiles.Profile, device: str = "cpu", tp: int = 1) -> tuple[str, str] | None:
    """Why vLLM cannot serve ``profile`` on ``device`` at tensor parallelism ``tp`` (problem, fix), or None."""
    reason = registry.kind_of(profile).vllm(profile, device)
    if reason is None and device == "cpu" and tp > 1 and not machine.vllm_avx512():
        # the torch.distributed fallback of the AVX2 build fails in the vision tower's all-gather ("A view was
        # created in no_grad mode ...")
        reason = ("vLLM's CPU build runs tensor parallelism only on AVX-512 CPUs, and this CPU has none",
                  "serve with --tp 1 here")
    return reason


def servable(model: str | Path, device: str = "cpu", tp: int = 1) -> Served:
    """The model folder vLLM can load, or a one-line reason it cannot (exit 2)."""
    folder, profile, _ = registry.describe(model)
    reason = refusal(profile, device, tp)
    if reason:
        raise QtoolError(f"vLLM cannot serve {folder.name} on {device}: {reason[0]}", reason[1])
    return Served(folder.absolute(), folder.name, profile)


def command_line(served: Served, port: int, tp: int, max_model_len: int) -> list[str]:
    return [str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server", "--model", str(served.folder),
            "--served-model-name", served.name, "--host", "127.0.0.1", "--port", str(port),
            "--tensor-parallel-size", str(tp), "--max-model-len", str(max_model_len), "--dtype", "bfloat16",
            "--limit-mm-per-prompt", json.dumps({"image": 1})]


def environment(tp: int) -> dict:
    """vLLM's CPU build: KV cache space in GiB, and one core per rank when tensor-parallel."""
    env = dict(os.environ, VLLM_CPU_KVCACHE_SPACE=os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"))
    for var in ("PYTHONPATH", "PYTHONHOME"):   # qtool's environment must not leak into vLLM's
        env.pop(var, None)
    if tp > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in env:
        env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(str(i % (os.cpu_count() or 1)) for i in range(tp))
    return env


class Server:
    """A running vLLM server; a context manager that stops it (SIGINT, then SIGKILL) on exit."""

    def __init__(self, served: Served, *, port: int = 8000, tp: int = 1, max_model_len: int = 2048,
                 log: Path | None = None, timeout: float = 900, status: Status | None = None):
        self.served, self.port, self.url = served, port, f"http://127.0.0.1:{port}"
        self.log = log or paths.cache() / "serve" / f"vllm-{port}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        say = status or (lambda _m: None)
        cmd = command_line(served, port, tp, max_model_len)
        say(f"starting vLLM {VLLM_VERSION} on {served.name} (tp {tp}); its log: {self.log}")
        with open(self.log, "wb") as sink:
            self.proc = subprocess.Popen(cmd, stdout=sink,
                                         stderr=subprocess.STDOUT, env=environment(tp), start_new_session=True)
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        say(f"ready: {self.url}/v1 (model name {served.name!r})")

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise RuntimeError(f"vLLM exited with {self.proc.returncode} before it was ready: {tail[0]}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=5) as reply:
                    if reply.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(2)
        raise RuntimeError(f"vLLM was not ready after {timeout:.0f} s (see {self.log})")

    def rss_mib(self) -> float:
        """Resident memory of the server and its workers."""
        import psutil

        root = psutil.Process(self.proc.pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def serve(model: str | Path, *, port: int = 8000, tp: int = 1, max_model_len: int = 2048, device: str = "cpu",
          status: Status | None = None) -> None:
    """Serve until vLLM exits or the user presses Ctrl-C (then stop it cleanly)."""
    served = servable(model, device, tp)
    with Server(served, port=port, tp=tp, max_model_len=max_model_len, status=status) as server:
        note = fastest.serving_advice(device, served.profile.name)
        if note and status:
            status(note)
        server.proc.wait()
        if server.proc.returncode:
            raise RuntimeError(f"vLLM exited with {server.proc.returncode} (see {server.log})")


class VLLMModel:
    """A consumer for the artifact registry's callers: the artifact served by vLLM, answering over HTTP."""

    def __init__(self, server: Server, concurrency: int = 8):
        self.server, self.concurrency = server, concurrency
        self.kernel = f"vLLM {VLLM_VERSION}"

    def answer(self, images, questions) -> list[str]:
        replies, _ = client.run_load(self.server.port, self.server.served.name, list(zip(images, questions)),
                                     self.concurrency, max_tokens=ANSWER_TOKENS)
        failed = [r.error for r in replies if r.error]
        if failed:
            raise RuntimeError(f"{len(failed)} of {len(replies)} requests to vLLM failed: {failed[0]}")
        return [r.text for r in replies]

"""Output folders that appear only when complete.

Work happens in a hidden sibling (``.NAME.partial-PID``); on success it is
renamed onto the target, so a crash, SIGKILL or Ctrl-C never leaves a
half-written folder under the name the user asked for. Leftover partials of
dead runs are removed by the next run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from qtool.errors import QtoolError


def check_target(out: Path, force: bool) -> None:
    """Fail early (before hours of work) if ``out`` cannot be written."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise QtoolError(f"output path {out} exists and is not a folder", "choose another --out")
    if out.exists() and not force:
        raise QtoolError(f"output folder {out} already exists", "pass --force to replace it or choose another --out")
    check_writable(out)


def check_writable(out: Path) -> None:
    """Create and remove a folder where ``out`` will go: the only test that holds on read-only and special
    filesystems (/proc, /sys) and for root, to whom ``os.access`` says yes everywhere."""
    parent = Path(out).absolute().parent
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise QtoolError(f"{probe} in the path of {out} is not a folder", "choose an --out inside a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".qtool-probe-", dir=probe))
    except OSError as e:
        raise QtoolError(f"cannot write to {probe} ({e.strerror})",
                         "choose an --out in a folder you can write to") from None


def _clean_stale(out: Path) -> None:
    for stale in out.parent.glob(f".{out.name}.partial-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if not (pid.isdigit() and _alive(int(pid))):
            shutil.rmtree(stale, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


@contextlib.contextmanager
def staged_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temp sibling of ``out``; rename it onto ``out`` if the block succeeds."""
    out = Path(out).absolute()
    check_target(out, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == 28:  # ENOSPC
            raise QtoolError(f"disk full while writing {out}", "free space or choose another --out") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(out)

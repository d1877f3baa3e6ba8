"""Send a noisy library's stdout/stderr to a log file, at the file-descriptor level.

GPTQModel prints banners, tables and its own progress bars; qtool's stdout
carries results only, so the engine's output goes to a log kept next to the
artifact. qtool's own progress draws on a terminal handle duplicated before
the redirect (see ``terminal_console``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def engine_scratch(folder: Path) -> Iterator[Path]:
    """Run a library inside ``folder``: its output goes to ``folder/engine.log`` and anything it writes
    relative to the working directory (GPTQModel creates ``./logs``) lands in ``folder``, not the user's cwd.
    Pass absolute paths to the library."""
    folder.mkdir(parents=True, exist_ok=True)
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        with engine_output_to(folder / "engine.log"):
            yield folder
    finally:
        os.chdir(cwd)


@contextlib.contextmanager
def engine_output_to(log: Path) -> Iterator[None]:
    """Redirect fds 1 and 2 into ``log`` (draw progress on a handle duplicated beforehand)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    with open(log, "ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved_out, 1)
            os.dup2(saved_err, 2)
            os.close(saved_out)
            os.close(saved_err)


def terminal_console():
    """A rich console on a duplicate of the current stderr, immune to later redirects."""
    from rich.console import Console

    return Console(file=os.fdopen(os.dup(2), "w", buffering=1), stderr=True)

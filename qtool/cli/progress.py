"""A per-layer progress bar with ETA, drawn on the real terminal once work actually starts."""

from __future__ import annotations

import contextlib

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from qtool.capture import terminal_console


@contextlib.contextmanager
def layer_progress(description: str):
    """Yield ``update(done, total)`` for the library to call; nothing is drawn until the first call,
    so input errors found before any work print their one line alone."""
    state: dict = {}

    def update(done: int, total: int) -> None:
        if "progress" not in state:
            progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                TextColumn("layers"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                console=terminal_console())
            progress.start()
            state.update(progress=progress, task=progress.add_task(description, total=total))
        state["progress"].update(state["task"], completed=done, total=total)

    try:
        yield update
    finally:
        if "progress" in state:
            state["progress"].stop()

"""The one way measured results are written: JSON + markdown table + PNG chart, atomically; and the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from qtool.outputs import staged_dir

RANDOM_NOTE = ("**Random weights (shape-faithful): speed and memory only.** Speed and memory do not depend on "
               "weight values; no accuracy can be read from this run.")


def markdown_table(rows: list[dict]) -> str:
    columns = list(rows[0]) if rows else []
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def finish_figure(fig, title: str, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, force: bool, stem: str, data: dict, markdown: str,
                  chart: Callable[[Path], None]) -> Path:
    """``out/{stem}.json``, ``out/table.md`` and ``out/chart.png``; the folder appears only when complete."""
    with staged_dir(out, force) as tmp:
        (tmp / f"{stem}.json").write_text(json.dumps(data, indent=2) + "\n")
        (tmp / "table.md").write_text(markdown)
        chart(tmp / "chart.png")
    return Path(out)

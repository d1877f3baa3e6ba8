"""What a release promises about behaviour: held-out answers recorded at release time, checked by verify.

``release`` answers a fixed set of held-out image questions with the float model and with every variant through
the variant's own consumer (transformers, llama.cpp, ONNX Runtime vision + the source's language model), and
records them in ``release.json``. ``verify`` asks again: a variant whose files hash right but whose weights were
damaged, or a consumer that no longer loads them the same way, answers differently and fails, named.
"""

from __future__ import annotations

import functools
from pathlib import Path

from qtool import artifacts as registry
from qtool import profiles
from qtool.calibration.images import load_image
from qtool.errors import QtoolError
from qtool.eval.dataset import TEST_SET, load_vqa

QUESTIONS = 20
# Kernels differ between CPUs and library builds, so a variant may break a near-tie differently on another
# machine; a damaged variant answers most questions differently.
MIN_SAME = 0.9


@functools.cache
def questions() -> tuple[list[str], list, list[str]]:
    """The release's held-out questions (ids, images, texts), read once per process."""
    items = load_vqa(TEST_SET, QUESTIONS)
    return [it.id for it in items], [load_image(it.image) for it in items], [it.question for it in items]


def ask(loaded) -> list[str]:
    """A loaded variant's answers to the release's held-out questions."""
    _, images, asked = questions()
    return loaded.answer(images, asked)


def answer(folder: Path, profile: profiles.Profile, source: Path) -> list[str]:
    return ask(registry.load(folder, profile, source))


def check(name: str, recorded: list[str], now: list[str]) -> str:
    same = sum(a == b for a, b in zip(recorded, now))
    if same < MIN_SAME * len(recorded):
        raise QtoolError(f"variant {name} answers {len(recorded) - same} of {len(recorded)} held-out questions "
                         "differently than when it was released", "its weights or its consumer changed; re-run "
                         "`qtool release`")
    return f"{same}/{len(recorded)}"

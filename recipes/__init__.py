"""Code only this repository's own recipes need: training the bundled tiny model and building the default
calibration set. Not part of the qtool wheel; run from the repository root (``python -m recipes...``)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

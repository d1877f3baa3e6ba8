"""Where qtool keeps things: data shipped inside the package, and the cache."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
PROFILES = Path(os.environ.get("QTOOL_PROFILES", PACKAGE / "profiles"))
CALIB_DATA = Path(os.environ.get("QTOOL_CALIB", PACKAGE / "calibration" / "default_set"))


def home() -> Path:
    return Path(os.environ.get("QTOOL_HOME", Path.home() / ".qtool"))


def cache() -> Path:
    return Path(os.environ.get("QTOOL_CACHE", home() / "cache"))

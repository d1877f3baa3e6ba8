"""Where qtool keeps things: bundled assets, the cache, the repo's data folders."""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
REPO = PACKAGE.parent
PROFILES = Path(os.environ.get("QTOOL_PROFILES", REPO / "profiles"))
CALIB_DATA = Path(os.environ.get("QTOOL_CALIB", REPO / "calib_data"))


def home() -> Path:
    return Path(os.environ.get("QTOOL_HOME", Path.home() / ".qtool"))


def cache() -> Path:
    return Path(os.environ.get("QTOOL_CACHE", home() / "cache"))

"""assetgen: declare AI-generated images once in assets.toml; build only what changed; never pay twice.

The command line (``assetgen``) is a thin layer over this library. Names are imported on first use,
so ``assetgen plan`` does not pay for the build machinery (asyncio, httpx, Pillow) it never runs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "BuildOptions": "commands.build", "build": "commands.build", "make_provider": "commands.build",
    "BuildReport": "engine.scheduler", "Controller": "engine.scheduler", "TargetResult": "engine.scheduler",
    "AssetgenError": "errors", "ManifestError": "errors", "Problem": "errors",
    "Manifest": "manifest.model", "Target": "manifest.model", "load": "manifest.loader",
    "Plan": "engine.plan", "TargetPlan": "engine.plan", "Project": "engine.project",
}
__all__ = [            # literal, so type checkers and linters see the public names (= sorted(_EXPORTS))
    "AssetgenError", "BuildOptions", "BuildReport", "Controller", "Manifest", "ManifestError", "Plan",
    "Problem", "Project", "Target", "TargetPlan", "TargetResult", "build", "load", "make_provider",
]
__version__ = "0.1.0"

if TYPE_CHECKING:
    from .commands.build import BuildOptions, build, make_provider
    from .engine.plan import Plan, TargetPlan
    from .engine.project import Project
    from .engine.scheduler import BuildReport, Controller, TargetResult
    from .errors import AssetgenError, ManifestError, Problem
    from .manifest.loader import load
    from .manifest.model import Manifest, Target


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'assetgen' has no attribute {name!r}")

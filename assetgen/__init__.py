"""assetgen: declare AI-generated images once in assets.toml; build only what changed; never pay twice.

The command line (``assetgen``) is a thin layer over this library.
"""

from .api import BuildOptions, build, make_provider
from .build import BuildReport, Controller, TargetResult
from .errors import AssetgenError, ManifestError, Problem
from .manifest import Manifest, Target, load
from .plan import Plan, TargetPlan
from .project import Project

__all__ = [
    "AssetgenError", "BuildOptions", "BuildReport", "Controller", "Manifest", "ManifestError", "Plan",
    "Problem", "Project", "Target", "TargetPlan", "TargetResult", "build", "load", "make_provider",
]
__version__ = "0.1.0"

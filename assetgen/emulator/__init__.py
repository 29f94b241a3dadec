"""``assetgen.testing.emulator`` under its old name, so ``from assetgen.emulator import ...`` still works.

A package rather than a module so that ``emulator.py`` shows as moved to ``testing/`` (git's rename
detection follows edits made on other branches); ``__main__`` keeps ``python -m assetgen.emulator``."""
from ..testing.emulator import *  # noqa: F403

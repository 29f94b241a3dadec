"""The ``assetgen`` command: click commands (``main``) and what they show a person (``reporters``:
plans, summaries, the live view). The only home of click and rich. Imports any layer below it;
nothing imports it but ``assetgen.__main__``."""

from .main import cli, main

__all__ = ["cli", "main"]

"""The ``assetgen`` command: click commands (``main``), how they run in a terminal (``runtime``: the
project, signals, the reporter), and what they show a person (``reporters``: plans, summaries, the live
view; ``rendering``: explain, gc, models). The only home of click and rich. Imports any layer below it;
nothing imports it but ``assetgen.__main__``."""

from .main import cli, main

__all__ = ["cli", "main"]

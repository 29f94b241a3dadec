"""Helpers shared by the tests (plain modules, imported as ``helpers.X``; ``conftest.py`` only declares
fixtures): ``project`` (a project folder driven through the CLI), ``images`` (small real image files),
``online`` (builds against the gateway emulator), ``s3server`` (a real S3 server for the remote cache)."""

"""Test doubles for code that uses assetgen, like ``httpx.MockTransport`` or ``click.testing``: the
gateway emulator (``emulator``), a real HTTP server on 127.0.0.1 with fault injection. Imports only
``catalog`` (and Pillow); nothing in the library imports it but the ``assetgen.emulator`` shim."""

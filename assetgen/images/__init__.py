"""Pixels: derivations (``derive``), offline placeholders (``placeholders``) and the check of a
downloaded image (``check``). The only home of Pillow in the library (with ``review``'s thumbnails
and ``testing``'s emulator). Imports nothing of assetgen but ``errors`` and ``catalog``."""

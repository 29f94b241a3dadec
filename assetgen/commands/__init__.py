"""One verb per module, as a library: ``build`` (``assetgen.build``, the public entry point), ``watch``,
``authoring`` (pick, reroll, contact sheets), ``gc`` and ``sync``. Policy lives here, not in ``cli``.
Imports ``review``, ``engine`` and the layers below; never ``cli``."""

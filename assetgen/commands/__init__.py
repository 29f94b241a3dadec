"""One verb per module, as a library: ``build`` (``assetgen.build``, the public entry point), ``watch``,
``authoring`` (pick, reroll, contact sheets), ``gc``, ``sync`` and ``init``. Policy lives here, not in
``cli``. Imports ``review``, ``engine`` and the layers below; never ``cli``."""

# Here, not in ``watch`` (which imports the build machinery): ``assetgen --help`` shows it.
DEFAULT_SETTLE = 0.4         # seconds the files must be quiet before a watch builds a change

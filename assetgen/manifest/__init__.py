"""``assets.toml`` → validated targets: the types (``model``), loading in three passes (``loader``:
shape with pydantic in ``schema``, meaning in ``resolve``, then the graph), TOML line numbers
(``positions``), edits that keep comments (``edits``) and the starter manifest (``starter``).
Imports ``state`` (atomic files) and ``images`` (derivation fields) below it, nothing above."""

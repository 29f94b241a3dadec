"""What lives on disk between runs: the lock file (``lockfile``), the content-addressed cache
(``store``: image objects) with its index (``index``), stat cache (``statcache``) and remembered parses
(``memos``), the journal of paid submissions (``journal``), atomic file writes (``atomic``) and TOML key
syntax (``tomlkeys``). Imports nothing of assetgen but ``errors``."""

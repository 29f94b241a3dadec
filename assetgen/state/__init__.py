"""What lives on disk between runs: the lock file (``lockfile``), the content-addressed cache and its
stat cache (``store``), the journal of paid submissions (``journal``), atomic file writes
(``atomic``) and TOML key syntax (``tomlkeys``). Imports nothing of assetgen but ``errors``."""

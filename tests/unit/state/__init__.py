"""Unit tests: one module of assetgen each, in-process, no CLI."""

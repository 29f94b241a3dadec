"""httpcore's per-request ``import sniffio`` must not search sys.path each time (providers.client)."""

from __future__ import annotations

import sys

import assetgen.providers.client  # noqa: F401  (the module under test: importing it is the fix)


def test_a_missing_sniffio_is_recorded_so_httpcore_does_not_search_for_it_per_request() -> None:
    from httpcore._synchronization import current_async_library

    if sys.modules.get("sniffio") is not None:
        return                          # installed: the import is cached anyway
    # Recorded as absent: `import sniffio` fails from sys.modules, without the ~60 µs path search.
    assert "sniffio" in sys.modules and sys.modules["sniffio"] is None
    assert current_async_library() == "asyncio"

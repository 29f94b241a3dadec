"""assetgen's benchmark suite: workload generators, a runner, and the table of figures.

``python -m benchmarks`` runs every benchmark (``--quick`` for smoke sizes); see ``benchmarks/README.md``.
Benchmarks measure the real CLI in subprocesses against generated projects and the gateway emulator;
they never assert on timing (the tests in ``tests/test_benchmarks.py`` check counters only).
"""

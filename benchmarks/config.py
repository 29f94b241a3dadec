"""Sizes and goals of every benchmark, for the full run and for ``--quick`` (the smoke size tests use)."""

from __future__ import annotations

from dataclasses import dataclass, field

# Goals from the issue (2-core machine, wall-clock medians including interpreter start).
NOOP_GOALS = {1000: 0.3, 10_000: 1.0}    # seconds; sizes up to 1,000 are held to the 1,000 goal
NOOP_MEMORY_MB = 200.0
FRESH_GOALS = {10_000: 1.0, 100_000: 10.0}   # fresh-clone `plan --check` (no .assetgen/), seconds
ONE_CHANGE_OVERHEAD = 1.2                # seconds on top of the one task
THROUGHPUT_FACTOR = 1.15                 # wall ≤ 1.15 × (⌈N/jobs⌉ × latency + one poll interval)


@dataclass
class Config:
    quick: bool = False
    seed: int = 1
    repeat: int = 5                                   # runs per no-op figure (median)
    noop_sizes: tuple[int, ...] = (1000, 2000, 5000, 10_000)
    one_change_size: int = 10_000
    one_change_edits: int = 5
    throughput_targets: int = 500
    throughput_latency: float = 1.0
    throughput_jobs: int = 32
    throughput_poll: float = 0.25
    throughput_runs: int = 3
    throughput_submit_latency: float = 0.0            # seconds the emulator takes to answer each submit
    watch_targets: int = 100
    watch_edits: int = 10
    restore_targets: int = 1000
    restore_runs: int = 3
    setup_jobs: int = 8
    online_setup_jobs: int = 32
    profile_top: int = 15
    peers: bool = True                                # time ninja and doit on the no-op workloads
    scale_sizes: tuple[int, ...] = (1000, 10_000, 100_000)   # `--only scale` (not in the default run)
    throughput_curve: bool = False                    # `--throughput-curve`: latency × jobs grid
    curve_latencies: tuple[float, ...] = (0.2, 1.0, 5.0)
    curve_jobs: tuple[int, ...] = (8, 32, 64)
    only: tuple[str, ...] = ()                        # run only these benchmarks (names in BENCHMARKS)
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def quick_config(cls, **overrides: object) -> Config:
        values: dict[str, object] = {
            "quick": True, "repeat": 3, "noop_sizes": (50, 100), "one_change_size": 50, "one_change_edits": 2,
            "throughput_targets": 20, "throughput_latency": 0.2, "throughput_poll": 0.05, "throughput_runs": 1,
            "watch_targets": 10, "watch_edits": 2, "restore_targets": 50, "restore_runs": 2, "profile_top": 15,
            "scale_sizes": (50, 200), "curve_latencies": (0.1, 0.2), "curve_jobs": (4, 8)}
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]

    def noop_goal(self, size: int) -> float | None:
        if size <= 1000:
            return NOOP_GOALS[1000]
        return NOOP_GOALS.get(size)


BENCHMARKS = ("noop", "one_change", "throughput", "watch", "restore", "images", "scale")
DEFAULT_BENCHMARKS = ("noop", "one_change", "throughput", "watch", "restore", "images")   # scale: asked for (--only)

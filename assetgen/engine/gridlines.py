"""A grid's cells in a build's report: one generation, so one line (``potions (4×4 grid, 16 cells): built``).

Each cell is a target of its own (its outputs, its lock entry, its result in ``--json``), but a person
reads a grid as one image: the lines of a grid's cells wait for the last of its cells in the build and
go out as one line per outcome (a cell that failed on its own still has its line), and reusing the
grid's image from the cache saves its price once, not once per cell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .events import EventKind
from .plan import grid_label

if TYPE_CHECKING:
    from .plan import TargetPlan


class TargetResult(Protocol):
    """What is read of a ``scheduler.TargetResult`` (which imports this module)."""

    @property
    def status(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def cost(self) -> float: ...


class GridLines:
    """Holds the lines of the grid cells of one build until each grid is done."""

    def __init__(self, stale: list[TargetPlan], emit: Callable[..., None]) -> None:
        self._expected = Counter(i.target.base for i in stale if i.target.grid is not None)
        self._labels = {i.name: grid_label(i.target.base, i.target.grid, i.target.grid[0] * i.target.grid[1])
                        for i in stale if i.target.grid is not None and self._expected[i.target.base] > 1}
        self._held: dict[str, list[tuple[TargetPlan, TargetResult]]] = {}
        self._saved: set[tuple[str, str]] = set()
        self._emit = emit

    def hold(self, item: TargetPlan, result: TargetResult, **data: Any) -> bool:
        """Keep ``item``'s line for its grid's (emitted with the grid's last cell); False when it is not
        one of several cells of a grid in this build (its line goes out as it is)."""
        base = item.target.base
        if item.target.grid is None or self._expected[base] < 2:
            return False
        held = self._held.setdefault(base, [])
        held.append((item, result))
        if len(held) == self._expected[base]:
            self._lines(base, **data)
        return True

    def flush(self, **data: Any) -> None:
        """The lines of grids not every cell of which finished (an interrupted or failed build)."""
        for base in list(self._held):
            self._lines(base, **data)

    def label(self, name: str) -> str | None:
        """The grid a cell's task events speak for (``potions (4×4 grid, 16 cells)``), or None."""
        return self._labels.get(name)

    def saved(self, item: TargetPlan, cost: float) -> float:
        """What reusing ``item``'s image saved: ``cost``, but once per grid image."""
        if item.target.grid is None:
            return cost
        first = (item.target.base, item.key) not in self._saved
        self._saved.add((item.target.base, item.key))
        return cost if first else 0.0

    def _lines(self, base: str, **data: Any) -> None:
        by_status: dict[str, list[tuple[TargetPlan, TargetResult]]] = {}
        for item, result in self._held.pop(base, []):
            by_status.setdefault(result.status, []).append((item, result))
        for status, cells in by_status.items():
            # The cell that paid speaks for the grid (its task, "placeholder"); the others share it.
            item, result = next(((i, r) for i, r in cells if not i.same_grid), cells[0])
            label = grid_label(base, item.target.grid or (0, 0), len(cells)) if len(cells) > 1 else item.name
            self._emit(EventKind(status), item.name, result.message,
                       **{**data, "cost": sum(r.cost for _i, r in cells), "label": label, "cells": len(cells)})

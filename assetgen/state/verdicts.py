"""Review verdicts as the lock records them: who approved or rejected which output bytes, and when.

A verdict names the hashes of the outputs it was given for; it holds only while the target's locked
outputs are exactly those (``review_state``). A new generation, a new pick or a retouch changes a hash,
and the verdict lapses: the target needs review again. Nothing here decides policy (``commands.review``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

VERDICTS = ("approved", "rejected")
_SHA256_RE = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Verdict:
    verdict: str                          # approved | rejected
    outputs: tuple[tuple[str, str], ...]  # (path, SHA-256) of what was reviewed
    by: str = ""
    at: str = ""
    note: str = ""

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {"verdict": self.verdict, "by": self.by, "at": self.at,
                                "outputs": {path: sha for path, sha in self.outputs}}
        if self.note:
            data["note"] = self.note
        return data

    @classmethod
    def from_toml(cls, data: Any) -> Verdict:
        if not isinstance(data, dict) or data.get("verdict") not in VERDICTS:
            raise ValueError(f"review {data!r} is not a verdict ({' or '.join(VERDICTS)})")
        outputs = data.get("outputs", {})
        if not isinstance(outputs, dict) or not all(isinstance(s, str) and _SHA256_RE.fullmatch(s)
                                                    for s in outputs.values()):
            raise ValueError("review outputs must map output paths to 64 hex digits")
        return cls(verdict=data["verdict"], outputs=tuple(sorted(outputs.items())), by=str(data.get("by", "")),
                   at=str(data.get("at", "")), note=str(data.get("note", "")))

    def to_json(self, state: str) -> dict[str, Any]:
        return {"state": state, "verdict": self.verdict, "by": self.by, "at": self.at, "note": self.note}


def review_state(verdict: Verdict | None, outputs: dict[str, str]) -> str:
    """approved | rejected | lapsed (given for other bytes than ``outputs``, path → hash) | unreviewed."""
    if verdict is None:
        return "unreviewed"
    if dict(verdict.outputs) != outputs:
        return "lapsed"
    return verdict.verdict

"""The exception tree. Every message is written for the person at the terminal.

    AssetgenError                 exit 1 unless said otherwise; the CLI prints "Error: <message>"
    ├── UsageError                exit 2: bad command-line use, missing configuration (e.g. no API key)
    ├── ManifestError             exit 2: every problem in assets.toml at once (a list of Problem)
    ├── StateError                exit 2: a corrupt or too-new lock, cache or journal file
    ├── BuildLocked               another build holds the manifest's lock and we gave up waiting
    ├── BudgetExceeded            the estimate is above --budget / [settings] budget
    ├── BuildFailed               some targets failed (carries the per-target results)
    └── GatewayError              the gateway said no, or could not be reached
        ├── InvalidRequest        400: this target's parameters; never retried
        ├── AuthenticationFailed  401: stop the whole build at once
        ├── InsufficientBalance   402: stop submitting, let in-flight tasks finish
        ├── TaskNotFound          404: a resumed task the gateway no longer knows (lost)
        ├── RateLimited           429 after every retry
        ├── ServerError           5xx after every retry
        ├── GatewayUnreachable    connection errors/timeouts after every retry
        ├── SubmissionUncertain   a submit timed out after being sent: never blindly resent
        ├── TaskFailed            the task ended `failed` (server's message)
        └── DownloadFailed        a result could not be downloaded (expired URL, network)

Library code raises these; only ``cli`` turns them into output and exit codes. Anything else that
escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class AssetgenError(Exception):
    """Base class: ``str(exc)`` is shown to the user as it is."""

    exit_code: int = 1


class UsageError(AssetgenError):
    exit_code = 2


class StateError(AssetgenError):
    exit_code = 2


class BuildLocked(AssetgenError):
    pass


class BudgetExceeded(AssetgenError):
    pass


class BuildFailed(AssetgenError):
    pass


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the manifest, located as precisely as we can."""

    message: str
    target: str | None = None
    field: str | None = None
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        parts = []
        if self.target:
            parts.append(f"target '{self.target}'")
        if self.field:
            parts.append(f"field '{self.field}'")
        subject = (", ".join(parts) + ": ") if parts else ""
        return f"{where}: {subject}{self.message}"


class ManifestError(AssetgenError):
    exit_code = 2

    def __init__(self, file: str, problems: list[Problem]) -> None:
        self.file = file
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.target or "", p.field or ""))
        super().__init__(self.render())

    def render(self, outcome: str = "nothing was built") -> str:
        """The message, with what the command did not do (``plan`` builds nothing to begin with)."""
        count = len(self.problems)
        head = f"{self.file}: {count} problem{'s' if count != 1 else ''} in the manifest; {outcome}"
        return "\n".join([head, *("  " + p.render(self.file) for p in self.problems)])


class GatewayError(AssetgenError):
    """An answer (or silence) from the gateway. ``message`` is the server's own words when it sent any."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class InvalidRequest(GatewayError):
    pass


class AuthenticationFailed(GatewayError):
    pass


class InsufficientBalance(GatewayError):
    pass


class TaskNotFound(GatewayError):
    pass


class RateLimited(GatewayError):
    pass


class ServerError(GatewayError):
    pass


class GatewayUnreachable(GatewayError):
    pass


class SubmissionUncertain(GatewayError):
    pass


class TaskFailed(GatewayError):
    pass


class DownloadFailed(GatewayError):
    pass


def listing(items: Any, limit: int = 12) -> str:
    """``a, b, c, … (N more)``: a list of valid choices short enough for one message."""
    names = list(items)
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    import difflib   # only errors need it

    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class InvalidImage(DownloadFailed):
    """Downloaded bytes are not a valid image of an accepted format and bounded size (code
    "invalid_image"). Nothing of it was cached, written or locked."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = "invalid_image") -> None:
        super().__init__(message, status=status, code=code)


class ImageSizeMismatch(DownloadFailed):
    """A valid image whose pixel size or aspect ratio is not the one asked for (code "size_mismatch").
    It is kept in the cache objects (it was paid for) but never written as an output."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = "size_mismatch") -> None:
        super().__init__(message, status=status, code=code)


class JournalUnwritable(StateError):
    """The journal cannot record a submission (read-only folder, full disk): nothing is submitted."""


class UncertainSubmission(GatewayError):
    """A key whose earlier submission may have been paid for without its task id: not resubmitted."""


class IncompleteResult(DownloadFailed):
    """A completed (so paid) task whose result holds fewer images than it was asked for, or none (code
    "no_image"). Handled as a failed download: the task stays in the journal, a later build asks the
    gateway again for free, and after a few builds the record is closed (the key is then uncertain)."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = "no_image") -> None:
        super().__init__(message, status=status, code=code)


# ANSI escape sequences (CSI, OSC, and two-byte ESC forms), then every other control character,
# bidirectional overrides included: text from a gateway or a file must not move the cursor, recolour
# the terminal or fake lines of our own output.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]+")


def safe_text(text: object, limit: int = 500) -> str:
    """``text`` fit to show or store: escapes and control characters removed (a line break becomes a
    space), at most ``limit`` characters. Rich markup is escaped where it is rendered, not here."""
    clean = _CONTROL.sub(" ", _ANSI.sub("", str(text))).strip()
    return clean if len(clean) <= limit else clean[:limit - 1] + "…"


class LimitExceeded(BudgetExceeded):
    """A build that would cross a hard limit of ``[settings] limits`` (total, month, day): nothing is
    submitted."""


class ConfirmationDeclined(BudgetExceeded):
    """The person at the terminal answered no to spending: nothing is submitted."""


class BatchPending(GatewayError):
    """``build --batch --no-wait``: the target is in a batch job created and journaled, not waited for;
    the next ``assetgen build`` collects it (not a failure)."""

    def __init__(self, message: str, *, task_id: str) -> None:
        super().__init__(message, code="pending")
        self.task_id = task_id


class ManifestNotFound(UsageError):
    """No ``-f``, no ``ASSETGEN_FILE``, and no ``assets.toml`` in the working folder or above it."""

    exit_code = 2

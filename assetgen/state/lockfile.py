"""``assets.lock``: what was built, from which spec, into which files. Committed with the images.

The file is TOML written with tomli-w, keys sorted at every level, so it is byte-for-byte stable
across runs and diffs well; it is rewritten atomically and only when its content changes.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import tomli_w

from ..errors import StateError
from . import fasttoml
from .atomic import atomic_write, expect_file
from .tomlkeys import split_key
from .verdicts import Verdict

if TYPE_CHECKING:
    from .memos import Memo, Memos

LOCK_VERSION = 1
# How many entries may differ from the memo (.assetgen/stat-parsed/) before it is rewritten: parsing one
# costs ~40 µs, rewriting the memo of 10,000 ~150 ms, so a build that changes a few leaves it be.
REMEMBER_AFTER = 256
_SHA256_RE = re.compile(r"[0-9a-f]{64}")
HEADER = "# assets.lock: written by assetgen. Commit it with the images; do not edit by hand.\n"


@dataclass(frozen=True)
class LockedOutput:
    path: str        # relative to the manifest's folder, '/' separators
    sha256: str      # of the file as written
    size: int
    source: str = ""         # SHA-256 of the generated image it was made from ("" = the same file)
    derivation: str = ""     # derivation key (source image's hash + pick/resize/format…); "" = as generated
    size_note: str = ""      # the source was served at a size other than the catalogue's (within 5 %)
    generated: str = ""      # retouched (``adopt``): SHA-256 of the output as assetgen wrote it ("" = not)

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {"path": self.path, "sha256": self.sha256, "size": self.size}
        if self.source and self.source != self.sha256:
            data["source"] = self.source
        if self.derivation:
            data["derivation"] = self.derivation
        if self.size_note:
            data["size_note"] = self.size_note
        if self.generated:
            data["generated"] = self.generated
        return data

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> LockedOutput:
        output = cls(path=data["path"], sha256=data["sha256"], size=int(data["size"]),
                     source=data.get("source", data["sha256"]), derivation=data.get("derivation", ""),
                     size_note=str(data.get("size_note", "")), generated=data.get("generated", ""))
        # Hashes name files in the cache: anything but 64 hex digits could name a path outside it.
        for name in ("sha256", "source", "generated"):
            value = getattr(output, name)
            if name == "generated" and value == "":
                continue
            if not (isinstance(value, str) and _SHA256_RE.fullmatch(value)):
                raise ValueError(f"output {output.path!r}: {name} {value!r} is not 64 hex digits")
        if not isinstance(output.path, str) or "\0" in output.path:
            raise ValueError(f"output path {output.path!r} is not a path")
        return output


@dataclass(frozen=True)
class LockEntry:
    key: str
    model: str                       # the model id submitted
    outputs: tuple[LockedOutput, ...]
    spec: dict[str, Any]             # the canonical fields that made the key (for "what changed")
    cost: float = 0.0
    task_id: str | None = None
    built_at: str = ""
    placeholder: bool = False
    review: Verdict | None = None    # approved or rejected, for the output hashes it names

    def to_toml(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "key": self.key, "model": self.model, "cost": self.cost, "built_at": self.built_at,
            "placeholder": self.placeholder, "spec": self.spec,
            "outputs": [o.to_toml() for o in self.outputs],
        }
        if self.task_id:
            data["task_id"] = self.task_id
        if self.review is not None:
            data["review"] = self.review.to_toml()
        return data

    @classmethod
    def from_toml(cls, data: dict[str, Any]) -> LockEntry:
        if not _SHA256_RE.fullmatch(str(data["key"])):
            raise ValueError(f"key {data['key']!r} is not 64 hex digits")
        return cls(
            key=str(data["key"]), model=str(data["model"]),
            outputs=tuple(LockedOutput.from_toml(o) for o in data["outputs"]),
            spec=dict(data["spec"]), cost=float(data.get("cost", 0.0)), task_id=data.get("task_id"),
            built_at=str(data.get("built_at", "")), placeholder=bool(data.get("placeholder", False)),
            review=Verdict.from_toml(data["review"]) if "review" in data else None)


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _entries(raw: bytes, path: Path) -> dict[str, LockEntry]:
    if not raw.strip():
        raise StateError(f"{path} is empty. Restore it from git (git checkout -- {path.name}); deleting it "
                         f"makes every target look new.")
    try:
        data = fasttoml.loads(raw.decode("utf-8"))      # (tomllib's result and errors, faster)
        version = data.get("version")
        if version is None:
            raise StateError(f"{path} has no format version (`version = {LOCK_VERSION}`), so it is not a lock "
                             f"assetgen wrote. Restore it from git (git checkout -- {path.name}); deleting it "
                             f"makes every target look new.")
        if version != LOCK_VERSION:
            raise StateError(f"{path} has format version {version!r}; this assetgen reads version "
                             f"{LOCK_VERSION}. Upgrade assetgen, or delete the lock to start afresh.")
        return {name: LockEntry.from_toml(item) for name, item in data.get("targets", {}).items()}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, AttributeError,
            OverflowError, RecursionError) as exc:
        hint = " (it holds git conflict markers: resolve the conflict, or take either side and run " \
               "`assetgen build`)" if b"<<<<<<<" in raw else ""
        raise StateError(f"{path} is damaged and cannot be read: {exc}{hint}. Restore it from git "
                         f"(git checkout -- {path.name}); deleting it makes every target look new.") from exc


def _sheets(raw: bytes, path: Path) -> dict[str, dict[str, Any]]:
    """The ``[sheets.*]`` records, from the text before the first target entry (where ``render`` puts
    them); each names files by 64-hex hashes, or the lock is damaged."""
    if b"[sheets." not in raw:
        return {}
    text = raw.decode("utf-8", "replace")
    head = text[:match.start()] if (match := _HEADER_RE.search("\n" + text)) else text
    try:
        found = tomllib.loads(head).get("sheets", {})
        for name, record in found.items():
            if not _SHA256_RE.fullmatch(str(record["key"])) or not all(
                    _SHA256_RE.fullmatch(str(o["sha256"])) and isinstance(o["path"], str) for o in record["outputs"]):
                raise ValueError(f"sheet {name!r}: not a record assetgen wrote")
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"{path} is damaged and cannot be read: {exc}. Restore it from git "
                         f"(git checkout -- {path.name})") from exc
    return {str(k): dict(v) for k, v in found.items()}


Pairs = dict[str, tuple["LockEntry", str]]      # entry name → (the entry, its text in the file)


def _digest(text: str | bytes) -> bytes:
    return hashlib.blake2b(text.encode("utf-8") if isinstance(text, str) else text, digest_size=16).digest()


def _entries_reusing(raw: bytes, remembered: Any) -> tuple[dict[str, LockEntry], Pairs] | None:
    """The entries of ``raw`` (and each one's text, when the file had to be cut), reusing the
    remembered entries (``Lock.remember``) whose text is unchanged: only changed entries are parsed,
    each alone. None when the text cannot be read this way (the caller parses the whole, which also
    reports any damage). Texts are remembered by digest: the memo stays small and quick to load."""
    if not (isinstance(remembered, tuple) and len(remembered) == 3):
        return None
    old_digest, old_head, old_entries = remembered
    if _digest(raw) == old_digest:
        return {name: entry for name, (entry, _d) in old_entries.items()}, {}
    try:
        head, chunks, count = _split(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return None
    if head != old_head or count != len(chunks):       # another version line, or an entry twice
        return None
    entries: dict[str, LockEntry] = {}
    pairs: Pairs = {}
    for name, chunk in chunks.items():
        old = old_entries.get(name)
        if old is not None and old[1] == _digest(chunk):
            entries[name] = old[0]
        else:
            # Parsed alone, it must hold exactly itself: then it ends outside any value, and the cut
            # before the next entry was at a real header.
            try:
                data = fasttoml.loads(chunk)
                if list(data) != ["targets"] or list(data["targets"]) != [name]:
                    return None
                entries[name] = LockEntry.from_toml(data["targets"][name])
            except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError):
                return None
        pairs[name] = (entries[name], chunk)
    return entries, pairs


class LockMemo:
    """The lock's speed cache: its parsed entries, remembered in ``stat-parsed/`` with each entry's text
    (by digest), so a load parses only the entries whose text changed (a build changes a few of
    thousands). The memo's head carries assetgen's code stamp (``memos``)."""

    def __init__(self, memo: Memo) -> None:
        self._memo = memo
        self._held: dict[str, LockEntry] = {}     # the entries the memo holds now

    def read(self, raw: bytes) -> tuple[dict[str, LockEntry], Pairs] | None:
        """The entries of the file's bytes ``raw`` (see ``_entries_reusing``), or None: parse it whole."""
        remembered = self._memo.load()
        found = _entries_reusing(raw, remembered)
        held = remembered[2] if found is not None and remembered is not None else {}    # a 3-tuple when found
        self._held = {name: entry for name, (entry, _d) in held.items()}
        return found

    def remember(self, written: bytes, now: dict[str, LockEntry]) -> None:
        """Let the memo hold ``now``, the entries of the file's bytes ``written``, if more than
        ``REMEMBER_AFTER`` of them differ from what it holds (each would be parsed again next time)."""
        held = self._held
        behind = sum(1 for name, entry in now.items() if held.get(name) is not entry) + \
            sum(1 for name in held if name not in now)
        if behind <= REMEMBER_AFTER:
            return
        cut = _consistent(written.decode("utf-8"), now)
        if cut is None:
            return                  # not a file this memo can vouch for: every load parses it whole
        head, chunks = cut
        pairs = {name: (now[name], _digest(chunk)) for name, chunk in chunks.items()}   # in file order
        self._memo.save((_digest(written), head, pairs))
        self._held = dict(now)


# A "[targets.NAME]" or "[targets.NAME.sub]" header line (not "[[targets.NAME.outputs]]"), as tomli_w
# writes it or as a hand edit or a formatter may leave it (indented, a comment after it, CRLF). A line
# inside a multi-line string can look like one too: callers check what they cut (``_consistent``).
_HEADER_RE = re.compile(r"\n[ \t]*\[targets\.([^\n]+?)\][ \t]*(?:#[^\n]*)?(?=\r?\n|$)")


def _split(text: str) -> tuple[str, dict[str, str], int]:
    """(the text before the first entry, each ``[targets.NAME]`` entry's text from its header to the
    blank line before the next entry, how many entry headers there were)."""
    starts: list[tuple[int, str]] = []
    for match in _HEADER_RE.finditer("\n" + text):          # offsets: the header's own in ``text``
        key = match.group(1)
        if '"' in key or "'" in key:
            path = split_key(key)
        elif "." in key:
            continue                            # a sub-table like [targets.x.spec] belongs to x
        else:
            path = (key.strip(),)
        if len(path) == 1:
            starts.append((match.start(), path[0]))
    ends = [start for start, _name in starts[1:]] + [len(text)]
    chunks = {name: text[start:end].rstrip("\n") + "\n" for (start, name), end in zip(starts, ends, strict=True)}
    return text[:starts[0][0]] if starts else text, chunks, len(starts)


def _consistent(text: str, names: Any) -> tuple[str, dict[str, str]] | None:
    """(the text before the entries, each entry's text), if cutting ``text`` found exactly the entries
    ``names`` (those a full parse gave), each once; otherwise None (a header it did not recognise, one
    inside a string…)."""
    head, chunks, count = _split(text)
    return (head, chunks) if count == len(chunks) and chunks.keys() == set(names) else None


@dataclass
class Lock:
    path: Path
    entries: dict[str, LockEntry] = field(default_factory=dict)
    _written: bytes | None = None     # what is on disk now, so unchanged content is never rewritten
    # Each entry's rendered text, reused while the entry object is unchanged: a build saves the lock
    # after every target, and re-rendering thousands of entries each time made big builds quadratic.
    _chunks: Pairs = field(default_factory=dict, repr=False)
    _loaded: dict[str, LockEntry] = field(default_factory=dict, repr=False)   # entries as read from disk
    saved: bool = False                                                         # written by this process
    _memo: LockMemo | None = field(default=None, repr=False)     # where the parsed entries are remembered
    _on_disk: dict[str, LockEntry] = field(default_factory=dict, repr=False)      # what _written holds
    # Sprite sheets (``engine.sheets``): name → {key, outputs: [{path, sha256, size}]}. Written before
    # the targets (tomli_w's sorted order), so the per-entry cutting of [targets.*] never sees them.
    sheets: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __repr__(self) -> str:           # short: the default one lists every entry
        return f"Lock({str(self.path)!r}, {len(self.entries)} entries)"

    @property
    def written(self) -> bytes | None:
        """The file's bytes as this object last read or wrote them."""
        return self._written

    @classmethod
    def load(cls, path: Path, *, memo: Memos | None = None) -> Lock:
        """Read the lock. ``memo`` (the cache's memos) remembers its entries with their text, so an
        unchanged entry is not parsed again (``LockMemo``)."""
        expect_file(path, "the lock file")      # a folder or a FIFO here: an error, not a hang
        found_memo = memo.memo(path) if memo is not None else None
        lock_memo = LockMemo(found_memo) if found_memo is not None else None
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return cls(path=path, _memo=lock_memo)
        except OSError as exc:
            raise StateError(f"{path}: cannot read the lock: {exc.strerror}") from None
        found = lock_memo.read(raw) if lock_memo is not None else None
        entries, pairs = found if found is not None else (_entries(raw, path), {})
        lock = cls(path=path, entries=entries, _written=raw, _loaded=dict(entries), _chunks=pairs,
                   _memo=lock_memo, _on_disk=dict(entries), sheets=_sheets(raw, path))
        lock.remember()
        return lock

    def remember(self) -> None:
        """Let the memo hold the entries as on disk now (``LockMemo.remember``)."""
        if self._memo is not None and self._written is not None:
            self._memo.remember(self._written, self._on_disk)

    def render(self) -> bytes:
        """The file's bytes: what ``tomli_w`` writes for the whole sorted document, built per entry."""
        if self._written is not None and not self._chunks:
            # Reuse each entry's text as it stands in the file: saving after one target of 10,000
            # then renders one entry, not all of them.
            cut = _consistent(self._written.decode("utf-8"), self._loaded)
            for name, text in (cut[1] if cut else {}).items():   # paired with the entry read from it
                self._chunks[name] = (self._loaded[name], text)
        parts = [HEADER, f"version = {LOCK_VERSION}\n"]
        if self.sheets:
            parts.append("\n" + tomli_w.dumps(_sorted({"sheets": self.sheets})))
        for name in sorted(self.entries):
            entry = self.entries[name]
            cached = self._chunks.get(name)
            if cached is None or cached[0] is not entry:
                cached = (entry, tomli_w.dumps(_sorted({"targets": {name: entry.to_toml()}})))
                self._chunks[name] = cached
            parts.append("\n" + cached[1])
        return "".join(parts).encode("utf-8")

    def save(self) -> bool:
        """Write the lock if its content changed. Returns whether it wrote."""
        data = self.render()
        if data == self._written:
            return False
        atomic_write(self.path, data, durable=True)
        self._written = data
        self._on_disk = dict(self.entries)
        self.saved = True
        return True

    def unchanged_on_disk(self) -> bool:
        """True if the file is still the one this object read or wrote (nobody else wrote it since)."""
        try:
            return self.path.read_bytes() == self._written
        except FileNotFoundError:
            return self._written is None


def entry_text(name: str, entry: LockEntry) -> str:
    """One target's text as ``Lock.render`` writes it (``[targets.NAME]`` and its sub-tables), for tools that
    assemble a lock from entries of several files (``commands.merge_lock``)."""
    return tomli_w.dumps(_sorted({"targets": {name: entry.to_toml()}}))

"""``assets.toml`` → a validated ``Manifest`` of resolved ``Target``s in dependency order.

Loading has three passes, and every problem from every pass is reported together (``ManifestError``):

1. shape: the standard library's TOML parser, then pydantic models with unknown keys forbidden;
2. meaning (``resolve``): matrix rows expanded, fields merged (defaults < style < target < profile) and
   checked against the model catalog, references (files, ``@targets``, URLs) and output paths;
3. graph: ``@target`` references form a DAG (cycles are named) and targets are ordered topologically.

Every problem carries the target, the field and the TOML line (``tomlpos``).
"""

from __future__ import annotations

import difflib
import os
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt, conint, conlist

from . import catalog
from .derive import Derivation
from .errors import ManifestError, Problem
from .tomlpos import LineIndex

if TYPE_CHECKING:
    from .store import StatCache

NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_SEED = 2**31 - 1


# --- pass 1: shape ---------------------------------------------------------------------------------

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SettingsModel(_Strict):
    out_dir: StrictStr = "assets/generated"
    jobs: PositiveInt = 8
    budget: NonNegativeFloat | None = None
    provider: Literal["gateway", "offline"] = "gateway"
    reference_base_url: StrictStr | None = None
    poll_interval: PositiveFloat = 3.0      # seconds between polls of one task (jittered ±33%)
    task_timeout: PositiveFloat = 600.0     # give up waiting on one task after this many seconds


class KeyOutModel(_Strict):
    color: StrictStr = "#ffffff"
    tolerance: conint(strict=True, ge=0, le=255) = 12  # type: ignore[valid-type]


class DeriveModel(_Strict):
    """Post-processing fields: made locally from the generated image, never paid for."""

    resize: conlist(conint(strict=True, ge=1, le=16384), min_length=2, max_length=2) | None = None  # type: ignore[valid-type]
    fit: Literal["cover", "contain", "stretch"] | None = None
    format: Literal["png", "webp", "jpg"] | None = None
    quality: conint(strict=True, ge=1, le=100) | None = None  # type: ignore[valid-type]
    background: StrictStr | None = None
    key_out: KeyOutModel | None = None


class FieldsModel(DeriveModel):
    """Fields a target may set and ``[defaults]``, ``[styles.*]`` and ``[profiles.*]`` may provide."""

    model: StrictStr | None = None
    action: StrictStr | None = None
    aspect_ratio: StrictStr | None = None
    resolution: StrictStr | None = None
    n: PositiveInt | None = None
    candidates: PositiveInt | None = None
    seed: StrictInt | None = Field(default=None, ge=-1, le=MAX_SEED)
    references: list[StrictStr] | None = None
    google_search: StrictBool | None = None
    google_image_search: StrictBool | None = None
    official_fallback: StrictBool | None = None


class StyleModel(FieldsModel):
    prompt: StrictStr | None = None          # a fragment appended to the target's prompt


class ProfileModel(FieldsModel):
    out_dir: StrictStr | None = None         # default: <out_dir>/<profile>


class OutputModel(DeriveModel):
    output: StrictStr


class TargetModel(FieldsModel):
    prompt: StrictStr
    output: StrictStr | None = None
    outputs: list[OutputModel] | None = None
    style: StrictStr | None = None
    matrix: dict[str, list[StrictStr | StrictInt]] | None = None
    pick: PositiveInt | None = None


class CacheModel(_Strict):
    remote: StrictStr | None = None
    remote_options: dict[str, Any] = {}


class DocumentModel(_Strict):
    settings: SettingsModel = SettingsModel()
    defaults: FieldsModel = FieldsModel()
    styles: dict[str, StyleModel] = {}
    profiles: dict[str, ProfileModel] = {}
    cache: CacheModel = CacheModel()
    targets: dict[str, TargetModel] = {}


SECTION_MODELS: dict[str, type[BaseModel]] = {
    "settings": SettingsModel, "defaults": FieldsModel, "styles": StyleModel, "profiles": ProfileModel,
    "cache": CacheModel, "targets": TargetModel,
}


# --- resolved manifest -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    raw: str                                   # as written in the manifest
    kind: Literal["file", "target", "url"]
    value: str                                 # manifest-relative posix path, target name, or URL
    path: Path | None = None                   # absolute path of a file reference


@dataclass(frozen=True)
class Output:
    path: str                                  # manifest-relative posix path
    source: int                                # which generated image (0-based) it is made from
    derivation: Derivation                     # how (identity: the generated JPEG as it is)


@dataclass(frozen=True)
class Target:
    name: str
    prompt: str                                # composed: target prompt, then the style's fragment
    model: str
    action: str
    aspect_ratio: str
    resolution: str
    n: int                                     # images generated by one task (candidates count here)
    seed: int
    references: tuple[Reference, ...]
    google_search: bool
    google_image_search: bool
    official_fallback: bool
    outputs: tuple[Output, ...]
    base: str = ""                             # the [targets.X] table it comes from (matrix rows share it)
    candidates: bool = False                   # n images are alternatives; outputs come from `pick`
    pick: int = 1
    style: str | None = None
    style_digest: str | None = None

    @property
    def spec_model(self) -> catalog.Model:
        return catalog.get(self.model)

    @property
    def size(self) -> tuple[int, int]:
        return catalog.pixel_size(self.aspect_ratio, self.resolution)

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(r.value for r in self.references if r.kind == "target")

    @property
    def output_paths(self) -> tuple[str, ...]:
        return tuple(o.path for o in self.outputs)


@dataclass(frozen=True)
class Settings:
    out_dir: str                               # manifest-relative posix path
    jobs: int
    budget: float | None
    provider: str
    reference_base_url: str | None
    poll_interval: float
    task_timeout: float


@dataclass(frozen=True)
class CacheSettings:
    remote: str | None = None
    remote_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    path: Path
    settings: Settings
    targets: dict[str, Target]                 # topological order: upstream before downstream
    lines: LineIndex = field(repr=False)
    groups: dict[str, list[str]] = field(default_factory=dict)   # matrix target → its rows
    profile: str | None = None
    profiles: tuple[str, ...] = ()
    cache: CacheSettings = field(default_factory=CacheSettings)

    @property
    def root(self) -> Path:
        return self.path.parent

    def line_of(self, target: str, fieldname: str | None = None) -> int | None:
        base = self.targets[target].base if target in self.targets else target
        return self.lines.line(("targets", base) + ((fieldname,) if fieldname else ()))

    def expand(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """Target names with matrix targets replaced by their rows; unknown names are errors."""
        unknown = [n for n in names if n not in self.targets and n not in self.groups]
        if unknown:
            known = [n for n in self.targets if n not in self.groups] + list(self.groups)
            raise ManifestError(str(self.path), [
                Problem(f"no such target{_did_you_mean(n, known)}; known targets: {_listing(known)}", target=n)
                for n in unknown])
        return [row for n in names for row in (self.groups.get(n) or [n])]

    def select(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """The named targets (matrix names select all rows) and everything they depend on, in build order."""
        wanted: set[str] = set()
        stack = self.expand(names)
        while stack:
            name = stack.pop()
            if name not in wanted:
                wanted.add(name)
                stack.extend(self.targets[name].upstream)
        return [n for n in self.targets if n in wanted]


def _listing(items: Any, limit: int = 12) -> str:
    names = list(items)
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def _did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# --- loading ---------------------------------------------------------------------------------------

def load(path: str | os.PathLike[str], *, profile: str | None = None, memo: StatCache | None = None) -> Manifest:
    """Read, validate and resolve a manifest. Raises ``ManifestError`` listing every problem.

    ``memo`` (the stat cache) remembers the TOML parse of an unchanged file.
    """
    file = Path(path)
    shown = str(path)
    try:
        if memo is not None:
            text, data = memo.parsed(file.resolve(), _toml_or_none)
            if data is not None:
                return parse(text, file.resolve(), shown=shown, profile=profile, data=data)
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(shown, [Problem(
            "file not found; run `assetgen init` to write a starter manifest, or pass -f PATH")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(shown, [Problem(f"cannot read the file: {exc}")]) from None
    return parse(text, file.resolve(), shown=shown, profile=profile)


def _toml_or_none(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None               # parse() reports it, with its line


def parse(text: str, path: Path, *, shown: str | None = None, profile: str | None = None,
          data: dict[str, Any] | None = None) -> Manifest:
    """Validate manifest ``text`` as if it were the file at ``path`` (references resolve beside it).

    With ``profile``, the fields of ``[profiles.<profile>]`` override every target's, and outputs go
    to the profile's own folder.
    """
    from .resolve import resolve   # resolve needs this module's types; it is pass 2 of this function

    shown = shown or str(path)
    try:
        data = data if data is not None else tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise ManifestError(shown, [Problem(
            f"not valid TOML: {exc}", line=int(match.group(1)) if match else None)]) from None
    lines = LineIndex(text)
    problems: list[Problem] = []
    doc, broken = _validate_shape(data, lines, problems)
    settings = _settings(doc.settings if doc else SettingsModel(), lines, problems)
    targets, groups = resolve(doc, data, broken, path.parent, settings, lines, problems, profile)
    ordered = _order(targets, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    assert doc is not None
    _check_cache(doc.cache, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    cache = CacheSettings(remote=doc.cache.remote, remote_options=dict(doc.cache.remote_options))
    return Manifest(path=path, settings=settings, targets=ordered, lines=lines, groups=groups,
                    profile=profile, profiles=tuple(doc.profiles), cache=cache)


_NAMED_SECTIONS = ("targets", "styles", "profiles")
_FLAT_SECTIONS = ("settings", "defaults", "cache")


def _validate_shape(data: dict[str, Any], lines: LineIndex,
                    problems: list[Problem]) -> tuple[DocumentModel | None, dict[str, set[str]]]:
    """Pydantic over the whole document. Entries with shape errors are set aside (``broken``)."""
    broken: dict[str, set[str]] = {s: set() for s in _NAMED_SECTIONS}
    try:
        return DocumentModel.model_validate(data), broken
    except ValidationError as exc:
        errors = exc.errors()
    cleaned = dict(data)
    for err in errors:
        loc = tuple(str(p) for p in err["loc"])
        section = loc[0] if loc else ""
        target = fieldname = prefix = None
        if section in _NAMED_SECTIONS and len(loc) >= 2:
            broken[section].add(loc[1])
            fieldname = loc[2] if len(loc) >= 3 else None
            if section == "targets":
                target = loc[1]
            else:
                prefix = f"[{section}.{loc[1]}]"
        elif section in _FLAT_SECTIONS and len(loc) >= 2:
            fieldname, prefix = loc[1], f"[{section}]"
            if isinstance(cleaned.get(section), dict):   # drop the key, keep the rest of the section
                cleaned[section] = {k: v for k, v in cleaned[section].items() if k != loc[1]}
        else:
            fieldname = section
            cleaned.pop(section, None)
        message = _shape_message(err, loc)
        problems.append(Problem(f"{prefix} {message}" if prefix else message, target=target,
                                field=fieldname, line=lines.line(loc)))
    # Re-validate without what was reported, so one typo does not hide every other problem.
    for section in _NAMED_SECTIONS:
        if isinstance(cleaned.get(section), dict):
            cleaned[section] = {k: v for k, v in cleaned[section].items() if k not in broken[section]}
    try:
        return DocumentModel.model_validate(cleaned), broken
    except ValidationError:
        return None, broken


def _valid_fields(loc: tuple[str, ...]) -> list[str]:
    if len(loc) == 1:
        return list(DocumentModel.model_fields)
    model: type[BaseModel] = SECTION_MODELS.get(loc[0], DocumentModel)
    if "key_out" in loc[:-1]:
        model = KeyOutModel
    elif loc[0] == "targets" and "outputs" in loc[:-1]:
        model = OutputModel
    return list(model.model_fields)


def _shape_message(err: Any, loc: tuple[str, ...]) -> str:
    kind = err["type"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        valid = _valid_fields(loc)
        return f"unknown field '{name}'{_did_you_mean(name, valid)}; valid fields: {', '.join(valid)}"
    if kind == "missing":
        return "is required"
    if loc and loc[0] in _NAMED_SECTIONS and len(loc) == 2:
        return f"must be a table of fields, e.g. [{loc[0]}.NAME]"
    return f"{err['msg'].rstrip('.')} (got {err.get('input')!r})"


_SECRET_RE = re.compile(r"key|secret|token|password|passwd|credential|sas|signature", re.IGNORECASE)


def _check_cache(cache: CacheModel, lines: LineIndex, problems: list[Problem]) -> None:
    """Credentials never live in the manifest (it is committed): each storage reads its own config."""
    for name in cache.remote_options:
        if _SECRET_RE.search(name) and name not in ("key_prefix",):
            problems.append(Problem(
                f"[cache] '{name}' looks like a credential; the manifest is committed, so credentials come "
                f"from the storage's own environment and config files (e.g. AWS_ACCESS_KEY_ID, "
                f"GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING)", field="remote_options",
                line=lines.line(("cache", "remote_options"))))
    if cache.remote is not None and "://" not in cache.remote:
        problems.append(Problem(f"[cache] '{cache.remote}' is not a storage URL; use s3://bucket/prefix, "
                                f"gs://…, az://… or file:///shared/folder", field="remote",
                                line=lines.line(("cache", "remote"))))


def _settings(model: SettingsModel, lines: LineIndex, problems: list[Problem]) -> Settings:
    out_dir = model.out_dir.replace("\\", "/")
    if not out_dir.strip():
        problems.append(Problem("[settings] must not be empty", field="out_dir", line=lines.line(("settings", "out_dir"))))
    elif posixpath.isabs(out_dir) or re.match(r"^[A-Za-z]:", out_dir):
        # The lock records output paths relative to the manifest: an absolute one would tie it to one machine.
        problems.append(Problem(f"[settings] '{out_dir}' is absolute; out_dir is relative to the manifest's folder",
                                field="out_dir", line=lines.line(("settings", "out_dir"))))
    if model.reference_base_url and not re.match(r"^https?://", model.reference_base_url):
        problems.append(Problem("[settings] must be an http(s) URL", field="reference_base_url",
                                line=lines.line(("settings", "reference_base_url"))))
    return Settings(out_dir=posixpath.normpath(out_dir or "."), jobs=model.jobs, budget=model.budget,
                    provider=model.provider, reference_base_url=model.reference_base_url,
                    poll_interval=model.poll_interval, task_timeout=model.task_timeout)


# --- pass 3: graph ---------------------------------------------------------------------------------

def _order(targets: dict[str, Target], lines: LineIndex, problems: list[Problem]) -> dict[str, Target]:
    """Topological order (stable: manifest order among peers); every cycle is reported by name."""
    state: dict[str, int] = {}          # 1 = on the stack, 2 = done
    order: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(name: str, stack: list[str]) -> None:
        state[name] = 1
        stack.append(name)
        for up in targets[name].upstream:
            if up not in targets:
                continue                 # reported already (unknown or broken upstream)
            if state.get(up) == 1:
                cycle = stack[stack.index(up):] + [up]
                members = frozenset(cycle)
                if members not in reported:
                    reported.add(members)
                    problems.append(Problem(
                        f"dependency cycle: {' -> '.join('@' + c for c in cycle)}; a target cannot "
                        f"depend on its own output", target=name, field="references",
                        line=lines.line(("targets", name, "references"))))
            elif up not in state:
                visit(up, stack)
        stack.pop()
        state[name] = 2
        order.append(name)

    for name in targets:
        if name not in state:
            visit(name, [])
    return {name: targets[name] for name in order}

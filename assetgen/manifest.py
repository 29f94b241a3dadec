"""``assets.toml`` → a validated ``Manifest`` of resolved ``Target``s in dependency order.

Loading has three passes, and every problem from every pass is reported together (``ManifestError``):

1. shape: the standard library's TOML parser, then pydantic models with unknown keys forbidden;
2. meaning: each target merged over ``[defaults]`` and checked against the model catalog, its
   references (files, ``@targets``, URLs) and its output paths;
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
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic import NonNegativeFloat, PositiveFloat, PositiveInt

from . import catalog
from .errors import ManifestError, Problem
from .tomlpos import LineIndex

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


class FieldsModel(_Strict):
    """Fields a target may set and ``[defaults]`` may provide."""

    model: StrictStr | None = None
    action: StrictStr | None = None
    aspect_ratio: StrictStr | None = None
    resolution: StrictStr | None = None
    n: PositiveInt | None = None
    seed: StrictInt | None = Field(default=None, ge=-1, le=MAX_SEED)
    references: list[StrictStr] | None = None
    google_search: StrictBool | None = None
    google_image_search: StrictBool | None = None
    official_fallback: StrictBool | None = None


class TargetModel(FieldsModel):
    prompt: StrictStr
    output: StrictStr | None = None


class DocumentModel(_Strict):
    settings: SettingsModel = SettingsModel()
    defaults: FieldsModel = FieldsModel()
    targets: dict[str, TargetModel] = {}


BUILTIN_DEFAULTS: dict[str, Any] = {
    "model": catalog.DEFAULT_MODEL, "action": "generate", "aspect_ratio": "1:1", "resolution": "1K",
    "n": 1, "seed": -1, "references": [], "google_search": False, "google_image_search": False,
    "official_fallback": False,
}


# --- resolved manifest -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    raw: str                                   # as written in the manifest
    kind: Literal["file", "target", "url"]
    value: str                                 # manifest-relative posix path, target name, or URL
    path: Path | None = None                   # absolute path of a file reference


@dataclass(frozen=True)
class Target:
    name: str
    prompt: str
    model: str
    action: str
    aspect_ratio: str
    resolution: str
    n: int
    seed: int
    references: tuple[Reference, ...]
    google_search: bool
    google_image_search: bool
    official_fallback: bool
    outputs: tuple[str, ...]                   # manifest-relative posix paths, one per image

    @property
    def spec_model(self) -> catalog.Model:
        return catalog.get(self.model)

    @property
    def size(self) -> tuple[int, int]:
        return catalog.pixel_size(self.aspect_ratio, self.resolution)

    @property
    def upstream(self) -> tuple[str, ...]:
        return tuple(r.value for r in self.references if r.kind == "target")


@dataclass(frozen=True)
class Settings:
    out_dir: str                               # manifest-relative posix path
    jobs: int
    budget: float | None
    provider: str
    reference_base_url: str | None
    poll_interval: float
    task_timeout: float


@dataclass
class Manifest:
    path: Path
    settings: Settings
    targets: dict[str, Target]                 # topological order: upstream before downstream
    lines: LineIndex = field(repr=False)

    @property
    def root(self) -> Path:
        return self.path.parent

    def line_of(self, target: str, fieldname: str | None = None) -> int | None:
        return self.lines.line(("targets", target) + ((fieldname,) if fieldname else ()))

    def select(self, names: list[str] | tuple[str, ...]) -> list[str]:
        """The named targets and everything they depend on, in build order; unknown names are errors."""
        unknown = [n for n in names if n not in self.targets]
        if unknown:
            raise ManifestError(str(self.path), [
                Problem(f"no such target; known targets: {_listing(self.targets)}", target=n) for n in unknown
            ])
        wanted: set[str] = set()
        stack = list(names)
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

def load(path: str | os.PathLike[str]) -> Manifest:
    """Read, validate and resolve a manifest. Raises ``ManifestError`` listing every problem."""
    file = Path(path)
    shown = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ManifestError(shown, [Problem(
            "file not found; run `assetgen init` to write a starter manifest, or pass -f PATH")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(shown, [Problem(f"cannot read the file: {exc}")]) from None
    return parse(text, file.resolve(), shown=shown)


def parse(text: str, path: Path, *, shown: str | None = None) -> Manifest:
    """Validate manifest ``text`` as if it were the file at ``path`` (references resolve beside it)."""
    shown = shown or str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise ManifestError(shown, [Problem(
            f"not valid TOML: {exc}", line=int(match.group(1)) if match else None)]) from None
    lines = LineIndex(text)
    problems: list[Problem] = []
    raw_targets = data.get("targets") if isinstance(data.get("targets"), dict) else {}
    doc, broken = _validate_shape(data, lines, problems)
    settings = _settings(doc.settings if doc else SettingsModel(), lines, problems)
    targets = _resolve(doc, raw_targets, broken, path.parent, settings, lines, problems)
    ordered = _order(targets, lines, problems)
    if problems:
        raise ManifestError(shown, problems)
    return Manifest(path=path, settings=settings, targets=ordered, lines=lines)


def _validate_shape(data: dict[str, Any], lines: LineIndex,
                    problems: list[Problem]) -> tuple[DocumentModel | None, set[str]]:
    """Pydantic over the whole document. Targets with shape errors are set aside (``broken``)."""
    try:
        return DocumentModel.model_validate(data), set()
    except ValidationError as exc:
        errors = exc.errors()
    broken: set[str] = set()
    for err in errors:
        loc = tuple(str(p) for p in err["loc"])
        target = loc[1] if len(loc) >= 2 and loc[0] == "targets" else None
        fieldname = loc[2] if target and len(loc) >= 3 else (loc[1] if len(loc) >= 2 and not target else None)
        if target:
            broken.add(target)
        message = _shape_message(err, loc)
        if not target and len(loc) >= 1 and loc[0] not in ("settings", "defaults", "targets"):
            fieldname = loc[0]
        section = None if target else (loc[0] if len(loc) > 1 else None)
        if section:
            message = f"[{section}] {message}"
        problems.append(Problem(message, target=target, field=fieldname, line=lines.line(loc)))
    # Re-validate without the broken targets and without the offending keys elsewhere (reported
    # above), so a typo in [settings] or [defaults] does not hide every target's problems.
    cleaned = dict(data)
    for err in errors:
        loc = tuple(str(p) for p in err["loc"])
        if loc and loc[0] in ("settings", "defaults") and len(loc) >= 2 and isinstance(cleaned.get(loc[0]), dict):
            cleaned[loc[0]] = {k: v for k, v in cleaned[loc[0]].items() if k != loc[1]}
        elif loc and (len(loc) == 1 or loc[0] not in ("settings", "defaults", "targets")):
            cleaned.pop(loc[0], None)
    if isinstance(cleaned.get("targets"), dict):
        cleaned["targets"] = {k: v for k, v in cleaned["targets"].items() if k not in broken}
    try:
        return DocumentModel.model_validate(cleaned), broken
    except ValidationError:
        return None, broken


def _shape_message(err: Any, loc: tuple[str, ...]) -> str:
    kind = err["type"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        if len(loc) == 1:
            valid = list(DocumentModel.model_fields)
        elif loc[0] == "targets":
            valid = list(TargetModel.model_fields)
        else:
            valid = list({"settings": SettingsModel, "defaults": FieldsModel}[loc[0]].model_fields)
        return f"unknown field '{name}'{_did_you_mean(name, valid)}; valid fields: {', '.join(valid)}"
    if kind == "missing":
        return "is required"
    if loc and loc[0] == "targets" and len(loc) == 2:
        return "must be a table of fields, e.g. [targets.NAME] with prompt = \"...\""
    return f"{err['msg'].rstrip('.')} (got {err.get('input')!r})"


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


def _resolve(doc: DocumentModel | None, raw_targets: dict[str, Any], broken: set[str], root: Path,
             settings: Settings, lines: LineIndex, problems: list[Problem]) -> dict[str, Target]:
    if doc is None:
        return {}
    known = set(raw_targets)
    defaults = {**BUILTIN_DEFAULTS, **doc.defaults.model_dump(exclude_none=True)}
    set_by_defaults = doc.defaults.model_fields_set
    targets: dict[str, Target] = {}
    owners: dict[str, str] = {}
    for name, spec in doc.targets.items():
        def report(message: str, fieldname: str | None = None, _name: str = name, _own: TargetModel = spec) -> None:
            where: tuple[str, ...] = ("targets", _name)
            if fieldname and fieldname not in _own.model_fields_set and fieldname in set_by_defaults:
                # The value came from [defaults]: point at the line that holds it.
                where, message = ("defaults",), f"{message} (set in [defaults])"
            problems.append(Problem(message, target=_name, field=fieldname,
                                    line=lines.line(where + ((fieldname,) if fieldname else ()))))
        if not NAME_RE.match(name):
            report("target names may use only letters, digits, '_' and '-'")
            continue
        values = {**defaults, **spec.model_dump(exclude_none=True)}
        ok = _check_capabilities(values, report)
        refs = _references(values["references"], name, known, root, report)
        outputs = _outputs(spec.output, name, values["n"], settings.out_dir, report)
        if not values["prompt"].strip():
            report("must not be empty", "prompt")
            ok = False
        for out in outputs:
            other = owners.setdefault(out, name)
            if other != name:
                report(f"writes '{out}', which target '{other}' also writes; give one of them another output",
                       "output")
                ok = False
        if ok and refs is not None and outputs:
            targets[name] = Target(
                name=name, prompt=values["prompt"].strip(), model=values["model"], action=values["action"],
                aspect_ratio=values["aspect_ratio"], resolution=values["resolution"], n=values["n"],
                seed=values["seed"], references=refs, google_search=values["google_search"],
                google_image_search=values["google_image_search"],
                official_fallback=values["official_fallback"], outputs=outputs)
    return targets


def _check_capabilities(values: dict[str, Any], report: Any) -> bool:
    model = catalog.BY_ID.get(values["model"])
    if model is None:
        ids = [m.id for m in catalog.MODELS]
        report(f"unknown model '{values['model']}'{_did_you_mean(values['model'], ids)}; "
               f"valid models: {', '.join(ids)}", "model")
        return False
    ok = True
    checks = (("resolution", model.resolutions), ("aspect_ratio", model.ratios), ("action", model.actions))
    for fieldname, allowed in checks:
        if values[fieldname] not in allowed:
            report(f"{model.id} does not support {fieldname} '{values[fieldname]}'; "
                   f"it supports: {', '.join(allowed)}", fieldname)
            ok = False
    for flag in ("google_search", "google_image_search"):
        if values[flag] and not model.search:
            searchable = ", ".join(m.id for m in catalog.MODELS if m.search)
            report(f"search grounding is not available on {model.id}; it is on: {searchable}", flag)
            ok = False
    if values["action"] in ("image2image", "edit", "reference") and not values["references"]:
        report(f"action '{values['action']}' needs at least one reference image in `references`", "action")
        ok = False
    return ok


def _references(raw: list[str], name: str, known: set[str], root: Path, report: Any) -> tuple[Reference, ...] | None:
    refs: list[Reference] = []
    ok = True
    for item in raw:
        if item.startswith("@"):
            upstream = item[1:]
            if upstream not in known:
                report(f"'{item}' is not a target{_did_you_mean(upstream, sorted(known))}; "
                       f"known targets: {_listing(sorted(known))}", "references")
                ok = False
            refs.append(Reference(raw=item, kind="target", value=upstream))
        elif re.match(r"^https?://", item):
            refs.append(Reference(raw=item, kind="url", value=item))
        elif "://" in item or item.startswith("data:"):
            report(f"'{item}': a reference is a file path, an http(s) URL or @target", "references")
            ok = False
        else:
            problem = _check_reference_file(root / item)
            if problem:
                report(f"'{item}' {problem}", "references")
                ok = False
            rel = posixpath.normpath(item.replace("\\", "/"))
            refs.append(Reference(raw=item, kind="file", value=rel, path=(root / item)))
    return tuple(refs) if ok else None


_MAGIC = ((b"\xff\xd8\xff", "jpg"), (b"\x89PNG\r\n\x1a\n", "png"))


def image_format(head: bytes) -> str | None:
    """'jpg', 'png' or 'webp' from a file's first bytes; None for anything else."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _check_reference_file(path: Path) -> str | None:
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return f"does not exist (looked for {path})"
    except IsADirectoryError:
        return "is a folder, not an image file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    if size > catalog.MAX_REFERENCE_BYTES:
        return f"is {size / 2**20:.1f} MB; the gateway accepts at most 30 MB per reference image"
    if image_format(head) is None:
        return "is not a JPG, PNG or WEBP image (the formats the gateway accepts)"
    return None


def _outputs(output: str | None, name: str, n: int, out_dir: str, report: Any) -> tuple[str, ...]:
    pattern = (output or f"{name}.jpg").replace("\\", "/")
    if posixpath.isabs(pattern) or re.match(r"^[A-Za-z]:", pattern):
        report(f"'{pattern}' is absolute; outputs are paths relative to out_dir ('{out_dir}')", "output")
        return ()
    stem, ext = posixpath.splitext(pattern)
    if ext.lower() not in (".jpg", ".jpeg"):
        report(f"'{pattern}' must end in .jpg or .jpeg: the gateway returns JPEG images", "output")
        return ()
    if "{i}" in pattern:
        names = [pattern.replace("{i}", str(i)) for i in range(1, n + 1)]
    elif n > 1:
        names = [f"{stem}-{i}{ext}" for i in range(1, n + 1)]
    else:
        names = [pattern]
    resolved = []
    for rel in names:
        normal = posixpath.normpath(rel)
        if normal == "." or normal == ".." or normal.startswith("../"):
            report(f"'{pattern}' escapes out_dir ('{out_dir}'); outputs must stay inside it", "output")
            return ()
        resolved.append(posixpath.normpath(posixpath.join(out_dir, normal)))
    return tuple(resolved)


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

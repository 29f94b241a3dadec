"""Pass 1 of loading a manifest: the document's shape, checked by pydantic models.

Unknown keys are forbidden at every level, so a typo is an error that names the valid fields. Only a
manifest that changed is validated: an unchanged one comes from the snapshot (``snapshot``), which is
why pydantic is imported here and not by ``loader``.
"""

from __future__ import annotations

import json
import posixpath
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError
from pydantic import PositiveInt, confloat, conint, conlist

from ..catalog import MAX_IMAGES_PER_TASK
from ..errors import Problem, did_you_mean
from .model import MAX_JOBS, MAX_SEED, ExportSetting, Settings
from .positions import LineIndex


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LimitsModel(_Strict):
    total: confloat(ge=0, allow_inf_nan=False) | None = None  # type: ignore[valid-type]
    month: confloat(ge=0, allow_inf_nan=False) | None = None  # type: ignore[valid-type]
    day: confloat(ge=0, allow_inf_nan=False) | None = None  # type: ignore[valid-type]


class ExportModel(_Strict):
    format: Literal["json", "ts", "gdscript"]
    output: StrictStr
    res_root: StrictStr | None = None


class SettingsModel(_Strict):
    out_dir: StrictStr = "assets/generated"
    # More tasks in flight than this only queues them at the gateway (and holds as many connections).
    jobs: conint(strict=True, gt=0, le=MAX_JOBS) = 8  # type: ignore[valid-type]
    budget: confloat(ge=0, allow_inf_nan=False) | None = None  # type: ignore[valid-type]
    provider: Literal["gateway", "gemini", "openai", "offline"] = "gateway"
    reference_base_url: StrictStr | None = None
    # Seconds between polls of one task (jittered ±33%): below 0.05 s is hammering the gateway, above an
    # hour is a typo. TOML allows inf and nan: neither is a time.
    poll_interval: confloat(ge=0.05, le=3600, allow_inf_nan=False) = 3.0  # type: ignore[valid-type]
    # Give up waiting on one task after this many seconds: at least 1 s, at most a day.
    task_timeout: confloat(ge=1, le=86400, allow_inf_nan=False) = 600.0  # type: ignore[valid-type]
    # Let out_dir (and profiles' out_dir) and reference files lie outside the manifest's folder.
    allow_outside: StrictBool = False
    gateway_fields: Literal["both", "aspect_ratio", "size"] = "both"   # ratio field(s) sent
    # Hard spend limits in USD over this project's ledger (days and months in UTC); no flag raises them.
    limits: LimitsModel | None = None
    confirm_over: confloat(ge=0, allow_inf_nan=False) = 1.0  # type: ignore[valid-type]   # ask on a terminal above
    export: tuple[ExportModel, ...] = ()    # indexes of the outputs for code, rewritten by a build
    # The prompt's shape (``resolve.compose_prompt``): the lowest layer; [defaults], styles, targets override.
    prompt_template: StrictStr | None = None
    style_joiner: StrictStr | None = None


class KeyOutModel(_Strict):
    color: StrictStr = "#ffffff"
    tolerance: conint(strict=True, ge=0, le=255) = 12  # type: ignore[valid-type]
    feather: confloat(strict=True, ge=0, le=16, allow_inf_nan=False) = 1.0  # type: ignore[valid-type]
    checkerboard: StrictBool = False
    decontaminate: StrictBool = True


class DeriveModel(_Strict):
    """Post-processing fields: made locally from the generated image, never paid for."""

    resize: conlist(conint(strict=True, ge=1, le=16384), min_length=2, max_length=2) | None = None  # type: ignore[valid-type]
    fit: Literal["cover", "contain", "stretch"] | None = None
    format: Literal["png", "webp", "jpg"] | None = None
    quality: conint(strict=True, ge=1, le=100) | None = None  # type: ignore[valid-type]
    background: StrictStr | None = None
    key_out: KeyOutModel | None = None


class OpenAIModel(_Strict):
    """OpenAI's own request fields (``openai = { … }``): sent to OpenAI and part of the key of OpenAI
    targets only; not the post-processing fields ``quality``, ``background`` and ``format``."""

    quality: Literal["low", "medium", "high"] | None = None
    background: Literal["auto", "opaque", "transparent"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None


class FieldsModel(DeriveModel):
    """Fields a target may set and ``[defaults]``, ``[styles.*]`` and ``[profiles.*]`` may provide."""

    provider: Literal["gateway", "gemini", "openai", "offline"] | None = None
    openai: OpenAIModel | None = None

    model: StrictStr | None = None
    action: StrictStr | None = None
    aspect_ratio: StrictStr | None = None
    resolution: StrictStr | None = None
    n: conint(strict=True, gt=0, le=MAX_IMAGES_PER_TASK) | None = None  # type: ignore[valid-type]
    candidates: conint(strict=True, gt=0, le=MAX_IMAGES_PER_TASK) | None = None  # type: ignore[valid-type]
    seed: StrictInt | None = Field(default=None, ge=-1, le=MAX_SEED)
    references: list[StrictStr] | None = None
    google_search: StrictBool | None = None
    google_image_search: StrictBool | None = None
    official_fallback: StrictBool | None = None
    # The project's own fields: never part of the key (``Target.tags``, ``notes``, ``meta``).
    tags: list[StrictStr] | None = None
    notes: StrictStr | None = None
    # Composition (issue 17): how the prompt is shaped, and a named [output_sets.NAME] to write.
    prompt_template: StrictStr | None = None
    style_joiner: StrictStr | None = None
    outputs: StrictStr | None = None


class StyleModel(FieldsModel):
    prompt: StrictStr | None = None          # a fragment placed by the prompt template ({style})
    extends: StrictStr | list[StrictStr] | None = None   # styles applied before this one


class ProfileModel(FieldsModel):
    out_dir: StrictStr | None = None         # default: <out_dir>/<profile>


class OutputModel(DeriveModel):
    output: StrictStr


class OutputSetModel(_Strict):
    """``[output_sets.NAME]``: output rows a target, style, [defaults] or profile uses by name."""

    outputs: list[OutputModel]


class RowModel(FieldsModel):
    """One matrix row's overrides (``[targets.X.rows."a.b"]``): over the target, under the profile."""

    prompt: StrictStr | None = None          # replaces the target's prompt for this row
    pick: PositiveInt | None = None


class AxisValueModel(FieldsModel):
    """One value of a matrix axis written as a table (``[targets.X.matrix.AXIS.VALUE]``): a field named
    like a target field overrides it for the value's rows; every field is ``{AXIS.FIELD}`` in texts."""

    model_config = ConfigDict(extra="allow", frozen=True)
    prompt: StrictStr | None = None          # replaces the target's prompt for this value's rows


class TargetModel(FieldsModel):
    prompt: StrictStr
    output: StrictStr | None = None
    outputs: list[OutputModel] | StrictStr | None = None  # type: ignore[assignment]  # rows, or an output set's name
    style: StrictStr | list[StrictStr] | None = None
    matrix: dict[str, list[StrictStr | StrictInt] | dict[str, AxisValueModel]] | None = None
    choices: dict[str, list[StrictStr]] | None = None         # {choose:NAME}: one per row, by its name's hash
    pick: PositiveInt | None = None
    meta: dict[str, Any] | None = None       # free: display names, status, owner… (never in the key)
    rows: dict[str, RowModel] | None = None  # per-row overrides, by row name without the target's
    # One generation sliced into cols × rows cells, rows "<target>.r<row>c<col>" (``manifest.sheets``).
    grid: conlist(conint(strict=True, ge=1, le=16), min_length=2, max_length=2) | None = None  # type: ignore[valid-type]
    grid_trim: Literal["auto"] | conint(strict=True, ge=0, le=4096) | None = None  # type: ignore[valid-type]


class SheetModel(_Strict):
    """A sprite sheet ``[sheets.NAME]``: members' outputs packed into one PNG plus frame metadata."""

    members: list[StrictStr] = []
    tags: list[StrictStr] = []
    output: StrictStr
    member_output: conint(strict=True, ge=0) | StrictStr = 0  # type: ignore[valid-type]
    padding: conint(strict=True, ge=0, le=256) = 0  # type: ignore[valid-type]
    power_of_two: StrictBool = False
    max_size: conint(strict=True, ge=1, le=16384) = 4096  # type: ignore[valid-type]
    metadata: list[StrictStr] = ["texturepacker-hash"]
    res_root: StrictStr | None = None


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
    sheets: dict[str, SheetModel] = {}
    output_sets: dict[str, OutputSetModel] = {}


SECTION_MODELS: dict[str, type[BaseModel]] = {
    "settings": SettingsModel, "defaults": FieldsModel, "styles": StyleModel, "profiles": ProfileModel,
    "cache": CacheModel, "targets": TargetModel, "sheets": SheetModel, "output_sets": OutputSetModel,
}


_NAMED_SECTIONS = ("targets", "styles", "profiles", "sheets", "output_sets")
_FLAT_SECTIONS = ("settings", "defaults", "cache")


def validate_shape(data: dict[str, Any], lines: LineIndex,
                    problems: list[Problem]) -> tuple[DocumentModel | None, dict[str, set[str]]]:
    """Pydantic over the whole document. Entries with shape errors are set aside (``broken``)."""
    broken: dict[str, set[str]] = {s: set() for s in _NAMED_SECTIONS}
    try:
        return DocumentModel.model_validate(data), broken
    except ValidationError as exc:
        errors = _matrix_errors(exc.errors(), data)
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


def _matrix_errors(errors: list[Any], data: dict[str, Any]) -> list[Any]:
    """Pydantic's errors with a matrix axis's union (a list of values, or a table of value tables) told
    as the one the axis is written as: ``seed = "eleven"`` in ``[targets.card.matrix.subject.robot]`` is
    one error at that line, "matrix.subject.robot: field 'seed' should be a valid integer", not one per
    branch of the union with the whole axis as its input."""
    kept: list[Any] = []
    seen: set[tuple[Any, ...]] = set()
    for err in errors:
        loc = tuple(err["loc"])
        if not (len(loc) >= 5 and loc[0] == "targets" and loc[2] == "matrix" and isinstance(loc[4], str)
                and loc[4].startswith(("list[", "dict["))):
            kept.append(err)
            continue
        axis = (data.get("targets", {}).get(loc[1]) or {}).get("matrix", {}).get(loc[3])
        where, rest = loc[:4], loc[5:]
        if isinstance(axis, dict) and loc[4].startswith("dict[") and len(rest) >= 2:
            message = f"matrix.{loc[3]}.{rest[0]}: field '{'.'.join(map(str, rest[1:]))}' " + \
                      err["msg"].replace("Input should be", "should be")
            kept.append({**err, "loc": where + rest, "msg": message, "type": "matrix_value"})
        elif isinstance(axis, dict) and loc[4].startswith("dict[") and rest:
            kept.append({**err, "loc": where + rest, "msg": f"matrix.{loc[3]}.{rest[0]} must be a table of "
                         f"fields ([targets.{loc[1]}.matrix.{loc[3]}.{rest[0]}] clause = …)", "type": "matrix_value"})
        elif isinstance(axis, list) and loc[4].startswith("list[") and rest and where + rest[:1] not in seen:
            seen.add(where + rest[:1])
            kept.append({**err, "loc": where, "msg": f"matrix.{loc[3]}: value {rest[0] + 1} should be text or a "
                         f"whole number", "type": "matrix_value"})
        elif not isinstance(axis, (list, dict)) and where not in seen:
            seen.add(where)
            kept.append({**err, "loc": where, "msg": f"matrix.{loc[3]} should be a list of values "
                         f"([\"a\", \"b\"]) or a table of value tables ([targets.{loc[1]}.matrix.{loc[3]}.VALUE])",
                         "type": "matrix_value"})
    return kept


def _valid_fields(loc: tuple[str, ...]) -> list[str]:
    if len(loc) == 1:
        return list(DocumentModel.model_fields)
    model: type[BaseModel] = SECTION_MODELS.get(loc[0], DocumentModel)
    if "key_out" in loc[:-1]:
        model = KeyOutModel
    elif "openai" in loc[:-1]:
        model = OpenAIModel
    elif loc[0] in ("targets", "output_sets") and "outputs" in loc[:-1]:
        model = OutputModel
    elif loc[0] == "targets" and len(loc) >= 5 and loc[2] == "rows":
        model = RowModel
    return list(model.model_fields)


def _shape_message(err: Any, loc: tuple[str, ...]) -> str:
    kind = err["type"]
    name = loc[-1] if loc else ""
    if kind == "extra_forbidden":
        valid = _valid_fields(loc)
        return f"unknown field '{name}'{did_you_mean(name, valid)}; valid fields: {', '.join(valid)}"
    if kind == "missing":
        return "is required"
    if loc and loc[0] in _NAMED_SECTIONS and len(loc) == 2:
        return f"must be a table of fields, e.g. [{loc[0]}.NAME]"
    if kind == "matrix_value":
        return f"{err['msg']} (got {err.get('input')!r})"
    return f"{err['msg'].rstrip('.')} (got {err.get('input')!r})"


_SECRET_RE = re.compile(r"key|secret|token|password|passwd|credential|sas|signature", re.IGNORECASE)


def check_cache(cache: CacheModel, lines: LineIndex, problems: list[Problem]) -> None:
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


def settings_from(model: SettingsModel, lines: LineIndex, problems: list[Problem]) -> Settings:
    out_dir = model.out_dir.replace("\\", "/")
    if not out_dir.strip():
        problems.append(Problem("[settings] must not be empty", field="out_dir",
                                line=lines.line(("settings", "out_dir"))))
    else:
        problem = out_dir_problem(out_dir, model.allow_outside)
        if problem:
            problems.append(Problem(f"[settings] {problem}", field="out_dir", line=lines.line(("settings", "out_dir"))))
    if model.reference_base_url and not re.match(r"^https?://", model.reference_base_url):
        problems.append(Problem("[settings] must be an http(s) URL", field="reference_base_url",
                                line=lines.line(("settings", "reference_base_url"))))
    return Settings(out_dir=posixpath.normpath(out_dir.replace("\0", "") or "."), jobs=model.jobs,
                    budget=model.budget, provider=model.provider, reference_base_url=model.reference_base_url,
                    poll_interval=model.poll_interval, task_timeout=model.task_timeout,
                    allow_outside=model.allow_outside, gateway_fields=model.gateway_fields,
                    limits=({k: v for k, v in model.limits.model_dump().items() if v is not None}
                            if model.limits else None),
                    confirm_over=model.confirm_over,
                    exports=tuple(ExportSetting(e.format, e.output.replace("\\", "/"), e.res_root)
                                  for e in model.export))


def out_dir_problem(out_dir: str, allow_outside: bool) -> str | None:
    """What is wrong with an ``out_dir`` (of ``[settings]`` or a profile), or None.

    Outputs stay inside the manifest's folder unless ``[settings] allow_outside = true`` says otherwise
    (e.g. writing into a sibling ``../godot/assets``): a typo must not scatter files across the disk.
    """
    if "\0" in out_dir:
        return f"{out_dir!r} contains a NUL character, which no path may hold"
    absolute = posixpath.isabs(out_dir) or re.match(r"^[A-Za-z]:", out_dir)
    climbs = posixpath.normpath(out_dir) == ".." or posixpath.normpath(out_dir).startswith("../")
    if (absolute or climbs) and not allow_outside:
        how = "is absolute" if absolute else "climbs out of the manifest's folder"
        return (f"'{out_dir}' {how}; out_dir is relative to the manifest's folder and stays inside it "
                f"unless [settings] allow_outside = true")
    return None


# --- the JSON Schema for editors (``assetgen schema``) --------------------------------------------------
# Generated from the models above (one source of truth), then post-processed: draft-07 (what taplo and
# SchemaStore read), the catalogue's values as enums, a description on every field, a few examples.

SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"

# Descriptions by field name; "Model.field" overrides one model's field (README: the manifest's table).
FIELD_DOCS: dict[str, str] = {
    "settings": "Project-wide settings.",
    "defaults": "Fields applied to every target unless it sets the field itself.",
    "styles": "Named sets of fields (and a prompt fragment) a target uses with `style = \"NAME\"`.",
    "profiles": "Named overrides (`--profile NAME`, e.g. cheap drafts); their outputs and lock are their own.",
    "cache": "The shared remote cache (team scale).",
    "targets": "Every generated image, by target name: `[targets.NAME]`.",
    "out_dir": "Folder for outputs, relative to the manifest; stays inside its folder unless `allow_outside`.",
    "ProfileModel.out_dir": "This profile's output folder (default: <out_dir>/<profile>).",
    "export": "Index files of every output that `build` rewrites when something changed (see `assetgen export`).",
    "ExportModel.format": "The index's format: json, ts (TypeScript) or gdscript (Godot).",
    "ExportModel.output": "Where the index is written, relative to the manifest.",
    "res_root": "GDScript only: the folder that res:// paths are relative to (default: the manifest's folder).",
    "jobs": "Tasks in flight at once (`--jobs` overrides), 1-256.",
    "budget": "Refuse a build whose estimate (upper bound) exceeds this many USD.",
    "provider": "Who draws the images: `gateway`, `gemini`, `openai` or `offline` (placeholders).",
    "reference_base_url": "Send local reference files as `<url>/<path>` instead of `data:` URLs.",
    "poll_interval": "Seconds between polls of one task (jittered ±33 %), 0.05-3600.",
    "task_timeout": "Seconds to wait on one task before leaving it for the next build, 1-86400.",
    "allow_outside": "Allow an out_dir or reference files outside the manifest's folder.",
    "gateway_fields": "Which ratio field(s) the gateway's submit body carries; never part of a key.",
    "limits": "Hard spend limits in USD over this project's ledger (UTC days and months).",
    "total": "Hard limit on everything this project's ledger records, in USD.",
    "month": "Hard limit per UTC month, in USD.",
    "day": "Hard limit per UTC day, in USD.",
    "confirm_over": "On a terminal, `build` asks before spending more than this many USD (`-y` skips).",
    "prompt": "What to draw (required on a target).",
    "StyleModel.prompt": "A fragment appended to the prompt of every target using this style.",
    "RowModel.prompt": "Replaces the target's prompt for this matrix row.",
    "model": "Model id, one of `assetgen models`.",
    "action": "generate, image2image, edit, reference or search_grounded (per model).",
    "aspect_ratio": "Aspect ratio of the image (extended ratios only on 3.1 Flash).",
    "resolution": "0.5K (3.1 Flash), 1K, 2K, 4K (not 2.5 Flash).",
    "n": "Images from one task, 1-8; outputs become <stem>-1.jpg … unless `output` contains {i}.",
    "candidates": "Draw this many candidates (1-8) and keep the one `pick` chooses.",
    "seed": "-1 random; a fixed value reproduces similar results.",
    "references": "Reference images: files relative to the manifest, `@target` outputs, or http(s) URLs.",
    "google_search": "Google search grounding (3.1 Flash only).",
    "google_image_search": "Google image search grounding (3.1 Flash only).",
    "official_fallback": "On a standard-tier model, let the gateway switch to the official channel.",
    "openai": "OpenAI's own request fields, sent to OpenAI only.",
    "OpenAIModel.quality": "OpenAI's rendering quality.",
    "OpenAIModel.background": "OpenAI's background handling.",
    "output_format": "The format OpenAI returns.",
    "tags": "The project's own labels (`--tag` selects by them); never part of a key.",
    "notes": "Free notes; never part of a key.",
    "output": "Path under out_dir ending in .jpg, .png or .webp (default <name>.jpg); may use {axis} and {i}.",
    "outputs": "Several derived outputs of one generated image, each with its own post-processing; or the "
               "name of an [output_sets.NAME] (paths may use {name}, {axis}, {width}, {height}, {i}).",
    "FieldsModel.outputs": "The name of an [output_sets.NAME] whose outputs targets write (unless they set their own).",
    "StyleModel.outputs": "The name of an [output_sets.NAME] whose outputs this style's targets write.",
    "ProfileModel.outputs": "The name of an [output_sets.NAME] every target writes under this profile.",
    "RowModel.outputs": "The name of an [output_sets.NAME] this row writes.",
    "AxisValueModel.outputs": "The name of an [output_sets.NAME] this value's rows write.",
    "OutputSetModel.outputs": "Output rows (as a target's `outputs`); paths may use {name}, {axis}, {width}, "
                              "{height} and {i}.",
    "output_sets": "Named lists of outputs a target, style, [defaults] or profile uses with `outputs = \"NAME\"`.",
    "style": "A [styles.NAME] or a list of them, applied in order: their fields, and their prompt fragments "
             "joined as {style}.",
    "extends": "Styles (a name or a list) applied before this one: their fields, references and prompt fragments.",
    "prompt_template": "The composed prompt's shape, from {prompt} and {style} (default \"{prompt}\\n\\n{style}\"; "
                       "with no style prompt, just the prompt).",
    "style_joiner": "What joins the styles' prompt fragments into {style} (default a blank line).",
    "matrix": "Axes whose combinations make one row each (`{axis}` is substituted in prompt, output…); an axis "
              "may be a table of values with fields (`{axis.field}`; a target field overrides it).",
    "choices": "Lists for `{choose:NAME}`: each row gets one item, by a hash of its name (fixed forever).",
    "AxisValueModel.prompt": "Replaces the target's prompt for this value's rows.",
    "pick": "Which candidate (1-based) becomes the output.",
    "meta": "Free table (display names, status, owner…); never part of a key.",
    "rows": "Per-row overrides of a matrix target, by row name (e.g. \"sword.iron\").",
    "resize": "Resize the output to [width, height] pixels (made locally, free).",
    "fit": "How `resize` fits a different ratio: cover (crop), contain (pad) or stretch.",
    "format": "Output format (otherwise it follows the output's extension).",
    "quality": "JPEG/WEBP quality of the output, 1-100.",
    "background": "Background colour used by `fit = \"contain\"` and when dropping transparency.",
    "key_out": "Make a colour transparent (e.g. a white background).",
    "color": "The colour made transparent, e.g. \"#ffffff\".",
    "tolerance": "How far (0-255) a pixel may be from `color` and still be keyed out.",
    "feather": "Width in px (0-16) of the soft alpha ramp at the subject's edge; 0 is a hard edge.",
    "checkerboard": "The background is a two-tone checkerboard drawn by the model (tones read from the border).",
    "decontaminate": "Give edge pixels the subject's colour, so no background fringe shows (default true).",
    "remote": "Storage URL of the shared cache: s3://bucket/prefix, gs://…, az://… or file:///folder.",
    "remote_options": "Options passed to the storage (never credentials: the manifest is committed).",
    "grid": "[cols, rows]: one generation sliced into cells, rows named <target>.r<row>c<col> (1-based).",
    "grid_trim": "How a grid's gutters are cut: \"auto\" (detected uniform lines) or a margin in pixels.",
    "sheets": "Sprite sheets: members' outputs packed into one PNG with frame metadata, `[sheets.NAME]`.",
    "members": "Targets packed into the sheet: names, matrix or grid names, globs like 'icon.*'.",
    "SheetModel.tags": "Targets with any of these tags are members too.",
    "SheetModel.output": "The sheet's PNG, relative to out_dir; metadata files are written beside it.",
    "member_output": "Which output of each member: its index (0-based) or a glob on its path ('*@64.png').",
    "padding": "Pixels between frames.",
    "power_of_two": "Round the sheet's width and height up to powers of two.",
    "max_size": "The largest sheet side in pixels; members that do not fit are an error.",
    "metadata": "texturepacker-hash, texturepacker-array (Phaser, PixiJS), godot (SpriteFrames .tres), json.",
    "SheetModel.res_root": "Godot: the folder res:// stands for, relative to the manifest (default: its folder).",
}

_EXAMPLES: dict[str, list[Any]] = {
    "out_dir": ["assets/generated"], "budget": [5.0], "limits": [{"month": 20.0, "day": 5.0}],
    "prompt": ["A knight in silver armour, side view, flat pastel style, plain white background"],
    "output": ["characters/hero.png", "icons/{item}-{tier}.png"], "references": [["@hero", "art/sketch.png"]],
    "matrix": [{"item": ["sword", "shield"], "tier": ["wood", "iron"]}], "resize": [[64, 64]],
    "key_out": [{"color": "#ffffff", "tolerance": 12}], "tags": [["ui", "icons"]], "remote": ["s3://bucket/assets"],
}


def _catalogue_enums() -> dict[str, list[str]]:
    from ..catalog import ALL_ACTIONS, EXTENDED_RATIOS, MODELS_OF, RESOLUTIONS, STANDARD_RATIOS

    models = sorted({m.id for every in MODELS_OF.values() for m in every})
    return {"model": models, "action": list(ALL_ACTIONS), "aspect_ratio": list(STANDARD_RATIOS + EXTENDED_RATIOS),
            "resolution": list(RESOLUTIONS)}


def _drop_null(prop: dict[str, Any]) -> dict[str, Any]:
    """TOML has no null: an ``X | None`` field is just an optional X."""
    options = [o for o in prop.get("anyOf", []) if o != {"type": "null"}]
    if "anyOf" in prop and len(options) == 1:
        prop = {k: v for k, v in prop.items() if k != "anyOf"} | options[0]
    if prop.get("default", 0) is None:
        del prop["default"]
    return prop


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of ``assets.toml``: what editors use for completion and hover docs."""
    raw = DocumentModel.model_json_schema(ref_template="#/definitions/{model}")
    definitions: dict[str, Any] = raw.pop("$defs", {})
    enums = _catalogue_enums()
    for name, schema in [("DocumentModel", raw), *definitions.items()]:
        schema.pop("title", None)
        for field, prop in list(schema.get("properties", {}).items()):
            prop = _drop_null(prop)
            prop.pop("title", None)
            if "$ref" in prop:      # draft-07 ignores siblings of $ref: wrap it
                prop = {"allOf": [{"$ref": prop.pop("$ref")}], **prop}
            prop["description"] = FIELD_DOCS.get(f"{name}.{field}", FIELD_DOCS[field])
            if field in enums and prop.get("type") == "string":
                prop["enum"] = enums[field]
            if field in _EXAMPLES:
                prop["examples"] = _EXAMPLES[field]
            schema["properties"][field] = prop
    return {"$schema": SCHEMA_DRAFT, "title": "assets.toml (assetgen)",
            "description": "An assetgen manifest: every generated image of a project, declared once.",
            **raw, "definitions": definitions}


def json_schema_text() -> str:
    """``json_schema()`` as ``assetgen schema`` prints it and ``schema/assets.schema.json`` holds it:
    sorted keys, so the output is the same on every run and a diff shows only real changes."""
    return json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

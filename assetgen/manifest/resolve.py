"""Pass 2 of loading a manifest: validated tables → resolved ``Target``s, every problem reported.

For each ``[targets.X]``: expand its ``matrix`` into rows (``X.a.b``; an axis may be a table of values
with fields), merge fields in precedence order defaults < styles (in order, each after what it
``extends``) < target < matrix value fields < row override (``[targets.X.rows."a.b"]``) < profile,
compose the prompt (``prompt_template``; by default the target's or the row's prompt, then the styles'
fragments after a blank line), check the result against the model catalog, resolve references and
outputs (the target's own or an ``[output_sets.NAME]``) with their derivations (pick, resize, fit,
format, quality, key_out).
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import os
import posixpath
import re
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..errors import Problem, did_you_mean, listing
from ..images.derive import DEFAULT_QUALITY, Derivation, KeyOut, is_colour
from ..state.atomic import not_a_file
from .model import Output, Reference, Settings, Target
from .providers import choose_provider
from .sheets import grid_cell, grid_rows
from .positions import LineIndex

if TYPE_CHECKING:
    from .schema import DocumentModel

BUILTIN_DEFAULTS: dict[str, Any] = {
    "model": catalog.DEFAULT_MODEL, "action": "generate", "aspect_ratio": "1:1", "resolution": "1K",
    "n": 1, "seed": -1, "references": [], "google_search": False, "google_image_search": False,
    "official_fallback": False,
}
_GENERATION_FIELDS = tuple(BUILTIN_DEFAULTS) + ("candidates",)
_DERIVE_FIELDS = ("resize", "fit", "format", "quality", "background", "key_out")
_STRUCTURAL = frozenset({"prompt", "output", "outputs", "style", "matrix", "pick", "meta", "rows", "choices"})
_COMPOSING = ("prompt_template", "style_joiner")   # shape the prompt; merged like fields, never in values
DEFAULT_JOINER = "\n\n"
_OUTPUT_NAMES = frozenset({"i", "name", "width", "height"})   # placeholders of output paths only
_OWN_FIELDS = frozenset({"tags", "notes"})      # the project's own: out of the style's digest and the key
_EXTENSIONS = {"jpg": (".jpg", ".jpeg"), "png": (".png",), "webp": (".webp",)}
_FORMAT_BY_SUFFIX = {suffix: fmt for fmt, suffixes in _EXTENSIONS.items() for suffix in suffixes}
_SLUG_RE = re.compile(r"[^A-Za-z0-9_-]+")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
MAX_NAME = 128            # characters in a [targets.NAME] (its default output is NAME.jpg: one path component)
MAX_ROWS = 10_000         # matrix rows per target: more is a mistake (and a bill) rather than a plan
MAX_COMPONENT = 255       # bytes in one file or folder name: every common file system's limit
Report = Callable[..., None]


def resolve(doc: DocumentModel | None, data: dict[str, Any], broken: dict[str, set[str]], root: Path,
            settings: Settings, lines: LineIndex, problems: list[Problem], profile: str | None, *,
            elsewhere: Mapping[str, Target] | None = None) -> tuple[dict[str, Target], dict[str, list[str]]]:
    """The targets of ``data``'s tables. ``elsewhere``: targets resolved before from tables not in
    ``data`` (an incremental load): ``@`` references may name them, and outputs must not collide."""
    if doc is None:
        return {}, {}
    chosen = _profile(doc, profile, settings, lines, problems)
    if chosen is None:
        return {}, {}
    profile_fields, out_dir = chosen
    raw_targets: dict[str, Any] = data["targets"] if isinstance(data.get("targets"), dict) else {}
    chains = style_chains(doc, broken, lines, problems)
    rows = _expand(doc, raw_targets, broken, lines, problems, profile_fields, chains)
    elsewhere = elsewhere or {}
    known = {name for name, _b, _s in rows} | (broken["targets"] & set(raw_targets)) | set(elsewhere)
    resolver = _Resolver(doc, raw_targets, broken, root, settings, lines, problems, profile, profile_fields,
                         out_dir, known, elsewhere, chains)
    targets: dict[str, Target] = {}
    for name, base, subs in rows:
        target = resolver.target(name, base, subs)
        if target is not None:
            targets[name] = target
    groups: dict[str, list[str]] = {}
    for name, base, _subs in rows:
        if name != base:
            groups.setdefault(base, []).append(name)
    return targets, groups


def _profile(doc: DocumentModel, profile: str | None, settings: Settings, lines: LineIndex,
             problems: list[Problem]) -> tuple[dict[str, Any], str] | None:
    """(the fields ``[profiles.NAME]`` sets, the folder outputs go to); None (reported) for an unknown
    profile or a bad ``out_dir``."""
    if profile is None:
        return {}, settings.out_dir
    if profile not in doc.profiles:
        problems.append(Problem(f"unknown profile '{profile}'{did_you_mean(profile, list(doc.profiles))}; "
                                f"profiles: {', '.join(doc.profiles) or 'none (add [profiles.NAME])'}",
                                field="profile"))
        return None
    chosen = doc.profiles[profile]
    profile_fields = chosen.model_dump(exclude_none=True, exclude={"out_dir"})
    out_dir = posixpath.normpath((chosen.out_dir or f"{settings.out_dir}/{profile}").replace("\\", "/"))
    if chosen.out_dir is not None:
        from .schema import out_dir_problem

        problem = out_dir_problem(chosen.out_dir.replace("\\", "/"), settings.allow_outside)
        if problem:
            problems.append(Problem(f"[profiles.{profile}] {problem}", field="out_dir",
                                    line=lines.line(("profiles", profile, "out_dir"))))
            return None
    return profile_fields, out_dir


def merge_fields(defaults: dict[str, Any], style: dict[str, Any], own: dict[str, Any], profile: dict[str, Any],
                 subs: dict[str, str]) -> dict[str, Any]:
    """A target's generation fields, in precedence order built-in < [defaults] < style < target <
    profile; references are the target's own then the style's (unless the profile replaces them all),
    with the row's matrix values filled in."""
    values = {**BUILTIN_DEFAULTS, **defaults, **style, **own, **profile}
    if "references" not in profile:
        values["references"] = list(own.get("references", defaults.get("references", []))) + \
            list(style.get("references", []))
    values["references"] = [_sub(r, subs) for r in values["references"]]
    return values


def _own_fields(defaults: dict[str, Any], style: dict[str, Any], own: dict[str, Any],
                meta: dict[str, Any] | None) -> dict[str, Any]:
    """The project's own fields of a target: tags of all three (in order, once each), the most
    specific notes, the free meta table."""
    tags = dict.fromkeys([*defaults.get("tags", []), *style.get("tags", []), *own.get("tags", [])])
    notes = own.get("notes", style.get("notes", defaults.get("notes", "")))
    return {"tags": tuple(tags), "notes": notes, "meta": meta or None}


def compose_prompt(prompt: str, style_prompt: str | None, subs: dict[str, str]) -> str:
    """The target's prompt, then the style's fragment after a blank line, matrix values filled in."""
    return compose(prompt, [style_prompt] if style_prompt else [], subs)


def compose(prompt: str, style_prompts: list[str], subs: dict[str, str], template: str | None = None,
            joiner: str | None = None) -> str:
    """The composed prompt: ``template`` with ``{prompt}`` (the target's, placeholders filled) and
    ``{style}`` (the styles' fragments, each stripped, joined by ``joiner``, default a blank line).

    Without a template it is what it always was (keys depend on it): the prompt, then ``{style}``
    after a blank line, or the prompt alone when no style has a prompt. With one, a missing ``{style}``
    leaves no stray separator at either end (``"{style}, {prompt}"`` with no style is the prompt)."""
    composed = _sub(prompt, subs).strip()
    fragments = [_sub(p, subs).strip() for p in style_prompts if p]
    style = (DEFAULT_JOINER if joiner is None else joiner).join(fragments)
    if template is None:
        return f"{composed}\n\n{style}" if fragments else composed
    filled = _fill(template, {"prompt": composed, "style": style})
    return filled.strip() if style else filled.strip().strip(",;").strip()


class _Resolver:
    """What one load shares between its targets: the document, where to report, and per-load memos
    (thousands of targets share a few styles, reference files and output settings)."""

    def __init__(self, doc: DocumentModel, raw_targets: dict[str, Any], broken: dict[str, set[str]], root: Path,
                 settings: Settings, lines: LineIndex, problems: list[Problem], profile: str | None,
                 profile_fields: dict[str, Any], out_dir: str, known: set[str],
                 elsewhere: Mapping[str, Target], chains: dict[str, list[str] | None]) -> None:
        self.doc, self.raw_targets, self.broken, self.root = doc, raw_targets, broken, root
        self.settings, self.lines, self.problems = settings, lines, problems
        self.profile, self.profile_fields, self.out_dir, self.known = profile, profile_fields, out_dir, known
        self.defaults = doc.defaults.model_dump(exclude_none=True)
        self.owners = {path: name for name, target in elsewhere.items() for path in target.output_paths}
        self.chains = chains
        self.overrides: dict[int, dict[str, Any]] = {}      # a value table's target fields, by table
        self.styles: dict[tuple[str, ...], _Styles] = {}
        self.settings_shape = {k: v for k, v in doc.settings.model_dump(include=set(_COMPOSING)).items()
                               if v is not None}
        self.checked: dict[Path, str | None] = {}
        self.derivations: dict[tuple[Any, ...], Derivation] = {}
        self.places = _Places(root, settings.allow_outside)
        self.templates: dict[tuple[str, str], bool] = {}    # (shared table, template) → usable (reported once)

    def target(self, name: str, base: str, subs: dict[str, str]) -> Target | None:
        """The row ``name`` of ``[targets.base]``; None (every problem reported) if it does not resolve."""
        spec = self.doc.targets[base]
        report = self.reporter(name, base, subs)
        styles = self.styles_of(spec, report)
        if styles is None:
            return None
        style_fields, style_digest = styles.fields, styles.digest
        # The table as written (validated above) holds exactly the fields set: no model_dump needed.
        own = {k: v for k, v in self.raw_targets[base].items() if k not in _STRUCTURAL}
        prompt_from = (f"[targets.{base}] prompt", spec.prompt)
        for axis, value, table in value_tables(spec, subs):
            overrides = self.overrides.get(id(table))
            if overrides is None:        # one dump per value, not one per row (a crossed matrix has hundreds)
                overrides = self.overrides[id(table)] = table.model_dump(
                    exclude_none=True, include=set(type(table).model_fields) - {"prompt"})
            own = _over_row(own, overrides)
            if table.prompt is not None:
                prompt_from = (f"[targets.{base}.matrix.{axis}.{value}] prompt", table.prompt)
        row = row_override(spec, name, base)
        if row is not None:
            own = _over_row(own, row.model_dump(exclude_none=True, exclude={"prompt", "pick"}))
            if row.prompt is not None:
                prompt_from = (f'[targets.{base}.rows."{name[len(base) + 1:]}"] prompt', row.prompt)
        if spec.choices:
            subs = {**subs, **choose(name, spec.choices)}
        shape = {**self.settings_shape, **_shape(self.defaults), **_shape(style_fields), **_shape(own),
                 **_shape(self.profile_fields)}
        values = merge_fields(self.defaults, style_fields, own, self.profile_fields, subs)
        template, joiner = shape.get("prompt_template"), shape.get("style_joiner")
        if template is not None and not self._template_ok(
                template, report, self._shape_source(styles, own, base).get("prompt_template", "")):
            return None
        prompt = compose(prompt_from[1], [p for _w, p in styles.prompts], subs, template, joiner)
        # OpenAI's request fields merge key by key, like a table of their own (never post-processing).
        values["openai"] = {**self.defaults.get("openai", {}), **style_fields.get("openai", {}),
                            **(own.get("openai") or {}), **self.profile_fields.get("openai", {})}
        provider_ok = choose_provider(values, self.settings.provider,
                                      {**self.defaults, **style_fields, **own, **self.profile_fields}, report)
        ok = _check_capabilities(values, report) and provider_ok
        if not prompt:
            report("must not be empty", "prompt")
            ok = False
        chosen = row.pick if row is not None and row.pick is not None else spec.pick
        n, candidates, pick, counted = _count(values, chosen, report)
        ok = counted and ok
        refs = _references(values["references"], self.known, self.root, report, self.checked,
                           self.settings.allow_outside)
        listed = self.listed_outputs(spec, base, name, own, styles, report)
        if listed is None:
            return None
        outputs = _outputs(spec, name, subs, values, n, candidates, pick, self.out_dir, report, self.derivations,
                           self.places, listed)
        ok = self._own_outputs(name, outputs, report) and ok
        if not (ok and refs is not None and outputs):
            return None
        target = Target(
            name=name, prompt=prompt, model=values["model"], action=values["action"],
            aspect_ratio=values["aspect_ratio"], resolution=values["resolution"], n=n,
            seed=values["seed"], references=refs, google_search=values["google_search"],
            google_image_search=values["google_image_search"],
            official_fallback=values["official_fallback"], outputs=outputs, base=base,
            candidates=candidates, pick=pick, style=styles.name, style_digest=style_digest,
            provider=values["provider"], openai=values["openai"],
            prompt_parts=_prompt_parts(base, prompt_from, styles, shape, self._shape_source(styles, own, base),
                                       subs),
            **_own_fields(self.defaults, style_fields, own, spec.meta))
        return grid_cell(target, spec.grid, spec.grid_trim, subs) if spec.grid is not None else target

    def styles_of(self, spec: Any, report: Report) -> _Styles | None:
        """The target's styles, composed (memoised per list); None (reported) for an unknown one."""
        names = _names(spec.style)
        memo = self.styles.get(tuple(names))
        if memo is not None:
            return memo
        chain: list[str] = []
        for style in names:
            flat = self.chains.get(style)
            if flat is None:
                if style not in self.chains and style not in self.broken["styles"]:
                    report(f"unknown style '{style}'{did_you_mean(style, list(self.doc.styles))}; "
                           f"styles: {', '.join(self.doc.styles) or 'none (add [styles.NAME])'}", "style")
                return None              # (a broken style or a cycle is reported once, at its table)
            chain += [s for s in flat if s not in chain]
        self.styles[tuple(names)] = made = compose_styles(self.doc, names, chain)
        return made

    def listed_outputs(self, spec: Any, base: str, name: str, own: dict[str, Any], styles: _Styles,
                       report: Report) -> tuple[str, list[Any]] | None:
        """(where they come from, output rows) when the target writes listed outputs: its own
        ``outputs`` or the ``[output_sets.NAME]`` the most specific layer names; ("", []) when it writes
        ``output`` (or its default name); None (reported) for an unknown set."""
        chosen = self.profile_fields.get("outputs")
        if chosen is None:
            chosen = own.get("outputs") if isinstance(own.get("outputs"), str) else None
        if chosen is None:
            if spec.output is not None or isinstance(spec.outputs, list):
                return ("", list(spec.outputs or []))
            if isinstance(spec.outputs, str):
                chosen = spec.outputs
            else:
                chosen = styles.fields.get("outputs", self.defaults.get("outputs"))
        if chosen is None:
            return ("", [])
        found = self.doc.output_sets.get(chosen)
        if found is None:
            if chosen not in self.broken["output_sets"]:
                sets = list(self.doc.output_sets)
                report(f"unknown output set '{chosen}'{did_you_mean(chosen, sets)}; output sets: "
                       f"{', '.join(sets) or 'none (add [output_sets.NAME] outputs = [ … ])'}", "outputs")
            return None
        if spec.output is not None and self.profile_fields.get("outputs") is None:
            report(f"set either `output` or `outputs` (here the output set '{chosen}'), not both", "outputs")
            return None
        return (chosen, list(found.outputs))

    def _template_ok(self, template: str, report: Report, where: str) -> bool:
        """Whether ``template`` (set in the table ``where``) is usable. A problem is reported once per
        table: a shared one ([settings], [defaults], a style, the profile) at its own line, not once
        per target that inherits it."""
        problem = _template_problem(template)
        if where.startswith("[targets."):
            if problem:
                report(problem, "prompt_template")
            return not problem
        if (where, template) not in self.templates:
            self.templates[(where, template)] = not problem
            if problem:
                line = self.lines.line((*where[1:-1].split(".", 1), "prompt_template"))
                self.problems.append(Problem(f"{where} {problem}", field="prompt_template", line=line))
        return self.templates[(where, template)]

    def _shape_source(self, styles: _Styles, own: dict[str, Any], base: str) -> dict[str, str]:
        """Where ``prompt_template`` came from (for ``explain``)."""
        layers = [("[settings]", self.settings_shape), ("[defaults]", self.defaults),
                  *[(f"[styles.{s}]", self.doc.styles[s].model_dump(include=set(_COMPOSING), exclude_none=True))
                    for s in styles.chain],
                  (f"[targets.{base}] (or its row)", own), (f"[profiles.{self.profile}]", self.profile_fields)]
        found: dict[str, str] = {}
        for label, layer in layers:
            for key in _COMPOSING:
                if layer.get(key) is not None:
                    found[key] = label
        return found

    def _own_outputs(self, name: str, outputs: tuple[Output, ...], report: Report) -> bool:
        """Claim ``outputs`` for ``name``; False (reported) if another target writes one of them."""
        ok = True
        for out in outputs:
            other = self.owners.setdefault(out.path, name)
            if other != name:
                report(f"writes '{out.path}', which target '{other}' also writes; give one of them "
                       f"another output", "output")
                ok = False
        return ok

    def reporter(self, name: str, base: str, subs: Mapping[str, str] | None = None) -> Report:
        """Reports a problem of the row ``name``, pointing at the line that set the field: the
        profile, the target, its style, or [defaults]."""
        doc, profile = self.doc, self.profile
        spec = doc.targets[base]
        row = row_override(spec, name, base)
        styles: list[str] = []
        for style in _names(spec.style):
            styles += [s for s in self.chains.get(style) or [] if s not in styles]
        values = [(("targets", base, "matrix", axis, value), table.model_fields_set,
                   f"[targets.{base}.matrix.{axis}.{value}]")
                  for axis, value, table in reversed(value_tables(spec, subs))]
        sources: list[tuple[tuple[str, ...], set[str], str]] = [
            (("profiles", profile or ""), set(self.profile_fields), f"[profiles.{profile}]"),
            (("targets", base, "rows", name[len(base) + 1:]), row.model_fields_set if row else set(),
             f'[targets.{base}.rows."{name[len(base) + 1:]}"]'),
            *values,
            (("targets", base), spec.model_fields_set, ""),
            *[(("styles", s), doc.styles[s].model_fields_set, f"[styles.{s}]") for s in reversed(styles)],
            (("defaults",), doc.defaults.model_fields_set, "[defaults]"),
        ]

        def report(message: str, fieldname: str | None = None) -> None:
            where: tuple[str, ...] = ("targets", base)
            for table, fields_set, label in sources:
                if fieldname and fieldname in fields_set:
                    where = table
                    if label:
                        message = f"{message} (set in {label})"
                    break
            self.problems.append(Problem(message, target=name, field=fieldname,
                                         line=self.lines.line(where + ((fieldname,) if fieldname else ()))))
        return report


def _template_problem(template: str) -> str | None:
    """What is wrong with a ``prompt_template``, with what would be valid; None if nothing."""
    try:
        used = [f for _l, f, _s, _c in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        return f"'{template}': {exc} (write {{{{ and }}}} for literal braces)"
    unknown = [f for f in dict.fromkeys(used) if f not in ("prompt", "style")]
    if not unknown and "prompt" in used:
        return None
    rule = "may use {prompt} (required) and {style} only; matrix values go into the prompt itself"
    if not unknown:
        return f"'{template}' has no {{prompt}}: it {rule}"
    close = difflib.get_close_matches(unknown[0], ["prompt", "style"], n=1)
    guess = f" (did you mean {{{close[0]}}}?)" if close else ""
    return (f"'{template}': unknown placeholder {', '.join('{' + u + '}' for u in unknown)}{guess}; "
            f"a template {rule}")


@dataclass(frozen=True)
class _Styles:
    """A target's styles composed: what they contribute, in order."""

    name: str | None                      # as the target names them ("a, b"); None without a style
    chain: tuple[str, ...]                # every style applied, each after what it extends, once
    fields: dict[str, Any]                # merged in order; references and tags add up
    prompts: tuple[tuple[str, str], ...]  # (style, its prompt fragment) in order
    digest: str | None


_NO_STYLES = _Styles(None, (), {}, (), None)


def _names(style: str | list[str] | None) -> list[str]:
    return [] if style is None else [style] if isinstance(style, str) else list(style)


def style_chains(doc: DocumentModel, broken: dict[str, set[str]], lines: LineIndex,
                 problems: list[Problem]) -> dict[str, list[str] | None]:
    """Each style's chain: what it ``extends`` (depth first, in order, once each), then itself. None for
    a style in a cycle or extending an unknown one (reported here, once, at its ``extends`` line)."""
    chains: dict[str, list[str] | None] = {}

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in chains:
            return chains[name]
        if name in path:
            cycle = path[path.index(name):] + [name]
            problems.append(Problem(f"[styles.{name}] styles extend each other in a cycle: "
                                    f"{' -> '.join(cycle)}; remove one `extends`", field="extends",
                                    line=lines.line(("styles", name, "extends"))))
            for member in cycle:
                chains[member] = None
            return None
        chain: list[str] = []
        for parent in _names(doc.styles[name].extends):
            if parent not in doc.styles:
                if parent not in broken["styles"]:
                    problems.append(Problem(
                        f"[styles.{name}] extends unknown style '{parent}'{did_you_mean(parent, list(doc.styles))}"
                        f"; styles: {', '.join(doc.styles)}", field="extends",
                        line=lines.line(("styles", name, "extends"))))
                chains[name] = None
                return None
            flat = visit(parent, path + [name])
            if flat is None:
                chains.setdefault(name, None)
                return None
            chain += [s for s in flat if s not in chain]
        if name in chains:        # set while visiting: part of a cycle found below
            return chains[name]
        chains[name] = made = [*(s for s in chain if s != name), name]
        return made

    for style in doc.styles:
        visit(style, [])
    return chains


def compose_styles(doc: DocumentModel, names: list[str], chain: list[str]) -> _Styles:
    """Merge the fields of ``chain`` in order: a later style overrides an earlier one's field; their
    ``references`` and ``tags`` add up in order; ``openai`` merges key by key."""
    if not chain:
        return _NO_STYLES
    fields: dict[str, Any] = {}
    dumps = []
    for style in chain:
        model = doc.styles[style]
        dumps.append(model.model_dump(exclude_none=True, exclude=set(_OWN_FIELDS)))
        own = model.model_dump(exclude_none=True, exclude={"prompt", "extends"})
        merged = {**fields, **own}
        for listed in ("references", "tags"):
            if listed in own and listed in fields:
                merged[listed] = [*fields[listed], *own[listed]]
        if "openai" in own and "openai" in fields:
            merged["openai"] = {**fields["openai"], **own["openai"]}
        fields = merged
    # One style as before (the digest is recorded in the lock, for diffs); several: all of them.
    digest = _digest(dumps[0]) if len(dumps) == 1 else _digest({"styles": dumps})
    prompts = tuple((s, doc.styles[s].prompt or "") for s in chain)
    return _Styles(", ".join(names), tuple(chain), fields, prompts, digest)


def value_tables(spec: Any, subs: Mapping[str, str] | None) -> list[tuple[str, str, Any]]:
    """(axis, value, its ``AxisValueModel``) for each axis of the row ``subs`` written as a table."""
    if not spec.matrix or not subs:
        return []
    return [(axis, subs[axis], values[subs[axis]]) for axis, values in spec.matrix.items()
            if isinstance(values, dict) and subs.get(axis) in values]


def choose(row: str, choices: Mapping[str, list[str]]) -> dict[str, str]:
    """``{choose:NAME}`` of the row ``row``: the item at the first 8 bytes of SHA-256(row name), big
    endian, modulo the list's length. Fixed forever: it decides prompts, hence keys."""
    index = int.from_bytes(hashlib.sha256(row.encode()).digest()[:8], "big")
    return {f"choose:{name}": items[index % len(items)] for name, items in choices.items() if items}


def _shape(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {k: layer[k] for k in _COMPOSING if layer.get(k) is not None}


def _prompt_parts(base: str, prompt_from: tuple[str, str], styles: _Styles, shape: dict[str, Any],
                  shape_from: dict[str, str], subs: Mapping[str, str]) -> tuple[tuple[str, str, str], ...]:
    """(piece, where it was set, its text) for ``explain``: the prompt, each style's fragment, the
    template and joiner when set, and each placeholder's value."""
    parts = [("{prompt}", prompt_from[0], prompt_from[1])]
    parts += [("{style}", f"[styles.{s}] prompt", text) for s, text in styles.prompts if text]
    parts += [(key, shape_from.get(key, "?"), shape[key]) for key in _COMPOSING if key in shape]
    texts = [prompt_from[1], *(text for _s, text in styles.prompts)]
    used = {f for t in texts if "{" in t for f in _fields(t)}
    for name in sorted(used):
        if name not in subs:
            continue
        axis, dot, field = name.partition(".")
        if name.startswith("choose:"):
            where = f"[targets.{base}.choices] {name[7:]}"
        elif dot:
            where = f"[targets.{base}.matrix.{axis}.{subs.get(axis, '?')}] {field}"
        else:
            where = f"matrix axis {name}"
        parts.append((f"{{{name}}}", where, subs[name]))
    return tuple(parts)


def own_prompt(target: Target) -> str:
    """The target's own prompt (its table's, a matrix value's or a row's) with its placeholders filled:
    no style fragment, template or grid layout sentence (``export``'s alt text)."""
    if not target.prompt_parts:
        return target.prompt
    text = target.prompt_parts[0][2]
    values = {piece[1:-1]: value for piece, _where, value in target.prompt_parts[1:]
              if piece.startswith("{") and piece not in ("{prompt}", "{style}")}
    return _sub(text, values).strip()


def row_override(spec: Any, name: str, base: str) -> Any:
    """The ``[targets.base.rows."a.b"]`` table of the row ``name`` (a ``RowModel``), or None."""
    if not spec.rows or name == base:
        return None
    return spec.rows.get(name[len(base) + 1:])


def _over_row(own: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """A target's own fields with one row's overrides on top: ``openai`` merges key by key, tags add."""
    merged = {**own, **row}
    if "openai" in row:
        merged["openai"] = {**(own.get("openai") or {}), **row["openai"]}
    if "tags" in row:
        merged["tags"] = [*own.get("tags", []), *row["tags"]]
    return merged


def _digest(data: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# -- matrix ---------------------------------------------------------------------------------------------

def _expand(doc: DocumentModel, raw_targets: dict[str, Any], broken: dict[str, set[str]], lines: LineIndex,
            problems: list[Problem], profile_fields: dict[str, Any],
            chains: dict[str, list[str] | None]) -> list[tuple[str, str, dict[str, str]]]:
    """(row name, target table, placeholder values) for every target; plain targets have no values.
    A row's values are its axes' (``{axis}``) and their value tables' fields (``{axis.field}``)."""
    rows: list[tuple[str, str, dict[str, str]]] = []
    seen: dict[str, str] = {}
    shared: set[tuple[str, int]] = set()
    for base, spec in doc.targets.items():
        report = _matrix_reporter(base, lines, problems, shared)
        if not re.match(r"^[A-Za-z0-9_-]+$", base):
            report("target names may use only letters, digits, '_' and '-' (dots name matrix rows)", None)
            continue
        if len(base) > MAX_NAME:
            problems.append(Problem(f"a target name may be at most {MAX_NAME} characters; this one has "
                                    f"{len(base)}", target=f"{base[:40]}…", line=lines.line(("targets", base))))
            continue
        if spec.grid is not None or spec.grid_trim is not None:   # cells r<row>c<col> (``manifest.sheets``)
            cells = grid_rows(base, spec, report, lambda axes, s=spec, r=report: _placeholders_ok(
                _texts(doc, s, profile_fields, chains), dict.fromkeys(axes, []), r, lines=lines))
            seen.update(dict.fromkeys((name for name, _subs in cells), base))
            rows += [(name, base, subs) for name, subs in cells]
            continue
        axes = {axis: list(values) if isinstance(values, dict) else [str(v) for v in values]
                for axis, values in (spec.matrix or {}).items()}
        problem = _matrix_problem(axes, has_matrix=spec.matrix is not None)
        if problem is not None:
            report(problem)
            continue
        fields = _value_fields(base, spec, lines, problems)
        if fields is None:
            continue
        texts = _texts(doc, spec, profile_fields, chains)
        if not _placeholders_ok(texts, axes, report, fields, spec.choices or {}, lines) or \
                not _path_values_ok(texts, axes, report):
            continue
        if axes and spec.output is None and not spec.outputs and not _row_names_fit(base, axes, report):
            continue
        before = len(rows)
        _add_rows(base, axes, fields, rows, seen, report)
        if spec.rows:
            _rows_known(base, spec.rows, [n for n, _b, _s in rows[before:]], axes, lines, problems)
    return rows


def _matrix_reporter(base: str, lines: LineIndex, problems: list[Problem], shared: set[tuple[str, int]]) -> Report:
    """Reports a problem of ``[targets.base]`` at its field's line, or at ``line``: a shared table's (an
    output set's row), reported once however many targets use it."""
    def report(message: str, fieldname: str | None = "matrix", line: int | None = None) -> None:
        if line is not None:
            if (message, line) in shared:
                return
            shared.add((message, line))
        problems.append(Problem(message, target=base, field=fieldname, line=line or lines.line(
            ("targets", base) + ((fieldname,) if fieldname else ()))))
    return report


def _add_rows(base: str, axes: dict[str, list[str]], fields: dict[str, dict[str, dict[str, str]]],
              rows: list[tuple[str, str, dict[str, str]]], seen: dict[str, str], report: Report) -> None:
    """Append the rows of ``[targets.base]``: one per combination of its axes' values, with the
    values' fields (``axis.field``) among its placeholder values."""
    combos = itertools.product(*axes.values()) if axes else [()]
    for combo in combos:
        subs = dict(zip(axes, combo, strict=True))
        for axis, value in zip(axes, combo, strict=True) if fields else ():
            subs.update(fields.get(axis, {}).get(value, {}))
        name = ".".join([base, *(_SLUG_RE.sub("-", v).strip("-") or "x" for v in combo)])
        if name in seen:
            shown = {a: subs[a] for a in axes}
            report(f"rows {shown} and an earlier row are both named '{name}'; make the axis values distinct")
            continue
        seen[name] = base
        rows.append((name, base, subs))


def _rows_known(base: str, overrides: Mapping[str, Any], names: list[str], axes: dict[str, list[str]],
                lines: LineIndex, problems: list[Problem]) -> None:
    """Every ``[targets.base.rows.ROW]`` must name a row of the matrix (a typo would silently apply
    nothing)."""
    valid = [n[len(base) + 1:] for n in names]
    for row in overrides:
        if row in valid:
            continue
        if not axes:
            message = (f"rows.\"{row}\": only a matrix target has rows to override; add "
                       f"matrix = {{ … }} or set the field on the target itself")
        else:
            shown = ", ".join(f'"{v}"' for v in valid[:20]) + (f" … ({len(valid)} rows)" if len(valid) > 20 else "")
            message = f"rows.\"{row}\" is not a row of this matrix{did_you_mean(row, valid)}; rows: {shown}"
        problems.append(Problem(message, target=base, field="rows",
                                line=lines.line(("targets", base, "rows", row))))


def _matrix_problem(axes: dict[str, list[str]], *, has_matrix: bool) -> str | None:
    """What is wrong with a target's matrix axes (in words), or None."""
    if has_matrix and not axes:
        return "a matrix needs at least one axis, e.g. matrix = { item = [\"sword\", \"shield\"] }"
    empty = [axis for axis, values in axes.items() if not values]
    if empty:
        return f"axis {', '.join(empty)} has no values"
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_ROWS:           # counted, never expanded: 100 × 100 × 100 rows would be built first
        sizes = " × ".join(str(len(v)) for v in axes.values())
        return f"the matrix makes {count:,} rows ({sizes}); a target may have at most {MAX_ROWS:,}"
    return None


def _texts(doc: DocumentModel, spec: Any, profile_fields: dict[str, Any],
           chains: dict[str, list[str] | None]) -> list[tuple[str, str, str]]:
    """(field, where, text) for every string ``_sub`` will fill in for this target's rows.

    Inherited strings count too (its styles' prompts and references, the references of ``[defaults]``
    or of the profile, the output sets it may write): a placeholder there is filled from the target's
    axes, so it is checked against them.
    """
    profile_refs = profile_fields.get("references")
    own = list(spec.references) if spec.references is not None else list(doc.defaults.references or [])
    texts = [("prompt", "", spec.prompt), ("output", "", spec.output or "")]
    texts += [("references", "", r) for r in (profile_refs if profile_refs is not None else own)]
    texts += [("outputs", "", o.output) for o in spec.outputs or [] if not isinstance(spec.outputs, str)]
    texts += [("prompt", f'rows."{row}" ', r.prompt) for row, r in (spec.rows or {}).items() if r.prompt]
    tables = [(f"matrix.{axis}.{value} ", table) for axis, values in (spec.matrix or {}).items()
              if isinstance(values, dict) for value, table in values.items()]
    for where, table in tables:
        texts += [("prompt", where, table.prompt or ""), *(("references", where, r) for r in table.references or [])]
    styles: list[str] = []
    for style in _names(spec.style):
        styles += [s for s in chains.get(style) or [] if s not in styles]
    for style in styles:
        st = doc.styles[style]
        texts += [("style", f"[styles.{style}] ", t) for t in [st.prompt or "", *(st.references or [])]]
    sets = [spec.outputs if isinstance(spec.outputs, str) else None, profile_fields.get("outputs"),
            doc.defaults.outputs, *(doc.styles[s].outputs for s in styles), *(t.outputs for _w, t in tables),
            *(r.outputs for r in (spec.rows or {}).values())]
    for name in dict.fromkeys(n for n in sets if n and n in doc.output_sets):
        texts += [("outputs", f"[output_sets.{name}] ", o.output) for o in doc.output_sets[name].outputs]
    return texts


def _value_fields(base: str, spec: Any, lines: LineIndex,
                  problems: list[Problem]) -> dict[str, dict[str, dict[str, str]]] | None:
    """axis → value → {"axis.field": text} of the axes written as tables of values; None (reported)
    when a field's value is not text, a number, a boolean or a list of texts."""
    found: dict[str, dict[str, dict[str, str]]] = {}
    ok = True
    for axis, values in (spec.matrix or {}).items():
        if not isinstance(values, dict):
            continue
        found[axis] = {}
        for value, table in values.items():
            texts: dict[str, str] = {}
            for field, got in table.model_dump(exclude_none=True).items():
                text = _as_text(got)
                if text is None:
                    if field in (table.model_extra or {}):
                        problems.append(Problem(
                            f"matrix.{axis}.{value}: field '{field}' is {type(got).__name__}; a value's own "
                            f"field is text, a number, true/false or a list of texts", target=base, field="matrix",
                            line=lines.line(("targets", base, "matrix", axis, value, field))))
                        ok = False
                    continue
                texts[f"{axis}.{field}"] = text
            found[axis][value] = texts
    return found if ok else None


def _as_text(value: Any) -> str | None:
    """A value's field as ``{axis.field}`` writes it: lists joined by ", "."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return ", ".join(str(v) for v in value)
    return None


def _placeholders_ok(texts: list[tuple[str, str, str]], axes: Mapping[str, list[str]], report: Report,
                     fields: Mapping[str, dict[str, dict[str, str]]] | None = None,
                     choices: Mapping[str, list[str]] | None = None, lines: LineIndex | None = None) -> bool:
    """Every placeholder names something a row has: an axis, a field every value of its axis has,
    a ``choices`` list (``{choose:NAME}``); output paths also ``{i}``, ``{name}``, ``{width}``, ``{height}``.
    A problem in an output set's row points at that row's line (``lines``), not the target's."""
    fields, choices = fields or {}, choices or {}
    shared = {f for by_value in fields.values() for f in set.intersection(*(set(v) for v in by_value.values()))}
    known = set(axes) | shared | {f"choose:{c}" for c in choices}
    ok = True
    for fieldname, where, text in texts:
        if "{" not in text and "}" not in text:
            continue
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            report(f"{where}'{text}': {exc} (write {{{{ and }}}} for literal braces)", fieldname)
            ok = False
            continue
        if any(f is not None and (conv or (spec and f != "choose")) for _lit, f, spec, conv in parsed):
            report(f"{where}'{text}': a placeholder is a bare axis name like {{item}}, without ! or : "
                   f"(write {{{{ and }}}} for literal braces)", fieldname)
            ok = False
            continue
        used = {f"choose:{spec}" if f == "choose" else f for _lit, f, spec, _conv in parsed if f is not None}
        path = fieldname in ("output", "outputs")
        unknown = used - known - (_OUTPUT_NAMES if path else set())
        if unknown:
            message = where + _unknown_placeholders(sorted(unknown), axes, fields, choices, path)
            if lines is not None and where.startswith("[output_sets."):
                report(message, fieldname, line=lines.line_holding(("output_sets", where[13:-2], "outputs"), text))
            else:
                report(message, fieldname)
            ok = False
    return ok


def _unknown_placeholders(unknown: list[str], axes: Mapping[str, list[str]],
                          fields: Mapping[str, dict[str, dict[str, str]]], choices: Mapping[str, list[str]],
                          path: bool = False) -> str:
    """Why these placeholders are unknown, in words, with what would be valid (``path``: in an output path)."""
    first = unknown[0]
    if first.startswith("choose"):
        name = first.partition(":")[2]
        if not name:
            return "{choose} needs a list's name: {choose:NAME} with [targets.X.choices] NAME = [ … ]"
        lists = ", ".join(choices) or "none (add [targets.X.choices] NAME = [ … ])"
        return (f"{{{first}}}: no list '{name}' in this target's choices{did_you_mean(name, list(choices))}; "
                f"lists: {lists}")
    axis, dot, field = first.partition(".")
    if dot and axis in axes:
        if axis not in fields:
            return (f"unknown placeholder {{{first}}}: the values of axis '{axis}' are plain; write them as "
                    f"tables ([targets.X.matrix.{axis}.VALUE] {field} = …) to give them fields")
        missing = [v for v, got in fields[axis].items() if first not in got]
        every = sorted({f.partition(".")[2] for got in fields[axis].values() for f in got})
        if len(missing) < len(fields[axis]):
            return (f"{{{first}}}: value(s) {', '.join(missing[:5])} of axis '{axis}' have no field '{field}'; "
                    f"give every value one")
        return (f"unknown placeholder {{{first}}}{did_you_mean(field, every)}; values of axis '{axis}' have: "
                f"{', '.join(every) or 'no fields'}")
    known = ", ".join(sorted(axes)) or "none (this target has no matrix)"
    valid = [*axes, *(sorted(_OUTPUT_NAMES) if path else [])]
    close = difflib.get_close_matches(first, valid, n=1)
    guess = f" (did you mean {{{close[0]}}}?)" if close else ""
    names = "an output path may use {name}, {width}, {height}, {i}; " if path else ""
    return f"unknown placeholder {', '.join('{' + u + '}' for u in unknown)}{guess}; {names}matrix axes: {known}"


def _path_values_ok(texts: list[tuple[str, str, str]], axes: dict[str, list[str]], report: Report) -> bool:
    """Matrix values that fill a placeholder of ``output``/``outputs`` become one file or folder name.

    The rule: a value is one path component. It may not hold '/' or '\\' (folders come from the
    pattern: ``output = "{kind}/{item}.png"``), NUL, or be '.' or '..', and it fits in 255 bytes."""
    used: set[str] = set()
    for fieldname, _where, text in texts:
        if fieldname in ("output", "outputs") and "{" in text:
            used |= {f for _l, f, _s, _c in string.Formatter().parse(text) if f}
    ok = True
    for axis in sorted(used & set(axes)):
        for value in axes[axis]:
            problem = _component_problem(value)
            if problem:
                report(f"axis '{axis}', value {_short(value)}: {problem}; it fills {{{axis}}} in an output "
                       f"path, where a value is one file or folder name (write folders in the pattern, "
                       f"e.g. \"{{{axis}}}/name.png\")")
                ok = False
                break                     # one per axis is enough to see the rule
    return ok


def _row_names_fit(base: str, axes: dict[str, list[str]], report: Report) -> bool:
    """Without ``output``, a row's output is ``<row name>.jpg``: the longest row name must fit in one
    file name, and the message names the axis and value that make it too long."""
    def slug(value: str) -> str:
        return _SLUG_RE.sub("-", value).strip("-") or "x"
    longest = {axis: max(values, key=lambda v: len(slug(v))) for axis, values in axes.items()}
    size = len(base) + sum(len(slug(v)) + 1 for v in longest.values()) + len(".webp")
    if size <= MAX_COMPONENT:
        return True
    axis = max(longest, key=lambda a: len(slug(longest[a])))
    report(f"axis '{axis}', value {_short(longest[axis])}: the row's name, which is also its default "
           f"output file name, would be {size} bytes long; a file name may have at most {MAX_COMPONENT}. "
           f"Set `output` to a shorter pattern (an axis used only in the prompt need not be in it), or "
           f"shorten the value")
    return False


def _component_problem(value: str) -> str | None:
    if "\0" in value:
        return "contains a NUL character"
    if "/" in value or "\\" in value:
        return "contains a path separator"
    if value in (".", ".."):
        return "is not a file name"
    size = len(value.encode("utf-8"))
    if size > MAX_COMPONENT:
        return f"is {size} bytes long; a file or folder name may have at most {MAX_COMPONENT}"
    return None


def _short(text: str, limit: int = 60) -> str:
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}… ({len(text)} characters)"


def _sub(text: str, subs: Mapping[str, str]) -> str:
    """``text`` with placeholders filled from ``subs`` (``{choose:NAME}`` by its "choose:NAME" entry);
    ``{i}``, and any name ``subs`` lacks, stays for a later pass (output paths: ``{i}``, ``{width}``)."""
    if not subs and "{" not in text:
        return text
    return _fill(text, subs)


@lru_cache(maxsize=4096)
def _parsed(text: str) -> tuple[tuple[str, str | None, str | None, str | None], ...]:
    return tuple(string.Formatter().parse(text))


def _fill(text: str, values: Mapping[str, str]) -> str:
    """``str.format_map`` over flat names: "{a.b}" is the key "a.b", not an attribute; unknown names stay."""
    out: list[str] = []
    for literal, name, spec, _conv in _parsed(text):
        out.append(literal)
        if name is not None:
            key = f"choose:{spec}" if name == "choose" and spec else name
            out.append(values.get(key, "{" + key + "}") if key != "i" else "{i}")
    return "".join(out)


def _fields(text: str) -> set[str]:
    try:
        return {f"choose:{spec}" if f == "choose" else f for _l, f, spec, _c in _parsed(text) if f is not None}
    except ValueError:
        return set()


# -- fields -----------------------------------------------------------------------------------------

def _check_capabilities(values: dict[str, Any], report: Report) -> bool:
    model = catalog.lookup(values.get("provider", "gateway"), values["model"])
    if model is None:
        return False                    # reported by choose_provider
    ok = True
    checks = (("resolution", model.resolutions), ("aspect_ratio", model.ratios), ("action", model.actions))
    for fieldname, allowed in checks:
        if values[fieldname] not in allowed:
            sizes = dict(model.sizes)
            shown = [f"{a} ({sizes[a][0]}x{sizes[a][1]})" if a in sizes else a for a in allowed]
            report(f"{model.id} does not support {fieldname} '{values[fieldname]}'; "
                   f"it supports: {', '.join(shown)}", fieldname)
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


def _count(values: dict[str, Any], pick: int | None, report: Report) -> tuple[int, bool, int, bool]:
    """(images per task, whether they are candidates, the picked one, ok)."""
    candidates = values.get("candidates")
    model = catalog.lookup(values.get("provider", "gateway"), values["model"])
    for fieldname in ("n", "candidates"):
        count = values.get(fieldname)
        if model is not None and count and count > model.max_images:
            report(f"{count} images from one task; {model.id} makes at most {model.max_images} "
                   f"(see `assetgen models`)", fieldname)
            return 1, False, 1, False
    if candidates and values["n"] != 1:
        report("`candidates` and `n` cannot both be set: candidates are n alternatives of which one "
               "is the output", "candidates")
        return 1, False, 1, False
    if candidates:
        if pick is not None and pick > candidates:
            report(f"pick = {pick} but there are only {candidates} candidates (1 … {candidates})", "pick")
            return candidates, True, 1, False
        return candidates, True, pick or 1, True
    if pick is not None and pick != 1:
        report("`pick` chooses among candidates; set `candidates = N` on this target", "pick")
        return values["n"], False, 1, False
    return values["n"], False, 1, True


def _references(raw: list[str], known: set[str], root: Path, report: Report,
                checked: dict[Path, str | None], allow_outside: bool = False) -> tuple[Reference, ...] | None:
    refs: list[Reference] = []
    ok = True
    for item in raw:
        if item.startswith("@"):
            upstream = item[1:]
            if upstream not in known:
                report(f"'{item}' is not a target{did_you_mean(upstream, sorted(known))}; "
                       f"known targets: {listing(sorted(known))}", "references")
                ok = False
            refs.append(Reference(raw=item, kind="target", value=upstream))
        elif item.startswith(("http://", "https://")):
            refs.append(Reference(raw=item, kind="url", value=item))
        elif "://" in item or item.startswith("data:"):
            report(f"'{item}': a reference is a file path, an http(s) URL or @target", "references")
            ok = False
        else:
            path = root / item
            if path not in checked:
                checked[path] = check_reference_file(path, None if allow_outside else root)
            problem = checked[path]
            if problem:
                report(f"'{item}' {problem}", "references")
                ok = False
            rel = posixpath.normpath(item.replace("\\", "/"))
            refs.append(Reference(raw=item, kind="file", value=rel, path=path))
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


def check_reference_file(path: Path, inside: Path | None = None) -> str | None:
    """What is wrong with a reference file, or None. With ``inside``, the file (symlinks resolved) must
    lie in that folder: reference files are uploaded to a third party, so one outside the project
    needs ``[settings] allow_outside = true``."""
    try:
        st = path.stat()
        kind = not_a_file(st)
        if kind:                         # never open a FIFO or a device: the read would block
            return f"is {kind}, not an image file"
        if inside is not None and not _within(os.path.realpath(path), os.path.realpath(inside)):
            return (f"is outside the project folder ({os.path.realpath(path)}); reference files are uploaded "
                    f"to the gateway, so files outside {inside} need [settings] allow_outside = true")
        size = st.st_size
        with open(path, "rb") as handle:
            head = handle.read(12)
    except FileNotFoundError:
        return f"does not exist (looked for {path})"
    except IsADirectoryError:
        return "is a folder, not an image file"
    except OSError as exc:
        return f"cannot be read: {exc.strerror}"
    except ValueError:
        return "is not a usable path (it contains a NUL character)"
    if size > catalog.MAX_REFERENCE_BYTES:
        return f"is {size / 2**20:.1f} MB; the gateway accepts at most 30 MB per reference image"
    if image_format(head) is None:
        return "is not a JPG, PNG or WEBP image (the formats the gateway accepts)"
    return None


# -- outputs ------------------------------------------------------------------------------------------

def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _path_max(root: Path) -> int:
    try:
        return int(os.pathconf(root if root.exists() else "/", "PC_PATH_MAX"))
    except (OSError, ValueError, AttributeError):
        return 4096 if sys.platform != "darwin" else 1024


class _Places:
    """Where outputs may go: whole paths within the platform's limit, folders (symlinks resolved) inside
    the manifest's folder unless ``allow_outside``. Folders are resolved once per load (a few, not one
    per output)."""

    def __init__(self, root: Path, allow_outside: bool) -> None:
        self.root = root
        self.allow_outside = allow_outside
        self.path_max = _path_max(root)
        self._real_root: str | None = None
        self._folders: dict[str, str | None] = {}

    def problem(self, path: str) -> str | None:
        """What is wrong with writing the manifest-relative output ``path``, or None."""
        full = os.path.join(self.root, path)
        if len(os.fsencode(full)) >= self.path_max:
            return (f"makes a path of {len(os.fsencode(full)):,} bytes ({path.count('/') + 1:,} levels); this "
                    f"platform allows {self.path_max - 1:,}")
        folder = posixpath.dirname(path)
        if folder not in self._folders:
            self._folders[folder] = self._folder_problem(folder)
        return self._folders[folder]

    def _folder_problem(self, folder: str) -> str | None:
        existing = os.path.join(self.root, folder)
        while not os.path.lexists(existing) and os.path.dirname(existing) != existing:
            existing = os.path.dirname(existing)
        if os.path.lexists(existing) and not os.path.isdir(existing):
            return f"goes into '{folder}', but {existing} is a file, not a folder; move it away"
        if self.allow_outside:
            return None
        if self._real_root is None:
            self._real_root = os.path.realpath(self.root)
        real = os.path.realpath(os.path.join(self.root, folder))
        if _within(real, self._real_root):
            return None
        return (f"goes into '{folder}', which leads outside the manifest's folder (to {real}, through a "
                f"symbolic link); set [settings] allow_outside = true if that is intended")


def _outputs(spec: Any, name: str, subs: dict[str, str], values: dict[str, Any], n: int, candidates: bool,
             pick: int, out_dir: str, report: Report,
             derivations: dict[tuple[Any, ...], Derivation], places: _Places,
             listed: tuple[str, list[Any]] = ("", [])) -> tuple[Output, ...]:
    """The files a row writes. ``listed``: (output set's name or "", output rows) when it writes listed
    outputs; with n > 1 (not candidates) each row writes every image, ``{i}`` telling them apart."""
    base_fields = {k: values[k] for k in _DERIVE_FIELDS if values.get(k) is not None}
    path_subs = {**subs, "name": name}
    set_name, rows = listed
    if rows:
        if spec.output is not None and not set_name:
            report("set either `output` or `outputs`, not both", "outputs")
            return ()
        every = n > 1 and not candidates
        lacking = next((o.output for o in rows if every and "{i}" not in o.output), None)
        if lacking is not None:
            stem, suffix = posixpath.splitext(lacking)
            report(f"n = {n} writes {n} images through each output, so each path needs {{i}}: '{lacking}'"
                   + (f" (in [output_sets.{set_name}])" if set_name else "")
                   + f", e.g. '{stem}-{{i}}{suffix}'; or use `candidates = {n}` to keep only the picked one",
                   "outputs")
            return ()
        made: list[Output | None] = []
        for row in rows:
            fields = {**base_fields, **row.model_dump(exclude_none=True, exclude={"output"})}
            path = _sub(row.output, {**path_subs, **_size_subs(row.output, fields, values)})
            for i in (range(1, n + 1) if every else [pick]):
                made.append(_output(path.replace("{i}", str(i) if every else "1"), fields, i - 1, out_dir,
                                    "outputs", report, derivations, places, candidates))
        return tuple(o for o in made if o is not None) if all(made) else ()
    fields = base_fields
    ext = _EXTENSIONS[fields.get("format", "jpg")][0]
    pattern = _sub(spec.output, {**path_subs, **_size_subs(spec.output, fields, values)}) \
        if spec.output is not None else f"{name}{ext}"
    if candidates or n == 1:
        paths = [(pattern.replace("{i}", "1"), pick - 1)]
    elif "{i}" in pattern:
        paths = [(pattern.replace("{i}", str(i)), i - 1) for i in range(1, n + 1)]
    else:
        stem, suffix = posixpath.splitext(pattern)
        paths = [(f"{stem}-{i}{suffix}", i - 1) for i in range(1, n + 1)]
    made = [_output(path, fields, source, out_dir, "output", report, derivations, places, candidates)
            for path, source in paths]
    return tuple(o for o in made if o is not None) if all(made) else ()


def _size_subs(path: str, fields: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, str]:
    """``{width}``/``{height}`` of an output: its ``resize``, else the generated image's size."""
    if "{width}" not in path and "{height}" not in path:
        return {}
    if fields.get("resize"):
        width, height = fields["resize"]
    else:
        model = catalog.lookup(values.get("provider", "gateway"), values["model"])
        try:
            width, height = catalog.size_of(model or catalog.get(values["model"]), values["aspect_ratio"],
                                            values["resolution"])
        except (KeyError, ValueError, LookupError):
            return {}                 # an unknown model or size: reported where it was set
    return {"width": str(width), "height": str(height)}


def _output(path: str, fields: dict[str, Any], source: int, out_dir: str, fieldname: str,
            report: Report, derivations: dict[tuple[Any, ...], Derivation], places: _Places,
            candidates: bool = False) -> Output | None:
    path = path.replace("\\", "/")
    if "\0" in path:
        report(f"{_short(path)} contains a NUL character, which no path may hold", fieldname)
        return None
    long_part = next((p for p in path.split("/") if len(p.encode("utf-8")) > MAX_COMPONENT), None)
    if long_part is not None:
        report(f"{_short(path)}: the name {_short(long_part, 40)} is {len(long_part.encode('utf-8'))} bytes "
               f"long; a file or folder name may have at most {MAX_COMPONENT}", fieldname)
        return None
    if path.startswith("/") or _DRIVE_RE.match(path):
        report(f"'{path}' is absolute; outputs are paths relative to out_dir ('{out_dir}')", fieldname)
        return None
    by_suffix = _FORMAT_BY_SUFFIX.get(posixpath.splitext(path)[1].lower())
    fmt = fields.get("format") or by_suffix
    if by_suffix is None or fmt != by_suffix:
        wanted = " or ".join(_EXTENSIONS[fmt]) if fmt else ".jpg, .png or .webp"
        report(f"'{path}' must end in {wanted}" + (f" (format = \"{fmt}\")" if fields.get("format") else ""),
               fieldname)
        return None
    if fields.get("key_out") and fmt == "jpg":
        report("key_out makes a transparent background, which JPEG cannot hold; use format png or webp", "key_out")
        return None
    for colour_field, colour in (("background", fields.get("background")),
                                 ("key_out", (fields.get("key_out") or {}).get("color"))):
        if colour is not None and not is_colour(colour):
            report(f"'{colour}' is not a colour; use a name like \"white\" or a hex value like \"#ffffff\"",
                   colour_field)
            return None
    normal = posixpath.normpath(path)
    if normal in (".", "..") or normal.startswith("../"):
        report(f"'{path}' escapes out_dir ('{out_dir}'); outputs must stay inside it", fieldname)
        return None
    full = posixpath.normpath(posixpath.join(out_dir, normal))
    where = places.problem(full)
    if where:
        report(f"{_short(path)} {where}", fieldname)
        return None
    memo = (fmt, repr(sorted(fields.items())) if fields else "", source + 1 if candidates else None)
    derivation = derivations.get(memo)
    if derivation is None:
        key_out = fields.get("key_out")
        derivation = derivations[memo] = Derivation(
            format=fmt, resize=tuple(fields["resize"]) if fields.get("resize") else None,
            fit=fields.get("fit", "cover"), quality=fields.get("quality", DEFAULT_QUALITY),
            background=fields.get("background"), key_out=KeyOut(**key_out) if key_out else None,
            pick=source + 1 if candidates else None)
    return Output(path=full, source=source, derivation=derivation)


# -- across targets: references to outputs, documented limits ---------------------------------------------

def check_self_references(targets: Mapping[str, Target], root: Path, lines: LineIndex,
                          problems: list[Problem]) -> None:
    """A file reference that is an output of its own target, or of a target downstream of it (one that
    depends on it through ``@``), changes with every build of that target: its key would never settle
    and every build would pay again. ``@target`` is the way to use another target's image."""
    files = [(t, ref) for t in targets.values() for ref in t.references if ref.kind == "file"]
    if not files:
        return
    folders: dict[str, str] = {}

    def real_output(path: str) -> str:      # resolve the folder once, not every output's path
        folder, name = posixpath.split(path)
        if folder not in folders:
            folders[folder] = os.path.realpath(os.path.join(root, folder))
        return os.path.join(folders[folder], name)

    # Each reference file resolved once (a few hundred files serve thousands of targets), and only the
    # outputs in a folder where a reference file lies can be one: 10,000 targets took 0.1 s here.
    reals: dict[Path, str | None] = {}
    for _target, ref in files:
        if ref.path is not None and ref.path not in reals:
            try:
                reals[ref.path] = os.path.realpath(ref.path)
            except (OSError, ValueError):
                reals[ref.path] = None
    ref_folders = {posixpath.dirname(real) for real in reals.values() if real}
    owners = {real_output(path): (t.name, path) for t in targets.values() for path in t.output_paths
              if _real_folder(path, root, folders) in ref_folders}
    for target, ref in files:
        real = reals.get(ref.path) if ref.path is not None else ""
        if real is None:
            continue
        owner = owners.get(real)
        if owner is None:
            continue
        name, output = owner
        if name == target.name:
            why = f"is this target's own output '{output}'"
            hint = "generate the first image in a target of its own and reference it as '@NAME'"
        else:
            chain = _depends_on(targets, name, target.name)
            if chain is None:
                continue           # another target's output, built first: allowed (though '@' is better)
            why = (f"is the output '{output}' of target '{name}', which depends on this one "
                   f"({' -> '.join('@' + c for c in chain)})")
            hint = f"use '@{name}' in a target that does not feed it, or another image"
        problems.append(Problem(
            f"reference '{ref.raw}' {why}: the reference would change with every build, and every build "
            f"would pay again; {hint}", target=target.name, field="references",
            line=lines.line(("targets", target.base, "references"))))


def _real_folder(path: str, root: Path, folders: dict[str, str]) -> str:
    """The resolved folder of the output ``path`` (cached in ``folders``, as ``real_output`` does)."""
    folder = posixpath.split(path)[0]
    if folder not in folders:
        folders[folder] = os.path.realpath(os.path.join(root, folder))
    return folders[folder]


def _depends_on(targets: Mapping[str, Target], name: str, upstream: str) -> list[str] | None:
    """The chain of ``@`` references from ``name`` down to ``upstream``, or None if it does not depend on it."""
    seen: set[str] = set()
    stack: list[list[str]] = [[name]]
    while stack:
        chain = stack.pop()
        for up in targets[chain[-1]].upstream if chain[-1] in targets else ():
            if up == upstream:
                return chain + [up]
            if up not in seen:
                seen.add(up)
                stack.append(chain + [up])
    return None

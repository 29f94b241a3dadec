"""``assetgen lint``: where a manifest repeats itself, and the style or output set that would say it once.

Lint only suggests: it prints the TOML to add and which targets would use it, changes nothing and
exits 0. Three kinds of suggestion, in the syntax of issue 17 (``[styles.NAME]``, ``style = [..]``,
``prompt_template``, ``[output_sets.NAME]``, ``outputs = "NAME"``):

- ``style``: the same field = value set on several targets (``model``, ``resize``, ``references`` …);
  on every target instead: ``[defaults]``;
- ``prompt``: the same leading or trailing fragment of several prompts (split at ", "), as a style's
  ``prompt`` with ``prompt_template = "{style}, {prompt}"`` (or ``"{prompt}, {style}"``), so the
  composed prompts stay the same strings;
- ``output_set``: the same ``outputs`` rows on several targets once each target's name in a path is
  read as ``{name}``.

Every suggestion keeps every key: moved fields keep their values and precedence (a suggested style is
listed after a target's own styles; ``references`` only move when ``[defaults]`` has none, since a
target's references replace the defaults' while a style's follow them), and composed prompts are equal
character for character.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..manifest.model import parse_toml, read_text
from .fmt import format_text

# The fields a style or [defaults] may hold that a target sets (not its prompt, outputs or matrix).
STYLE_FIELDS = ("provider", "openai", "model", "action", "aspect_ratio", "resolution", "n", "candidates",
                "seed", "references", "google_search", "google_image_search", "official_fallback", "tags",
                "notes", "resize", "fit", "format", "quality", "background", "key_out")
MIN_TARGETS = 3               # a pattern on fewer targets is left alone (output sets: 2)
MIN_FRAGMENT = 20             # characters: shorter shared prompt fragments are not worth a style


@dataclass
class Suggestion:
    kind: str                              # style | defaults | prompt | output_set
    name: str                              # of the style or output set ("" for defaults)
    targets: list[str]
    toml: str                              # the table to add
    per_target: str                        # what each of those targets says instead
    saves: int                             # lines (prompt: characters) fewer
    fields: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "targets": self.targets, "toml": self.toml,
                "per_target": self.per_target, "saves": self.saves, "fields": self.fields}


def lint_file(path: Path, *, min_targets: int = MIN_TARGETS) -> list[Suggestion]:
    """The suggestions for the manifest at ``path``, best first. Reads it only."""
    return lint_data(parse_toml(read_text(path, str(path)), str(path)), min_targets=min_targets)


def lint_data(data: dict[str, Any], *, min_targets: int = MIN_TARGETS) -> list[Suggestion]:
    targets = {n: t for n, t in (data.get("targets") or {}).items() if isinstance(t, dict)}
    taken = set(data.get("styles") or {}) | set(data.get("output_sets") or {})
    found = _merged(_field_styles(data, targets, min_targets, taken), _prompt_styles(targets, min_targets, taken))
    found += _output_sets(targets, taken)
    return sorted(found, key=lambda s: -s.saves)


def _merged(fields: list[Suggestion], prompts: list[Suggestion]) -> list[Suggestion]:
    """One style for the targets that share both fields and a prompt fragment, as a person would write."""
    for prompt in prompts:
        same = next((s for s in fields if s.kind == "style" and set(s.targets) == set(prompt.targets)), None)
        if same is None:
            continue
        fields.remove(same)
        prompt.per_target = prompt.per_target.replace(f'"{prompt.name}"', f'"{same.name}"')
        prompt.name = same.name
        merged = {**same.fields, "prompt": prompt.fields["prompt"], "prompt_template": prompt.fields["prompt_template"]}
        prompt.toml = _table(f"[styles.{prompt.name}]", merged)
        prompt.per_target += f", without {', '.join(same.fields)}"
        prompt.fields = {**merged, "prompts": prompt.fields["prompts"]}
    return [s for s in fields if s.saves > 0] + prompts


# -- repeated fields ---------------------------------------------------------------------------------

def _field_styles(data: dict[str, Any], targets: dict[str, dict[str, Any]], least: int,
                  taken: set[str]) -> list[Suggestion]:
    defaults = data.get("defaults") or {}
    styles = data.get("styles") or {}
    users: dict[tuple[str, str], list[str]] = {}
    for name, table in targets.items():
        for key in STYLE_FIELDS:
            if key not in table or key == "references" and "references" in defaults:
                continue          # a style's references follow the target's: only safe without defaults'
            users.setdefault((key, _canon(table[key])), []).append(name)
    groups: dict[tuple[str, ...], dict[str, Any]] = {}
    for (key, value), names in users.items():
        if len(names) >= least:
            groups.setdefault(tuple(names), {})[key] = json.loads(value)
    found: list[Suggestion] = []
    for group, fields in groups.items():
        names = list(group)
        everywhere = len(names) == len(targets) and not any(
            k in styles.get(s, {}) for n in names for s in _styles_of(targets[n]) for k in fields)
        styled = sum(1 for n in names if _styles_of(targets[n]))
        if everywhere:
            cost = len(fields) + (0 if "defaults" in data else 2)
            found.append(_suggest("defaults", "", names, fields, targets,
                                  len(names) * len(fields) - cost))
            continue
        name = _name(names, "shared", taken)
        saves = len(names) * len(fields) - (len(names) - styled) - (len(fields) + 2)
        found.append(_suggest("style", name, names, fields, targets, saves))    # (kept if > 0, or merged)
    return found


def _suggest(kind: str, name: str, names: list[str], fields: dict[str, Any], targets: dict[str, dict[str, Any]],
             saves: int) -> Suggestion:
    header = "[defaults]" if kind == "defaults" else f"[styles.{name}]"
    toml = _table(header, fields)
    removed = ", ".join(fields)
    if kind == "defaults":
        per = f"remove {removed}"
    else:
        lists = {tuple(_styles_of(targets[n])) for n in names} - {()}
        per = f'style = "{name}" instead of {removed}'
        if len(lists) == 1:
            per += f" (a target with styles lists it last: style = {json.dumps([*next(iter(lists)), name])})"
        elif lists:
            per += f' (a target with styles lists it last: style = [..., "{name}"])'
    return Suggestion(kind, name, names, toml, per, saves, fields)


def _styles_of(table: dict[str, Any]) -> list[str]:
    style = table.get("style")
    return [style] if isinstance(style, str) else list(style or [])


# -- repeated prompt fragments -----------------------------------------------------------------------

def _prompt_styles(targets: dict[str, dict[str, Any]], least: int, taken: set[str]) -> list[Suggestion]:
    prompts = {n: t["prompt"] for n, t in targets.items()
               if isinstance(t.get("prompt"), str) and not t.get("style") and "prompt_template" not in t}
    found: list[Suggestion] = []
    while True:
        best = _best_fragment(prompts, least)
        if best is None:
            return found
        fragment, at_end, names = best
        name = _name(names, "look", taken)
        template = "{prompt}, {style}" if at_end else "{style}, {prompt}"
        rests = {n: _rest(prompts[n], fragment, at_end) for n in names}
        toml = _table(f"[styles.{name}]", {"prompt": fragment, "prompt_template": template})
        per = f'style = "{name}", and the prompt without "{_short(fragment)}"'
        found.append(Suggestion("prompt", name, names, toml, per, len(fragment) * (len(names) - 1),
                                {"prompt": fragment, "prompt_template": template, "prompts": rests}))
        for n in names:
            del prompts[n]


def _best_fragment(prompts: dict[str, str], least: int) -> tuple[str, bool, list[str]] | None:
    """The shared leading or trailing run of ", "-separated fragments worth the most characters."""
    users: dict[tuple[str, bool], list[str]] = {}
    for name, prompt in prompts.items():
        parts = prompt.strip().split(", ")
        for k in range(1, len(parts)):
            users.setdefault((", ".join(parts[-k:]), True), []).append(name)
            users.setdefault((", ".join(parts[:k]), False), []).append(name)
    scored = [(len(text) * (len(names) - 1), text, at_end, names) for (text, at_end), names in users.items()
              if len(names) >= least and len(text) >= MIN_FRAGMENT]
    if not scored:
        return None
    _, text, at_end, names = max(scored, key=lambda s: (s[0], s[2], s[1]))
    return text, at_end, names


def _rest(prompt: str, fragment: str, at_end: bool) -> str:
    prompt = prompt.strip()
    return prompt[:-len(fragment) - 2] if at_end else prompt[len(fragment) + 2:]


# -- repeated output rows ----------------------------------------------------------------------------

def _output_sets(targets: dict[str, dict[str, Any]], taken: set[str]) -> list[Suggestion]:
    groups: dict[str, list[str]] = {}
    for name, table in targets.items():
        rows = table.get("outputs")
        if isinstance(rows, list) and len(rows) >= 2 and all(isinstance(r, dict) for r in rows):
            own = rows if table.get("matrix") else [_with_name(r, name) for r in rows]
            groups.setdefault(_canon(own), []).append(name)
    found: list[Suggestion] = []
    for rows_json, names in groups.items():
        rows = json.loads(rows_json)
        saves = (len(names) - 1) * (len(rows) + 2) - 4
        if len(names) < 2 or saves <= 0:
            continue
        set_name = _name(names, "sizes", taken, suffix="_sizes")
        toml = _table(f"[output_sets.{set_name}]", {"outputs": rows})
        found.append(Suggestion("output_set", set_name, names, toml, f'outputs = "{set_name}"', saves,
                                {"outputs": rows}))
    return found


def _with_name(row: dict[str, Any], name: str) -> dict[str, Any]:
    """``row`` with ``name`` in its path read as ``{name}`` (exact: ``{name}`` gives ``name`` back)."""
    path = row.get("output")
    if not isinstance(path, str):
        return row
    pattern = r"(?<![A-Za-z0-9])" + re.escape(name) + r"(?![A-Za-z0-9])"
    return {**row, "output": re.sub(pattern, "{name}", path)}


# -- shared helpers ----------------------------------------------------------------------------------

def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _name(names: Iterable[str], fallback: str, taken: set[str], suffix: str = "") -> str:
    """A name for a new style or set: the targets' common leading word (+ ``suffix``), else ``fallback``;
    unused."""
    words = [re.split(r"[_.-]", n)[0] for n in names]
    base = words[0] + suffix if len(set(words)) == 1 and words[0] else fallback
    name, number = base, 2
    while name in taken:
        name, number = f"{base}_{number}", number + 1
    taken.add(name)
    return name


def _table(header: str, fields: dict[str, Any]) -> str:
    import tomlkit

    body = tomlkit.dumps({k: _multiline_rows(v) if k == "outputs" else v for k, v in fields.items()})
    return format_text(f"{header}\n{body}")


def _multiline_rows(rows: list[dict[str, Any]]) -> Any:
    import tomlkit

    array = tomlkit.array()
    for row in rows:
        table = tomlkit.inline_table()
        table.update(row)
        array.append(table)
    return array.multiline(True)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# -- what `assetgen lint` prints ----------------------------------------------------------------------

_WHAT = {"style": "a style", "defaults": "[defaults]", "prompt": "a style with a prompt fragment",
         "output_set": "an output set"}


def render(suggestions: list[Suggestion], shown: str) -> list[str]:
    """The suggestions as text: each table to add, the targets, what each of them says instead."""
    if not suggestions:
        return [f"{shown}: nothing repeats enough to suggest a style or an output set."]
    lines = [f"{shown}: {len(suggestions)} suggestion{'s' if len(suggestions) != 1 else ''} (nothing was "
             f"changed; applied as shown, no key changes)"]
    for number, s in enumerate(suggestions, 1):
        unit = "characters" if s.kind == "prompt" else "lines"
        what = _WHAT[s.kind] + (f" '{s.name}'" if s.name else "")
        lines += ["", f"{number}. {what} for {len(s.targets)} targets (about {s.saves} {unit} fewer): "
                      f"{', '.join(s.targets)}", "   add:"]
        lines += [f"     {line}" if line else "" for line in s.toml.rstrip("\n").split("\n")]
        lines.append(f"   then in each of those targets: {s.per_target}")
    return lines

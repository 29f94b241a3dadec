"""The JSON Schema of assets.toml (``assetgen schema``): generated from the pydantic models, committed at
schema/assets.schema.json, accepting every manifest the repository ships and rejecting known mistakes."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from assetgen import catalog
from assetgen.cli.main import cli
from assetgen.manifest.schema import json_schema, json_schema_text
from assetgen.manifest.starter import SCHEMA_URL, STARTER_MANIFEST

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = ROOT / "schema" / "assets.schema.json"
MANIFESTS = sorted([ROOT / "assets.toml", *ROOT.glob("examples/*/assets.toml")])


def _validator() -> jsonschema.Draft7Validator:
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _errors(document: dict[str, Any]) -> list[jsonschema.ValidationError]:
    return list(_validator().iter_errors(document))


def _readme_snippets() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)


def test_schema_command_prints_the_committed_file_deterministically() -> None:
    first = CliRunner().invoke(cli, ["schema"])
    second = CliRunner().invoke(cli, ["schema"])
    assert first.exit_code == 0, first.output
    assert first.output == second.output == json_schema_text()
    assert COMMITTED.read_text(encoding="utf-8") == first.output, \
        "schema/assets.schema.json is stale: run `assetgen schema > schema/assets.schema.json`"
    parsed = json.loads(first.output)
    assert parsed["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert list(parsed) == sorted(parsed)


def test_every_field_has_a_description_and_catalogue_enums() -> None:
    schema = json_schema()
    objects = [schema, *schema["definitions"].values()]
    for obj in objects:
        for name, prop in obj.get("properties", {}).items():
            assert prop.get("description"), name
    fields = schema["definitions"]["TargetModel"]["properties"]
    every_model = {m.id for models in catalog.MODELS_OF.values() for m in models}
    assert set(fields["model"]["enum"]) == every_model
    assert set(fields["aspect_ratio"]["enum"]) == set(catalog.STANDARD_RATIOS + catalog.EXTENDED_RATIOS)
    assert fields["resolution"]["enum"] == list(catalog.RESOLUTIONS)
    assert fields["action"]["enum"] == list(catalog.ALL_ACTIONS)
    providers = schema["definitions"]["SettingsModel"]["properties"]["provider"]["enum"]
    assert set(providers) == set(catalog.PROVIDERS)
    assert fields["prompt"]["examples"] and fields["matrix"]["examples"]
    assert "prompt" in schema["definitions"]["TargetModel"]["required"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_manifest_in_the_repository_is_valid(path: Path) -> None:
    assert _errors(tomllib.loads(path.read_text(encoding="utf-8"))) == []


def test_the_readme_snippets_are_valid() -> None:
    snippets = _readme_snippets()
    assert len(snippets) >= 4
    for snippet in snippets:
        assert _errors(tomllib.loads(snippet)) == [], snippet


def test_the_starter_carries_the_taplo_directive_and_is_valid(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["-f", str(tmp_path / "assets.toml"), "init"])
    assert result.exit_code == 0, result.output
    written = (tmp_path / "assets.toml").read_text(encoding="utf-8")
    assert written == STARTER_MANIFEST
    assert written.splitlines()[0] == f"#:schema {SCHEMA_URL}"
    assert SCHEMA_URL.endswith("/schema/assets.schema.json")
    assert _errors(tomllib.loads(written)) == []


MISTAKES = [
    ('[targets.hero]\nprompt = "a knight"\nmodle = "gemini-3-pro-image-preview"\n', "modle"),
    ('[targets.hero]\nprompt = "a knight"\naspect_ratio = "3:5"\n', "aspect_ratio"),
    ('[targets.hero]\nprompt = "a knight"\nn = 0\n', "n"),
]


@pytest.mark.parametrize(("text", "field"), MISTAKES, ids=[f for _, f in MISTAKES])
def test_known_mistakes_are_rejected_naming_the_cli_s_field(tmp_path: Path, text: str, field: str) -> None:
    errors = _errors(tomllib.loads(text))
    assert errors, "the schema accepted a mistake"
    named = {str(e.path[-1]) if e.path else "" for e in errors} | {
        m for e in errors for m in re.findall(r"'(\w+)' was unexpected", e.message)}
    assert field in named, [e.message for e in errors]
    # The CLI names the same field for the same mistake.
    manifest = tmp_path / "assets.toml"
    manifest.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["-f", str(manifest), "plan", "--offline"])
    assert result.exit_code == 2, result.output
    assert re.search(rf"\b{re.escape(field)}\b", result.output), result.output

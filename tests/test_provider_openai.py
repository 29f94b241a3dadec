"""OpenAI's Images API, direct (``provider = "openai"``, or implied by a gpt-image model id), against its
emulator over real HTTP; request bodies compared with golden files (tests/golden/openai_*.json)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers.project import ProjectDir as Project
from PIL import Image

from assetgen.testing.openai_emulator import OpenAIEmulator, VendorFaults

KEY = "sk-openai-test-0123456789abcdef"
GOLDEN = Path(__file__).parent / "golden"

MANIFEST = """\
[settings]
out_dir = "out"

[targets.coin]
model = "gpt-image-1.5"
prompt = "A gold coin icon"
openai = { quality = "high", background = "transparent" }
output = "coin.png"

[targets.banner]
model = "gpt-image-1-mini"
prompt = "A wide banner"
aspect_ratio = "3:2"
n = 2

[targets.edit]
model = "gpt-image-1"
action = "edit"
prompt = "The same coin, silver"
references = ["refs/palette.png"]
aspect_ratio = "2:3"
"""


@pytest.fixture
def openai() -> Iterator[OpenAIEmulator]:
    with OpenAIEmulator(api_key=KEY) as emulator:
        yield emulator


def env(emulator: OpenAIEmulator, **more: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": emulator.base_url, "ASSETGEN_RETRY_BACKOFF": "0.01", **more}


def test_request_bodies_are_as_documented(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    project.ok("build", env=env(openai))
    palette = (project.root / "refs" / "palette.png").read_bytes()
    seen = {}
    for request in openai.requests:
        body = request.body
        if "fields" in body:                       # multipart edit
            files = [(name, filename, mime, data == palette) for name, filename, mime, data in body["files"]]
            body = {"fields": body["fields"], "files": files}
        seen[request.path + " " + json.dumps(body.get("prompt") or body["fields"]["prompt"])] = body
    expected = json.loads((GOLDEN / "openai_images.json").read_text())
    assert json.loads(json.dumps(seen)) == expected
    assert all(r.auth == "valid" for r in openai.requests)


def test_transparent_png_keeps_its_alpha_and_sizes_follow_the_ratio(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    project.ok("build", env=env(openai))
    with Image.open(project.root / "out" / "coin.png") as img:
        assert img.mode == "RGBA" and img.size == (1024, 1024)
    with Image.open(project.root / "out" / "banner-2.jpg") as img:
        assert img.size == (1536, 1024)
    with Image.open(project.root / "out" / "edit.jpg") as img:
        assert img.size == (1024, 1536)


def test_a_ratio_openai_does_not_draw_is_a_validation_error(project: Project) -> None:
    project.write(MANIFEST.replace('aspect_ratio = "3:2"', 'aspect_ratio = "16:9"'))
    result = project.run("plan")
    assert result.exit_code == 2
    assert "gpt-image-1-mini does not support aspect_ratio '16:9'" in result.output
    assert "1:1 (1024x1024), 3:2 (1536x1024), 2:3 (1024x1536)" in result.output


def test_openai_table_is_not_the_post_processing_fields(project: Project) -> None:
    text = MANIFEST + '\n[targets.gem]\nprompt = "a gem"\nopenai = { quality = "low" }\n'
    project.write(text)
    result = project.run("plan")
    assert result.exit_code == 2
    assert "the `openai` table sets OpenAI's request fields, but this target's provider is gateway" in result.output
    project.write(MANIFEST.replace('background = "transparent" }',
                                  'background = "transparent", output_format = "jpeg" }'))
    assert "needs output_format \"png\" or \"webp\"" in project.run("plan").output
    project.write(MANIFEST.replace('quality = "high"', 'quality = "ultra"'))
    bad = project.run("plan")
    assert bad.exit_code == 2 and "openai" in bad.output and "ultra" in bad.output


def test_openai_fields_are_in_the_key_of_openai_targets_only(project: Project) -> None:
    project.write(MANIFEST + '\n[targets.gw]\nprompt = "a gem"\nquality = 80\n')
    keys = project.keys()
    project.write(MANIFEST.replace('quality = "high"', 'quality = "low"')
                  + '\n[targets.gw]\nprompt = "a gem"\nquality = 80\n')
    after = project.keys()
    assert after["coin"] != keys["coin"]
    assert after["gw"] == keys["gw"] and after["banner"] == keys["banner"]
    # Writing OpenAI's defaults out changes nothing: they are sent (and keyed) explicitly anyway.
    project.write(MANIFEST.replace('model = "gpt-image-1-mini"',
                                   'model = "gpt-image-1-mini"\nopenai = { quality = "medium", output_format = "png" }')
                  + '\n[targets.gw]\nprompt = "a gem"\nquality = 80\n')
    assert project.keys()["banner"] == keys["banner"]


def test_price_arithmetic_by_quality_and_size(project: Project) -> None:
    project.write(MANIFEST)
    items = project.items()
    assert items["coin"]["cost"] == pytest.approx(0.133)           # gpt-image-1.5 high 1024x1024
    assert items["banner"]["cost"] == pytest.approx(2 * 0.015)     # gpt-image-1-mini medium 1536x1024, n = 2
    assert items["edit"]["cost"] == pytest.approx(0.063)           # gpt-image-1 medium 1024x1536
    assert items["coin"]["provider"] == "openai"                   # implied by the model id


def test_safety_refusal_is_a_failed_target_not_billed(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST.replace("A gold coin icon", "A coin emulate:blocked-prompt"))
    result = project.run("build", "coin", env=env(openai))
    assert result.exit_code == 1 and "safety system refused the prompt" in result.output
    assert "not billed" in result.output and openai.billed == []
    assert list((project.cache / "journal").glob("*.json")) == []


def test_fewer_images_than_asked_fails_and_says_it_was_billed(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST.replace("A wide banner", "A wide banner emulate:short"))
    result = project.run("build", "banner", env=env(openai))
    assert result.exit_code == 1 and "1 of the 2 images" in result.output
    assert not (project.root / "out" / "banner-1.jpg").exists()


def test_rate_limit_retried_server_error_uncertain(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    openai.faults = VendorFaults(rate_limit_burst=2)
    project.ok("build", "coin", env=env(openai))
    assert openai.count("/generations") == 3 and len(openai.billed) == 1
    openai.faults = VendorFaults(server_errors=1)
    result = project.run("build", "banner", env=env(openai))
    assert result.exit_code == 1 and "uncertain" in result.output
    assert project.run("build", "banner", env=env(openai)).exit_code == 1
    assert len(openai.billed) == 2                                   # not called again


def test_decoded_images_are_validated_like_every_download(project: Project, openai: OpenAIEmulator) -> None:
    from assetgen.errors import TaskFailed
    from assetgen.providers.openai import openai_images

    with pytest.raises(TaskFailed, match="not valid base64"):
        openai_images({"data": [{"b64_json": "%%%"}]}, 1)
    openai.faults = VendorFaults(wrong_size=1)
    project.write(MANIFEST)
    result = project.run("build", "coin", env=env(openai))
    assert result.exit_code == 1 and "kept in the cache" in result.output, result.output
    assert not (project.root / "out" / "coin.png").exists()


def test_missing_key_fails_before_any_work(project: Project, openai: OpenAIEmulator) -> None:
    project.write(MANIFEST)
    result = project.run("build", env={"OPENAI_BASE_URL": openai.base_url})
    assert result.exit_code == 2 and "set OPENAI_API_KEY" in result.output and openai.requests == []

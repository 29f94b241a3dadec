"""The GitHub Action's script, run locally against a fake pull-request event and a fake GitHub API on 127.0.0.1.

The same script runs in ``action.yml`` (``python -m assetgen.cli.github_action``); here in a real process with
the environment a runner gives it, against a real HTTP server that records the calls and keeps comments.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assetgen.cli import cli
from helpers.online import emulator, run

pytestmark = pytest.mark.slow      # the script runs in a real process, as the runner starts it (~1 s per run)

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ghs_fake_token_for_tests"
MANIFEST = """\
[settings]
out_dir = "out"

[defaults]
model = "gemini-3.1-flash-image-preview"
resolution = "0.5K"

[targets.logo]
prompt = "a round logo"

[targets.banner]
prompt = "a wide banner"
aspect_ratio = "16:9"
"""


class FakeGitHub:
    """Issue comments of one repository, as GitHub's REST API serves them (the calls the action makes)."""

    def __init__(self) -> None:
        self.comments: list[dict[str, Any]] = [{"id": 1, "body": "LGTM", "user": {"type": "User"}}]
        self.calls: list[tuple[str, str, str | None]] = []     # method, path, Authorization
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> dict[str, Any]:
                return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")

            def _handle(self) -> None:
                outer.calls.append((self.command, self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._reply(401, {"message": "Bad credentials"})
                if self.command == "GET" and re.fullmatch(r"/repos/acme/game/issues/7/comments\?.*", self.path):
                    return self._reply(200, outer.comments)
                if self.command == "POST" and self.path == "/repos/acme/game/issues/7/comments":
                    comment = {"id": len(outer.comments) + 1, "body": self._body()["body"], "user": {"type": "Bot"}}
                    outer.comments.append(comment)
                    return self._reply(201, comment)
                match = re.fullmatch(r"/repos/acme/game/issues/comments/(\d+)", self.path)
                if self.command == "PATCH" and match:
                    comment = next(c for c in outer.comments if c["id"] == int(match.group(1)))
                    comment["body"] = self._body()["body"]
                    return self._reply(200, comment)
                return self._reply(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


@pytest.fixture
def runner_env(tmp_path: Path, github: FakeGitHub) -> dict[str, str]:
    """A checkout with a manifest and the environment a runner gives a pull_request job."""
    (tmp_path / "assets.toml").write_text(MANIFEST, encoding="utf-8")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"action": "synchronize", "number": 7, "pull_request": {"number": 7}}))
    return {**os.environ, "GITHUB_EVENT_PATH": str(event), "GITHUB_REPOSITORY": "acme/game",
            "GITHUB_API_URL": github.url, "GITHUB_TOKEN": TOKEN, "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
            "GITHUB_OUTPUT": str(tmp_path / "output.txt"), "INPUT_FAIL_ON": "stale", "INPUT_COMMENT": "true"}


def action(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "assetgen.cli.github_action"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


def bot_comments(github: FakeGitHub) -> list[str]:
    return [c["body"] for c in github.comments if c["user"]["type"] == "Bot"]


def test_posts_one_comment_then_updates_it_and_fails_while_stale(tmp_path: Path, github: FakeGitHub,
                                                                   runner_env: dict[str, str]) -> None:
    done = action(tmp_path, runner_env)
    assert done.returncode == 1, done.stderr
    assert "Error: 2 target(s) would be regenerated or restored ($0.0638) (fail-on: stale)" in done.stderr
    [body] = bot_comments(github)
    assert body.startswith("<!-- assetgen-plan -->\n### assetgen plan")
    assert "not approved" not in body                                  # fail-on does not ask for approvals
    assert "| `logo` | generate | $0.0319 | new target |" in body and "**Total: $0.0638**" in body
    assert (tmp_path / "output.txt").read_text() == "stale=2\nunapproved=2\ncost=0.0638\n"
    assert "| `banner` | generate |" in (tmp_path / "summary.md").read_text()

    # the next push: the same comment is edited, not a second one added
    (tmp_path / "assets.toml").write_text(MANIFEST.replace("a wide banner", "a wider banner"), encoding="utf-8")
    done = action(tmp_path, runner_env)
    assert "Comment updated on pull request #7." in done.stderr
    assert len(bot_comments(github)) == 1 and len(github.comments) == 2        # the person's comment kept
    assert [m for m, *_ in github.calls] == ["GET", "POST", "GET", "PATCH"]
    assert all(auth == f"Bearer {TOKEN}" for *_, auth in github.calls)


def test_unapproved_fails_until_approved_then_up_to_date_passes(tmp_path: Path, github: FakeGitHub,
                                                                 runner_env: dict[str, str]) -> None:
    with emulator() as gateway:                  # real images (placeholders cannot be approved)
        assert run(tmp_path / "assets.toml", gateway, "build").exit_code == 0
    manifest = ["-f", str(tmp_path / "assets.toml")]
    env = {**runner_env, "INPUT_MANIFEST": "assets.toml", "INPUT_FAIL_ON": "stale,unapproved"}
    done = action(tmp_path, env)
    assert done.returncode == 1
    assert "Error: 2 target(s) are not approved as they stand (fail-on: stale,unapproved)" in done.stderr
    assert "2 target(s) not approved as they stand: `logo`, `banner`" in bot_comments(github)[0]
    assert CliRunner().invoke(cli, [*manifest, "approve", "logo", "banner"]).exit_code == 0
    done = action(tmp_path, env)
    assert done.returncode == 0, done.stdout + done.stderr
    [body] = bot_comments(github)
    assert body == "<!-- assetgen-plan -->\n**assetgen:** every image is up to date; nothing would be regenerated.\n"


def test_fail_on_none_reports_without_failing_and_no_pr_means_no_comment(tmp_path: Path, github: FakeGitHub,
                                                                          runner_env: dict[str, str]) -> None:
    env = {**runner_env, "INPUT_FAIL_ON": "none", "GITHUB_EVENT_PATH": str(tmp_path / "push-event-missing.json")}
    done = action(tmp_path, env)
    assert done.returncode == 0, done.stderr
    assert "Not a pull request: no comment posted." in done.stderr
    assert github.calls == []


def test_configuration_mistakes_are_errors_that_say_what_to_do(tmp_path: Path, github: FakeGitHub,
                                                                runner_env: dict[str, str]) -> None:
    done = action(tmp_path, {**runner_env, "INPUT_FAIL_ON": "stael"})
    assert done.returncode == 2
    assert "Error: input fail-on: unknown stael; use stale, unapproved, stale,unapproved or none" in done.stderr
    done = action(tmp_path, {**runner_env, "GITHUB_TOKEN": "wrong"})
    assert done.returncode == 2 and "HTTP 401" in done.stderr and "Traceback" not in done.stderr
    (tmp_path / "assets.toml").write_text("[targets.x]\nprompt = 3\n")
    done = action(tmp_path, runner_env)
    assert done.returncode == 2 and "assets.toml:2: target 'x', field 'prompt'" in done.stderr


def test_action_yml_runs_this_script_and_examples_ci_uses_the_action() -> None:
    text = (ROOT / "action.yml").read_text(encoding="utf-8")
    assert "using: composite" in text and "run: python -m assetgen.cli.github_action" in text
    for name in ("manifest", "profile", "fail-on", "comment", "github-token"):
        assert f"  {name}:" in text and f"inputs.{name}" in text
    workflow = (ROOT / "examples" / "ci" / "assetgen-plan.yml").read_text(encoding="utf-8")
    assert "uses: assetgen/assetgen@v" in workflow
    hooks = (ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8")
    assert "entry: assetgen plan --check --offline" in hooks and "entry: assetgen schema --check" in hooks

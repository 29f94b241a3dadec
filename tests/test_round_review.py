"""Regression tests for the findings of this round's security and money review."""

from __future__ import annotations

import asyncio
import tomllib
from typing import Any

import pytest

from assetgen.state import fasttoml


def _outcome(loads: Any, text: str) -> tuple[str, Any]:
    try:
        return "ok", repr(loads(text))
    except tomllib.TOMLDecodeError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("text", [
    # TOML 1.1 (rtoml) lets an inline table span lines; TOML 1.0 (tomllib) refuses. The scan that sends
    # such text to tomllib missed a `}` hidden in a comment or in a multi-line string on the opening line.
    'a = { # }\nb = 1 }\n',
    'a = { b = 1, # }\nc = 2 }\n',
    'a = {b = 1 # }\n}\n',
    'x = [\n{ # }\n}]\n',
    'x = [ """\n}""", {\n c = 1 } ]\n',
    "x = [ '''\n}''', { c = 1,\n d = 2 } ]\n",
    '[settings]\nlimits = { total = 5.0, # }\n  day = 1.0 }\n',
])
def test_fast_toml_refuses_multiline_inline_tables_as_tomllib_does(text: str) -> None:
    assert _outcome(fasttoml.loads, text) == _outcome(tomllib.loads, text)
    assert fasttoml.may_differ(text)


# -- a crafted lock (merged from a branch by `merge-lock`) names files outside the project ---------------

def _offline_project(root: Any) -> Any:
    from click.testing import CliRunner

    from assetgen.cli import cli

    root.mkdir()
    (root / "assets.toml").write_text('[settings]\nout_dir = "out"\n\n[targets.a]\nprompt = "A"\n', encoding="utf-8")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["-f", str(root / "assets.toml"), *args], catch_exceptions=False)
    assert run("build", "--offline").exit_code == 0
    return run


@pytest.mark.parametrize("force", [False, True])
def test_prune_never_deletes_a_file_outside_the_project_named_by_a_crafted_lock(tmp_path: Any, force: bool) -> None:
    import hashlib

    run = _offline_project(tmp_path / "proj")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious\n")
    inside = tmp_path / "proj" / "out" / "a.jpg"
    sha = hashlib.sha256(victim.read_bytes()).hexdigest()
    lock = tmp_path / "proj" / "assets.lock"
    lock.write_text(lock.read_text(encoding="utf-8") + (
        f'\n[targets.zz]\nkey = "{"a" * 64}"\nmodel = "gemini-3.1-flash-image-preview"\nspec = {{}}\n'
        f'outputs = [{{path = "../victim.txt", sha256 = "{sha}", size = 9}},'
        f' {{path = "{victim}", sha256 = "{sha}", size = 9}}]\n'), encoding="utf-8")
    result = run("prune", *(["--force"] if force else []))
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == b"precious\n"
    assert inside.exists()
    assert "victim" not in result.output


def test_merge_lock_keeps_the_sprite_sheet_records(tmp_path: Any) -> None:
    """``merge-lock`` rewrote the lock from its target entries alone: every ``[sheets.NAME]`` record was lost."""
    import shutil

    from assetgen.commands.merge_lock import merge_locks
    from assetgen.state.lockfile import Lock

    run = _offline_project(tmp_path / "proj")
    assert run("plan", "--offline").exit_code == 0
    lock_path = tmp_path / "proj" / "assets.lock"
    lock = Lock.load(lock_path)
    lock.sheets["icons"] = {"key": "b" * 64, "members": 1, "size": [8, 8],
                            "outputs": [{"path": "out/icons.png", "sha256": "c" * 64, "size": 3}]}
    lock.save()
    base, ours, theirs = (tmp_path / n for n in ("base.lock", "ours.lock", "theirs.lock"))
    for copy in (base, ours, theirs):
        shutil.copy(lock_path, copy)
    result = merge_locks(base, ours, theirs)
    assert not result.conflicts
    assert Lock.load(ours).sheets == lock.sheets


# -- the GitHub Action never sends its token anywhere but the configured API URL -----------------------

def test_github_action_token_never_follows_a_redirect_to_another_host() -> None:
    """urllib follows redirects and keeps every header but the body's: a 302 from the API (a proxy, a
    misconfigured GitHub Enterprise) to another host got ``Authorization: Bearer <token>`` sent there."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from assetgen.cli.github_action import GitHub
    from assetgen.errors import UsageError

    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"[]")

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Api(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{other.server_address[1]}/stolen")
            self.send_header("Content-Length", "0")
            self.end_headers()

    api = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    for server in (api, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        github = GitHub(f"http://127.0.0.1:{api.server_address[1]}", "acme/game", "ghs_secret_token_value")
        with pytest.raises(UsageError) as caught:
            github.call("GET", "/repos/acme/game/issues/7/comments")
        assert "ghs_secret_token_value" not in str(caught.value)
        assert seen == []
    finally:
        for server in (api, other):
            server.shutdown()
            server.server_close()


# -- sprite sheets: a member Pillow refuses to decode is a clear error, never a traceback ---------------

def test_sheet_member_too_big_to_decode_is_a_clear_error(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A member output over Pillow's decompression-bomb limit (an adopted retouch of 14000×14000 within a
    sheet's max_size of 16384) raised DecompressionBombError through ``build``: a traceback."""
    from click.testing import CliRunner
    from PIL import Image

    from assetgen.cli import cli

    root = tmp_path / "proj"
    root.mkdir()
    (root / "assets.toml").write_text(
        '[settings]\nout_dir = "assets"\n\n[defaults]\nresolution = "0.5K"\n\n'
        '[targets.walk]\nprompt = "frame {frame}"\nmatrix = { frame = ["1", "2"] }\noutput = "walk/{frame}.png"\n\n'
        '[sheets.walk]\nmembers = ["walk"]\noutput = "sheets/walk.png"\nmax_size = 16384\n', encoding="utf-8")

    def run(*args: str) -> Any:
        return CliRunner().invoke(cli, ["-f", str(root / "assets.toml"), *args])
    first = run("build", "--offline")
    assert first.exit_code == 0, first.output
    (root / "assets" / "sheets" / "walk.png").unlink()            # the sheet is remade by the next build
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)           # (a 14000×14000 member, cheaply)
    result = run("build", "--offline")
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1
    assert "walk" in result.output and "decompression" not in result.output.lower()


# -- durably: the loop's final cancellation (asyncio.run cancels every task left) ---------------------

def test_durably_waits_for_its_work_even_when_every_task_is_cancelled() -> None:
    """``durably`` ran its work in an ``asyncio.to_thread`` *task*: when ``asyncio.run`` ends with a job still
    writing, it cancels every task, that one too, and ``durably`` raised CancelledError while the write still
    ran (an intent then stayed journaled for a POST never sent: the key reported uncertain)."""
    import threading

    from assetgen.providers.base import durably

    release = threading.Event()
    outcome: list[Any] = []

    def work() -> str:
        release.wait(5)
        return "written"

    async def job() -> None:
        try:
            outcome.append(await durably(work))
        except asyncio.CancelledError:
            outcome.append("raised before the work ended")
            raise

    async def main() -> None:
        asyncio.ensure_future(job())
        await asyncio.sleep(0.05)
        threading.Timer(0.2, release.set).start()   # the main coroutine returns with the job mid-write
    asyncio.run(main())
    assert outcome == [("written", True)]

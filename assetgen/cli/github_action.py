"""The GitHub Action's script (``action.yml``): plan, post or update ONE pull-request comment, fail as configured.

Runnable anywhere: ``python -m assetgen.cli.github_action``. It reads what a GitHub runner provides, so a
fake event file and a fake API server reproduce a run locally:

- ``INPUT_MANIFEST`` (default: the nearest ``assets.toml``), ``INPUT_PROFILE``, ``INPUT_FAIL_ON``
  (``stale``, ``unapproved``, ``stale,unapproved`` or ``none``; default ``stale``), ``INPUT_COMMENT``
  (``true``/``false``; default ``true``);
- ``GITHUB_EVENT_PATH`` (the pull request's number), ``GITHUB_REPOSITORY``, ``GITHUB_API_URL``,
  ``GITHUB_TOKEN``; ``GITHUB_STEP_SUMMARY`` and ``GITHUB_OUTPUT`` when set.

The plan never calls an image provider. The comment is found again by a hidden marker, so each push edits
the same comment. Exit codes: 0 pass, 1 failed the configured check, 2 a manifest, configuration or API error.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..engine.events import usd
from ..engine.project import Project
from ..errors import AssetgenError, ManifestError, UsageError
from .reporters import render_markdown

MARKER = "<!-- assetgen-plan -->"
CHECKS = {"stale", "unapproved"}


@dataclass
class Outcome:
    body: str              # the comment (markdown, with the marker)
    stale: int
    unapproved: int
    cost: float


def plan_comment(manifest: str, profile: str | None, *, approvals: bool = False) -> Outcome:
    """The plan as the comment; ``approvals`` (fail-on names unapproved) lists what is not approved."""
    project = Project.open(manifest, profile=profile, warn=lambda m: print(f"Warning: {m}", file=sys.stderr))
    try:
        plan = project.plan(())
    finally:
        project.close()
    text = render_markdown(plan)
    unapproved = plan.unapproved
    if unapproved and approvals:
        text += (f"\n{len(unapproved)} target(s) not approved as they stand: "
                 + ", ".join(f"`{i.name}`" for i in unapproved[:20]) + ("…" if len(unapproved) > 20 else "") + "\n")
    return Outcome(f"{MARKER}\n{text}", len(plan.stale), len(unapproved), plan.total_cost)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: urllib would follow it with every header, the token's too, to any host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


class GitHub:
    """The three REST calls the action makes, with the job's token (sent to the configured API URL only)."""

    def __init__(self, api: str, repository: str, token: str) -> None:
        self.api, self.repository, self.token = api.rstrip("/"), repository, token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.api}{path}", method=method, data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": "2022-11-28", "Content-Type": "application/json",
                     "User-Agent": "assetgen-action"})
        try:
            with _OPENER.open(request, timeout=30) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            exc.close()
            hint = (" (a pull request from a fork gets a read-only token: read the job summary instead)"
                    if exc.code in (403, 404) else
                    " (a redirect is not followed: set GITHUB_API_URL to where the API answers)"
                    if 300 <= exc.code < 400 else "")
            raise UsageError(self._clean(f"GitHub API {method} {path}: HTTP {exc.code} {exc.reason}{hint}")) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise UsageError(self._clean(f"GitHub API {method} {path}: {exc}")) from None

    def _clean(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text

    def upsert_comment(self, number: int, body: str) -> str:
        """Edit the comment holding the marker, or create it. Returns ``created`` or ``updated``."""
        page = 1
        while True:
            comments = self.call("GET", f"/repos/{self.repository}/issues/{number}/comments?per_page=100&page={page}")
            for comment in comments:
                if MARKER in (comment.get("body") or ""):
                    self.call("PATCH", f"/repos/{self.repository}/issues/comments/{comment['id']}", {"body": body})
                    return "updated"
            if len(comments) < 100:
                break
            page += 1
        self.call("POST", f"/repos/{self.repository}/issues/{number}/comments", {"body": body})
        return "created"


def pull_request_number(event_path: str | None) -> int | None:
    if not event_path or not Path(event_path).is_file():
        return None
    event = json.loads(Path(event_path).read_text(encoding="utf-8"))
    number = (event.get("pull_request") or {}).get("number") or event.get("number")
    return int(number) if number else None


def failing(outcome: Outcome, fail_on: str) -> list[str]:
    checks = {c.strip() for c in fail_on.split(",") if c.strip()} - {"none"}
    unknown = checks - CHECKS
    if unknown:
        raise UsageError(f"input fail-on: unknown {', '.join(sorted(unknown))}; use stale, unapproved, "
                            f"stale,unapproved or none")
    reasons = []
    if "stale" in checks and outcome.stale:
        reasons.append(f"{outcome.stale} target(s) would be regenerated or restored ({usd(outcome.cost)})")
    if "unapproved" in checks and outcome.unapproved:
        reasons.append(f"{outcome.unapproved} target(s) are not approved as they stand")
    return reasons


def run(env: dict[str, str]) -> int:
    from .discovery import find_manifest

    manifest = env.get("INPUT_MANIFEST") or find_manifest()
    fail_on = env.get("INPUT_FAIL_ON") or "stale"
    outcome = plan_comment(manifest, env.get("INPUT_PROFILE") or None, approvals="unapproved" in fail_on)
    reasons = failing(outcome, fail_on)
    print(outcome.body)
    if env.get("GITHUB_STEP_SUMMARY"):
        with open(env["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as summary:
            summary.write(outcome.body.removeprefix(MARKER + "\n") + "\n")
    if env.get("GITHUB_OUTPUT"):
        with open(env["GITHUB_OUTPUT"], "a", encoding="utf-8") as output:
            output.write(f"stale={outcome.stale}\nunapproved={outcome.unapproved}\ncost={outcome.cost:.4f}\n")
    number = pull_request_number(env.get("GITHUB_EVENT_PATH"))
    if (env.get("INPUT_COMMENT") or "true").lower() != "false":
        if number is None:
            print("Not a pull request: no comment posted.", file=sys.stderr)
        elif not env.get("GITHUB_TOKEN"):
            raise UsageError("no GITHUB_TOKEN: pass `github-token: ${{ github.token }}` (the default) or set "
                                "`comment: false`")
        else:
            github = GitHub(env.get("GITHUB_API_URL") or "https://api.github.com", env["GITHUB_REPOSITORY"],
                            env["GITHUB_TOKEN"])
            print(f"Comment {github.upsert_comment(number, outcome.body)} on pull request #{number}.",
                  file=sys.stderr)
    for reason in reasons:
        print(f"Error: {reason} (fail-on: {fail_on})", file=sys.stderr)
    return 1 if reasons else 0


def main() -> None:
    try:
        sys.exit(run(dict(os.environ)))
    except ManifestError as exc:
        print(f"Error: {exc.render('no plan was made')}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except AssetgenError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

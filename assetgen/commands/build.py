"""The library's verbs, as the CLI uses them: ``make_provider`` and ``build``.

    from assetgen import Project, build
    report = asyncio.run(build(Project.open("assets.toml"), offline=True))
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..engine.events import PlainReporter, Reporter
from ..engine.orphans import drop_orphan_entries
from ..engine.plan import Plan, batch_prices
from ..engine.project import Project, wait_for_build_lock
from ..engine.scheduler import SUCCEEDED_STATES, Builder, BuildReport, Controller
from ..engine.spending import check_limits, headroom, upload_missing
from ..errors import AssetgenError, BudgetExceeded, ConfirmationDeclined, UsageError
from ..providers.base import Provider

API_KEY_ENV = "ASSETGEN_API_KEY"
BASE_URL_ENV = "ASSETGEN_BASE_URL"
POLL_ENV = "ASSETGEN_POLL_INTERVAL"      # seconds; tests and benchmarks poll faster than the 3 s default
BACKOFF_ENV = "ASSETGEN_RETRY_BACKOFF"   # base seconds of the retry backoff (default 0.5)
DEADLINE_ENV = "ASSETGEN_HTTP_DEADLINE"  # total seconds for one HTTP exchange (default 120; downloads 600)
POLL_BOUNDS = (0.05, 3600.0)             # as the manifest's [settings] poll_interval


@dataclass(kw_only=True)
class BuildOptions:
    targets: tuple[str, ...] = ()
    offline: bool | None = None          # None: the manifest's [settings] provider
    force: bool = False
    keep_going: bool = False
    jobs: int | None = None
    budget: float | None = None
    lock_timeout: float = 600.0
    retry_uncertain: bool | frozenset[str] = False   # True, or target names: see Builder
    batch: bool = False                  # Gemini and OpenAI targets go in batch jobs (half price, slower)
    no_wait: bool = False                # with batch: create and journal the jobs, do not wait for them


def make_provider(project: Project | None, *, offline: bool, env: Mapping[str, str] | None = None,
                  batch: bool = False, no_wait: bool = False) -> Provider:
    """The offline provider, or the providers the manifest's targets use, each with its key from the
    environment (never from files): all keys are checked before any work."""
    if offline:
        from ..providers.offline import OfflineProvider
        return OfflineProvider()
    env = os.environ if env is None else env
    used = sorted({t.provider for t in project.manifest.targets.values()}) if project else ["gateway"]
    if used == ["gateway"] or not used:          # (--batch has nothing to batch then)
        return _gateway(project, env)
    from ..providers.router import RoutingProvider

    built: dict[str, Provider] = {}
    try:
        for name in used:
            built[name] = _gateway(project, env) if name == "gateway" else _vendor(name, project, env, batch, no_wait)
    except BaseException:
        for provider in built.values():
            _close_now(provider)
        raise
    return RoutingProvider(built)


def _gateway(project: Project | None, env: Mapping[str, str]) -> Provider:
    key = env.get(API_KEY_ENV, "").strip()
    if not key:
        raise UsageError(f"no API key: set the {API_KEY_ENV} environment variable "
                         f"(export {API_KEY_ENV}=...), or build placeholders with --offline")
    from ..providers.client import (
        DEFAULT_BASE_URL,
        DEFAULT_DEADLINE,
        DEFAULT_DOWNLOAD_DEADLINE,
        GatewayClient,
    )
    from ..providers.gateway import GatewayProvider

    settings = project.manifest.settings if project else None
    poll = _seconds(env, POLL_ENV, settings.poll_interval if settings else 3.0, bounds=POLL_BOUNDS)
    backoff = _seconds(env, BACKOFF_ENV, 0.5)
    deadline = _seconds(env, DEADLINE_ENV, 0.0) if env.get(DEADLINE_ENV) else None
    client = GatewayClient(api_key=key, base_url=env.get(BASE_URL_ENV) or DEFAULT_BASE_URL, backoff_base=backoff,
                           deadline=deadline or DEFAULT_DEADLINE,
                           download_deadline=deadline or DEFAULT_DOWNLOAD_DEADLINE)
    return GatewayProvider(client=client, poll_interval=poll,
                           task_timeout=settings.task_timeout if settings else 600.0)


def _vendor(name: str, project: Project | None, env: Mapping[str, str], batch: bool = False,
            no_wait: bool = False) -> Provider:
    """Google's or OpenAI's provider (sync calls), with the key of the first of its variables set."""
    from .. import catalog
    from ..providers.vendorclient import DEFAULT_DEADLINE, VendorClient

    info = catalog.PROVIDERS[name]
    key = next((env[v].strip() for v in info.key_envs if env.get(v, "").strip()), "")
    count = sum(1 for t in project.manifest.targets.values() if t.provider == name) if project else 0
    if not key:
        names = " or ".join(info.key_envs)
        raise UsageError(f"no API key for provider {name} ({count} target(s) use it): set {names} "
                         f"(export {info.key_envs[0]}=...), or build placeholders with --offline")
    base_url = env.get(info.base_url_env) or info.base_url
    deadline = _seconds(env, DEADLINE_ENV, 0.0) if env.get(DEADLINE_ENV) else DEFAULT_DEADLINE
    headers = {"x-goog-api-key": key} if name == "gemini" else {"Authorization": f"Bearer {key}"}
    client = VendorClient(vendor={"gemini": "Google's Gemini API", "openai": "OpenAI"}[name], base_url=base_url,
                          headers=headers, secret=key, deadline=deadline, backoff_base=_seconds(env, BACKOFF_ENV, 0.5))
    poll = _seconds(env, POLL_ENV, project.manifest.settings.poll_interval if project else 10.0, bounds=POLL_BOUNDS)
    if name == "gemini" and batch:
        from ..providers.gemini_batch import GeminiBatchProvider
        return GeminiBatchProvider(client, poll_interval=poll, no_wait=no_wait)
    if name == "openai" and batch:
        from ..providers.openai_batch import OpenAIBatchProvider
        return OpenAIBatchProvider(client, poll_interval=poll, no_wait=no_wait)
    if name == "gemini":
        from ..providers.gemini import GeminiProvider
        return GeminiProvider(client, poll_interval=poll)
    from ..providers.openai import OpenAIProvider
    return OpenAIProvider(client)


def _close_now(provider: Provider) -> None:
    import asyncio

    try:
        asyncio.run(provider.aclose())
    except RuntimeError:
        pass            # inside a running loop: the connections close with the process


def _seconds(env: Mapping[str, str], name: str, default: float,
             bounds: tuple[float, float] = (0.0, math.inf)) -> float:
    """A number of seconds from the environment, finite and within ``bounds`` (exit 2 otherwise)."""
    try:
        value = float(env.get(name, default))
    except ValueError:
        value = math.nan
    low, high = bounds
    if not (math.isfinite(value) and low <= value <= high):
        where = f"from {low:g} to {high:g}" if math.isfinite(high) else f"at least {low:g}"
        raise UsageError(f"{name} must be a finite number of seconds, {where} (got {env.get(name)!r})")
    return value


def check_budget(plan: Plan, budget: float | None) -> None:
    if budget is not None and plan.max_cost > budget + 1e-9:
        bound = " (upper bound with official_fallback)" if plan.max_cost > plan.total_cost else ""
        raise BudgetExceeded(f"this build is estimated at ${plan.max_cost:.4f}{bound}, over the budget of "
                             f"${budget:.2f}; nothing was submitted. Raise [settings] budget (--budget may only "
                             f"lower it), or build fewer targets (assetgen build TARGET…)")


def effective_budget(manifest: float | None, flag: float | None) -> float | None:
    """The per-build budget: the manifest's, or a lower one from the command line (never a higher one:
    raising what a manifest allows is a reviewed change to the manifest)."""
    if flag is None:
        return manifest
    if manifest is not None and flag > manifest + 1e-9:
        raise UsageError(f"--budget {flag:g} would raise the manifest's [settings] budget of ${manifest:.2f}; "
                         f"a command-line budget may only lower it. Edit [settings] budget to raise it")
    return flag


def export_after(project: Project, report: BuildReport) -> None:
    """Rewrite the ``[settings] export`` indexes after a build that changed anything (or when one is
    missing); a failure to write one is a problem of the build (exit 1), not a traceback."""
    from .export import export_configured

    exports = project.manifest.settings.exports
    changed = any(r.status in SUCCEEDED_STATES for r in report.results)
    if exports and (changed or not all((project.root / e.output).exists() for e in exports)):
        try:
            export_configured(project)
        except (AssetgenError, OSError) as exc:
            report.problems.append(f"[settings] export: {exc}")


def sheets_after(project: Project, report: BuildReport) -> None:
    """Remake the stale ``[sheets.*]`` from the outputs just written (``engine.sheets``): free, with no
    submission; a sheet that cannot be made is a problem of the build (exit 1)."""
    if not project.manifest.sheets and not project.lock.sheets:
        return
    from ..engine.sheets import build_sheets

    try:
        report.sheets, problems = build_sheets(project)
    except OSError as exc:
        problems = [f"sheets: {exc}"]
    if not report.interrupted:        # members not built yet are a problem only if the build finished
        report.problems.extend(p for p in problems if "not built yet" not in p or not report.failed)


async def build(project: Project, options: BuildOptions | None = None, *, reporter: Reporter | None = None,
                provider: Provider | None = None, controller: Controller | None = None,
                on_wait: Callable[[], None] | None = None,
                on_plan: Callable[[Plan], None] | None = None,
                confirm: Callable[[Plan], bool] | None = None) -> BuildReport:
    """Build the stale targets. Holds the manifest's build lock for the whole run.

    ``confirm`` (a terminal's question) is asked before spending more than ``[settings] confirm_over``;
    False submits nothing (``ConfirmationDeclined``)."""
    options = options or BuildOptions()
    offline = project.is_offline(options.offline)
    provider = provider or make_provider(project, offline=offline, batch=options.batch,
                                         no_wait=options.no_wait)   # a missing key fails first
    reporter = reporter or PlainReporter()
    controller = controller or Controller()
    try:
        # Waiting for another build never blocks the loop: a signal meanwhile stops this one at once.
        lock = await wait_for_build_lock(project.manifest.path, timeout=options.lock_timeout, on_wait=on_wait,
                                         stopped=lambda: controller.stop_submitting)
    except BaseException:
        await provider.aclose()
        raise
    try:
        project.reload_lock()                    # another build may have finished while we waited
        plan = project.plan(options.targets, offline=offline, force=options.force,
                            retry_uncertain=options.retry_uncertain)
        if options.batch and not offline:
            batch_prices(plan)
        budget = effective_budget(project.manifest.settings.budget, options.budget)
        check_budget(plan, budget)
        if drop_orphan_entries(project.manifest.targets, project.lock, project.orphans_record):
            project.lock.save()                 # the lock describes exactly the manifest's targets
        limit = None
        if not provider.placeholder:
            upload_missing(project)            # entries written while the remote was down, once per build
            limit = headroom(check_limits(project, plan.max_cost))     # before anything is submitted
            if (confirm is not None and plan.max_cost > project.manifest.settings.confirm_over + 1e-9
                    and not confirm(plan)):
                raise ConfirmationDeclined("not confirmed; nothing was submitted")
        if on_plan is not None:
            on_plan(plan)
        jobs = options.jobs or project.manifest.settings.jobs
        if options.batch:                      # every ready target joins the job: --jobs must not hold some back
            jobs = max(jobs, len(plan.stale))
        builder = Builder(project, plan, provider, reporter=reporter,
                          jobs=jobs, budget=budget,
                          keep_going=options.keep_going, controller=controller,
                          retry_uncertain=options.retry_uncertain)
        builder.session.limit = limit
        report = await builder.run()
        sheets_after(project, report)
        export_after(project, report)
        return report
    finally:
        project.store.stat.save()
        lock.release()
        await provider.aclose()

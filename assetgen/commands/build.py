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
from ..engine.plan import Plan
from ..engine.project import Project, wait_for_build_lock
from ..engine.scheduler import Builder, BuildReport, Controller
from ..engine.spending import check_limits, headroom
from ..errors import BudgetExceeded, ConfirmationDeclined, UsageError
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


def make_provider(project: Project | None, *, offline: bool, env: Mapping[str, str] | None = None) -> Provider:
    """The offline provider, or the gateway's with the key from the environment (never from files)."""
    if offline:
        from ..providers.offline import OfflineProvider
        return OfflineProvider()
    env = os.environ if env is None else env
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
                           deadline=deadline or DEFAULT_DEADLINE, download_deadline=deadline or DEFAULT_DOWNLOAD_DEADLINE)
    return GatewayProvider(client=client, poll_interval=poll,
                           task_timeout=settings.task_timeout if settings else 600.0)


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
    provider = provider or make_provider(project, offline=offline)   # a missing key fails before any work
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
        budget = effective_budget(project.manifest.settings.budget, options.budget)
        check_budget(plan, budget)
        limit = None
        if not provider.placeholder:
            limit = headroom(check_limits(project, plan.max_cost))     # before anything is submitted
            if (confirm is not None and plan.max_cost > project.manifest.settings.confirm_over + 1e-9
                    and not confirm(plan)):
                raise ConfirmationDeclined("not confirmed; nothing was submitted")
        if on_plan is not None:
            on_plan(plan)
        builder = Builder(project, plan, provider, reporter=reporter,
                          jobs=options.jobs or project.manifest.settings.jobs, budget=budget,
                          keep_going=options.keep_going, controller=controller,
                          retry_uncertain=options.retry_uncertain)
        builder.session.limit = limit
        return await builder.run()
    finally:
        project.store.stat.save()
        lock.release()
        await provider.aclose()

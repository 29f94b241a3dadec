"""The ``assetgen`` command: parse, wire up, call the library, turn ``AssetgenError`` into exit codes.

Exit codes: 0 success; 1 a build or check failed; 2 usage, manifest or configuration errors; 130 a second
Ctrl-C; 143 / 129 SIGTERM / SIGHUP (128 + the signal's number, as shells report them).
"""

from __future__ import annotations

from gc import freeze as freeze_heap   # (`gc` is the name of a command below)
import json
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import catalog
from ..engine.events import PlainReporter, QuietReporter, money, usd
from ..engine.project import CACHE_DIR, Project, acquire_build_lock
from ..errors import AssetgenError
from ..state.atomic import forget_sweeps, sweep_stale_temps
from .reporters import LiveReporter, render_markdown, render_plan, render_summary

if TYPE_CHECKING:
    from ..commands.gc import GcReport
    from ..engine.scheduler import BuildReport, Controller

# The build machinery (asyncio, httpx, Pillow, watchfiles) is imported inside the commands that use
# it: `plan` on a big manifest should not pay for it. Defaults that --help shows live here.
DEFAULT_SETTLE = 0.4

T = TypeVar("T")


class Context:
    def __init__(self, file: str) -> None:
        self.file = file

    def project(self, profile: str | None = None, *, remote: bool = True) -> Project:
        forget_sweeps()           # this command's writes remove stale temporaries where they write
        project = Project.open(self.file, profile=profile, use_remote=remote, warn=_warn)
        # A command's project lives until the process ends: move it (and everything before it) out of
        # the collector's sight, or the next full collection walks all of it (60 ms at 10,000
        # targets). Later garbage, a build's tasks and connections, is collected as usual.
        freeze_heap()
        return project


# The build lock belongs to the cache folder, shared by every manifest beside it (and taken by gc).
WAITING = ("Another build, watch or gc using this cache (.assetgen/, shared by every manifest in this folder) "
           "is running; waiting for it to finish…")


def _warn(message: str) -> None:
    click.echo(f"Warning: {message}", err=True)


def _warn_limits(project: Project, limit: int = 10) -> None:
    """The gateway's documented limits that targets go beyond (``Manifest.warnings``), on stderr."""
    warnings = project.manifest.warnings
    for message in warnings[:limit]:
        _warn(message)
    if len(warnings) > limit:
        _warn(f"… and {len(warnings) - limit} more targets beyond the gateway's documented limits")


F = TypeVar("F", bound=Callable[..., Any])


def profile_option(command: F) -> F:
    return click.option("--profile", metavar="NAME",
                        help="Apply [profiles.NAME] (e.g. cheap drafts); its outputs and lock are its own.")(command)


def remote_option(command: F) -> F:
    return click.option("--no-remote", "no_remote", is_flag=True,
                        help="Ignore [cache] remote: local cache only.")(command)


def _fail(exc: AssetgenError) -> None:
    click.echo(f"Error: {exc}", err=True)
    sys.exit(exc.exit_code)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssetgenError as exc:
            _fail(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "file", default="assets.toml", show_default=True, metavar="PATH",
              help="The manifest to use.")
@click.version_option(package_name="assetgen-build", prog_name="assetgen")
@click.pass_context
def cli(ctx: click.Context, file: str) -> None:
    """Declare AI-generated images once; build only what changed; never pay twice."""
    ctx.obj = Context(file)


# -- plan -------------------------------------------------------------------------------------------

@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text",
              help="Output format (markdown: a table for a pull-request comment).")
@click.option("--check", is_flag=True, help="Exit 1 if anything is stale (for CI).")
@click.option("--offline", is_flag=True, default=None, help="Plan an offline build (placeholders count as built).")
@click.option("--all", "list_all", is_flag=True, help="List every target, with each matrix row on its own line.")
@click.option("--batch", is_flag=True, help="Price Gemini targets as `build --batch` would (batch job: half price).")
@profile_option
@remote_option
@click.pass_obj
def plan(obj: Context, targets: tuple[str, ...], as_json: bool, fmt: str, check: bool, offline: bool | None,
         list_all: bool, batch: bool, profile: str | None, no_remote: bool) -> None:
    """Show what a build would do, why, and what it would cost. Never calls the gateway."""
    from ..engine.plan import batch_prices

    project = obj.project(profile, remote=not no_remote)
    _warn_limits(project)
    try:
        result = project.plan(targets, offline=offline or None)
        if batch and not result.offline:
            batch_prices(result)
    finally:
        project.close()
    if as_json or fmt == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        click.echo(render_plan(result, list_all=list_all))
    if check and result.stale:
        sys.exit(1)


# -- build ------------------------------------------------------------------------------------------

@cli.command(name="build")
@click.argument("targets", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show the plan and build nothing (same as `plan`).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Tasks in flight at once [default: settings.jobs].")
@click.option("--budget", type=click.FloatRange(min=0), help="Refuse a build whose estimate exceeds USD.")
@click.option("--keep-going", is_flag=True, help="Go on with other targets after one fails.")
@click.option("--force", is_flag=True, help="Replace outputs that were modified by hand.")
@click.option("--offline", is_flag=True, default=None, help="Render placeholders locally; costs nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print only failures and the summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache (.assetgen/).")
@click.option("--retry-uncertain", "retry_uncertain", is_flag=True,
              help="Submit again the uncertain targets (all, or the TARGETs named): an earlier submission "
                   "of theirs may have been paid for, so this may pay twice.")
@click.option("--batch", is_flag=True, help="Send Gemini targets in one batch job (half price; results in "
                                            "minutes to hours; Ctrl-C leaves it for the next build to collect).")
@profile_option
@remote_option
@click.pass_obj
def build_cmd(obj: Context, targets: tuple[str, ...], dry_run: bool, jobs: int | None, budget: float | None,
              keep_going: bool, force: bool, offline: bool | None, quiet: bool, as_json: bool, wait: float,
              retry_uncertain: bool, batch: bool, profile: str | None, no_remote: bool) -> None:
    """Build stale targets (and what they depend on)."""
    from ..commands.build import BuildOptions, build, is_offline, make_provider

    project = obj.project(profile, remote=not no_remote)
    _warn_limits(project)
    if not dry_run:
        _sweep_temporaries(project)
    retry: bool | frozenset[str] = retry_uncertain and (frozenset(project.manifest.expand(targets))
                                                        if targets else True)
    if dry_run:
        try:
            click.echo(render_plan(project.plan(targets, offline=offline or None, force=force,
                                                retry_uncertain=retry)))
        finally:
            project.close()
        return
    options = BuildOptions(targets=targets, offline=offline or None, force=force, keep_going=keep_going,
                           jobs=jobs, budget=budget, lock_timeout=wait, retry_uncertain=retry, batch=batch)
    offline_now = is_offline(project, options.offline)
    provider = make_provider(project, offline=offline_now, batch=batch)   # no key: exit 2 before any work
    live = not (quiet or as_json) and sys.stdout.isatty()
    stream = sys.stderr if as_json else sys.stdout
    state: dict[str, Any] = {}

    def on_plan(p: Any) -> None:
        state["plan"] = p
        if not (quiet or as_json) and p.stale:
            cost = f", estimated {money(p.total_cost)}" if p.total_cost else ""
            click.echo(f"Building {len(p.stale)} of {len(p.items)} targets{cost}.", file=stream)
        if live and p.stale:
            reporter.start(len(p.stale))

    reporter: Any
    if as_json or quiet:
        reporter = QuietReporter()
    elif live:
        reporter = _LazyLive(stream)
    else:
        reporter = PlainReporter(stream)

    def waiting() -> None:
        click.echo(WAITING, err=True)

    async def main(controller: Controller) -> BuildReport:
        try:
            return await build(project, options, reporter=reporter, provider=provider, controller=controller,
                               on_wait=waiting, on_plan=on_plan)
        finally:
            reporter.close() if hasattr(reporter, "close") else None

    try:
        report = _run_interruptible(main)
    finally:
        project.close()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(render_summary(report), file=stream)
        for failure in report.failed:
            click.echo(f"  {failure.name}: {failure.status}: {failure.message}", err=True)
        for problem in report.problems:
            click.echo(f"Error: {problem}", err=True)
    sys.exit(report.exit_code)


def _sweep_temporaries(project: Project) -> None:
    """Remove temporaries a killed assetgen left where this build writes (outputs, the lock, the
    journal), even where it has nothing to write: one left in an output folder could be committed."""
    root = project.manifest.root
    folders = {out.path.rpartition("/")[0] for t in project.manifest.targets.values() for out in t.outputs}
    for folder in sorted(folders) + [project.lock_path.parent.as_posix()]:
        sweep_stale_temps(root / folder)
    # The cache's own folders too (objects/ab/, index/gen/, journal/…): a kill between a temporary file
    # and its rename leaves one there. A few hundred scandirs: ~5 ms at 10,000 targets.
    cache = project.cache_dir
    for sub in [cache, *cache.glob("*/"), *cache.glob("objects/*/"), *cache.glob("index/*/")]:
        sweep_stale_temps(sub)


class _LazyLive:
    """Starts rich's live view only once there is something to show."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.view: LiveReporter | None = None

    def start(self, total: int) -> None:
        self.view = LiveReporter(total, self.stream).__enter__()

    def emit(self, event: Any) -> None:
        if self.view is not None:
            self.view.emit(event)

    def close(self) -> None:
        if self.view is not None:
            self.view.__exit__(None, None, None)
            self.view = None


STOP_SIGNALS = ("SIGTERM", "SIGHUP")     # a container stop, a CI cancel, a closed terminal


def _run_interruptible(main: Callable[[Controller], Coroutine[Any, Any, T]]) -> T:
    """Run ``main`` with Ctrl-C handling: first stops submitting, second exits now (journal intact).

    SIGTERM and SIGHUP stop submitting and exit at once (128 + the signal's number): a container or CI
    runner that sends them kills the process a few seconds later. The lock is saved, tasks in flight
    stay in the journal, and a submit already on the wire gets a moment to return its task id."""
    import asyncio
    import signal

    from ..engine.scheduler import Controller

    controller = Controller()
    loop = asyncio.new_event_loop()
    task = loop.create_task(main(controller))
    presses = 0
    stopped_by: list[int] = []

    def on_stop_signal(signum: int) -> None:
        if not stopped_by:
            stopped_by.append(signum)
            name = signal.Signals(signum).name
            controller.stop(f"stopped ({name})")
            click.echo(f"\n{name}: stopping now; tasks in flight stay in the journal.", err=True)
            task.cancel()

    def on_interrupt() -> None:
        nonlocal presses
        presses += 1
        if presses == 1:
            controller.stop("interrupted (Ctrl-C)")
            click.echo("\nStopping: no new tasks will be submitted; waiting for the ones in flight. "
                       "Press Ctrl-C again to exit now.", err=True)
        else:
            task.cancel()

    handled = [signal.SIGINT]
    try:
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        for name in STOP_SIGNALS:
            signum = getattr(signal, name, None)
            if signum is not None:
                loop.add_signal_handler(signum, on_stop_signal, signum)
                handled.append(signum)
    except (NotImplementedError, RuntimeError, ValueError):
        pass  # not the main thread (or Windows): plain KeyboardInterrupt applies
    try:
        return loop.run_until_complete(task)
    except (asyncio.CancelledError, KeyboardInterrupt):
        click.echo("Interrupted. Tasks in flight are recorded in .assetgen/journal and are paid for; run "
                   "`assetgen build` again to collect them without paying twice.", err=True)
        sys.exit(128 + stopped_by[0] if stopped_by else 130)
    finally:
        for signum in handled:
            try:
                loop.remove_signal_handler(signum)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


# -- watch ------------------------------------------------------------------------------------------

@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--settle", type=click.FloatRange(min=0), default=DEFAULT_SETTLE, show_default=True,
              help="Seconds the files must be quiet before a change is built.")
@click.option("--budget", type=click.FloatRange(min=0), help="Cap on what this whole session may spend (USD).")
@click.option("--offline", is_flag=True, default=None, help="Render placeholders locally; costs nothing.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Tasks in flight at once.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache (.assetgen/).")
@click.option("--gallery", "with_gallery", is_flag=True,
              help="Also serve the gallery on 127.0.0.1; open pages update as images arrive.")
@profile_option
@remote_option
@click.pass_obj
def watch(obj: Context, targets: tuple[str, ...], settle: float, budget: float | None, offline: bool | None,
          jobs: int | None, wait: float, with_gallery: bool, profile: str | None, no_remote: bool) -> None:
    """Build, then rebuild what changes whenever the manifest or a reference file is saved."""
    import asyncio
    import signal

    from ..commands.build import make_provider
    from ..commands.watch import WatchOptions, Watcher

    path = Path(obj.file)
    if not path.exists():
        raise AssetgenError(f"{path} not found; run `assetgen init` to write a starter manifest")
    try:
        project: Project | None = Project.open(path, profile=profile)
    except AssetgenError:
        project = None                            # shown by the watch's first build, which then waits for a fix
    offline_now = offline or bool(project and project.manifest.settings.provider == "offline")
    provider = make_provider(project, offline=offline_now)
    if project is not None:
        project.close()
    lock = acquire_build_lock(path.resolve(), timeout=wait, on_wait=lambda: click.echo(WAITING, err=True))
    options = WatchOptions(targets=targets, offline=offline_now, settle=settle, budget=budget, jobs=jobs,
                           profile=profile, use_remote=not no_remote)
    reporter: Any = PlainReporter()
    server = None
    if with_gallery:
        from ..review.live import LiveGallery

        server = LiveGallery(path.resolve().parent / CACHE_DIR / "gallery", project)
        reporter = server.reporter(reporter)
        click.echo(f"Gallery: {server.start()}")
    watcher = Watcher(path, provider, options, reporter=reporter, echo=click.echo)
    if server is not None:
        watcher.after_build = server.refresh
    click.echo(f"Watching {path} (settle {settle:g} s{', offline' if offline_now else ''}). Ctrl-C to stop.")

    stopped_by: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if signum != signal.SIGINT and not stopped_by:
                stopped_by.append(signum)
            watcher.controller.stop("the watch is stopping")
            stop.set()

        try:
            loop.add_signal_handler(signal.SIGINT, on_signal, signal.SIGINT)
            for name in STOP_SIGNALS:
                if hasattr(signal, name):
                    loop.add_signal_handler(getattr(signal, name), on_signal, getattr(signal, name))
        except (NotImplementedError, RuntimeError, ValueError):
            pass
        await watcher.run(stop)

    try:
        asyncio.run(main())
    finally:
        lock.release()
        if server is not None:
            server.stop()
    in_flight = len(list((path.parent / CACHE_DIR / "journal").glob("*.json")))
    note = (f" {in_flight} task(s) in flight stay in the journal; the next build or watch collects them "
            f"without paying again." if in_flight else "")
    click.echo(f"Stopped watching. Session spent {usd(watcher.session.spent)}.{note}")
    if stopped_by:
        sys.exit(128 + stopped_by[0])


# -- models, explain, gc, init ----------------------------------------------------------------------

@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def models(as_json: bool) -> None:
    """Every provider's models: ids, prices (with the date they were read), sizes, what a crash can cost."""
    every = [m for provider in catalog.CHANNELS for m in catalog.MODELS_OF[provider]]
    if as_json:
        click.echo(json.dumps([{**vars(m), "auth": list(catalog.PROVIDERS[m.provider].key_envs),
                                "submission": catalog.PROVIDERS[m.provider].submission,
                                "crash_cost": catalog.PROVIDERS[m.provider].crash_cost} for m in every], indent=2))
        return
    width = max(len(m.id) for m in every)
    click.echo(f"{'model':<{width}}  {'series':<16} {'tier':<9} {'$/image':>10}  {'resolutions':<16} "
               f"{'actions':<48} {'provider':<8} a crash during a call can cost")
    for m in every:
        click.echo(f"{m.id:<{width}}  {m.series:<16} {m.tier:<9} {str(m.price):>10}  {', '.join(m.resolutions):<16} "
                   f"{', '.join(m.actions):<48} {m.provider:<8} {catalog.PROVIDERS[m.provider].crash_cost}")
    click.echo("")
    for family in dict.fromkeys(m.family for m in every):
        model = next(m for m in every if m.family == family)
        sizes = dict(model.sizes)
        ratios = [f"{r} ({sizes[r][0]}x{sizes[r][1]})" if r in sizes else r for r in model.ratios]
        click.echo(f"{family} ratios: {', '.join(ratios)}")
    click.echo("")
    for m in every:
        if m.prices:
            table = ", ".join(f"{k} ${v:g}" for k, v in m.prices)
            click.echo(f"{m.id} ({m.provider}) $/image: {table}; read {m.price_read} from {m.price_source}")
    click.echo("")
    for name in catalog.CHANNELS:
        info = catalog.PROVIDERS[name]
        click.echo(f"{name}: key from {' or '.join(info.key_envs)}; endpoint {info.base_url_env} "
                   f"(default {info.base_url}); {info.submission}")
    click.echo("\nThe -official ids, and Google's own ids, are the same model on another channel: switching "
               "tier does not change a key, nor does switching channel.")


@cli.command()
@click.argument("target")
@profile_option
@click.pass_obj
def explain(obj: Context, target: str, profile: str | None) -> None:
    """A target's key, the inputs that made it, and what differs from the lock."""
    project = obj.project(profile)
    try:
        names = project.manifest.expand([target])
        plan = project.plan([target])
    finally:
        project.close()
    for item in (i for i in plan.items if i.name in names):
        _explain(item)


def _explain(item: Any) -> None:
    target = item.name
    t = item.target
    width, height = t.size
    click.echo(f"{target}\n  key        {item.key}")
    click.echo(f"  status     {'up to date' if not item.stale else item.action + ': ' + '; '.join(map(str, item.reasons))}")
    click.echo(f"  model      {t.model} ({t.spec_model.series}, {t.spec_model.tier}; key uses family {t.spec_model.family})")
    click.echo(f"  size       {t.aspect_ratio} at {t.resolution} = {width}x{height} px, n={t.n}, seed={t.seed}")
    click.echo(f"  action     {t.action}")
    click.echo(f"  provider   {t.provider}" + (f"; openai = {dict(t.openai)} (in the key)" if t.openai else ""))
    for flag in ("google_search", "google_image_search", "official_fallback"):
        if getattr(t, flag):
            click.echo(f"  {flag:<10} true")
    click.echo("  prompt     " + t.prompt.replace("\n", "\n             "))
    limit = catalog.DOCUMENTED_PROMPT_CHARS
    click.echo(f"  length     {len(t.prompt):,} characters (composed; the gateway documents at most {limit:,})"
               + ("  ← over the documented limit" if len(t.prompt) > limit else ""))
    for ref in item.spec["references"]:
        click.echo(f"  reference  {ref['ref']} → {ref['digest'][:23]}…")
    if t.style:
        click.echo(f"  style      {t.style}")
    if t.candidates:
        click.echo(f"  candidates {t.n}, pick {t.pick}")
    for out in t.outputs:
        made = "" if out.derivation.identity else f"  ({_describe(out.derivation)})"
        click.echo(f"  output     {out.path}{made}")
    if item.locked:
        lk = item.locked
        click.echo(f"  lock       key {lk.key[:16]}… model {lk.model}, cost {money(lk.cost)}, "
                   f"built {lk.built_at or '?'}{' (placeholder)' if lk.placeholder else ''}"
                   f"{', task ' + lk.task_id if lk.task_id else ''}")
    else:
        click.echo("  lock       not built yet")


# -- gallery ----------------------------------------------------------------------------------------

@cli.command()
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the gallery to [default: .assetgen/gallery].")
@click.option("--open", "open_it", is_flag=True, help="Open it in a web browser.")
@profile_option
@click.pass_obj
def gallery(obj: Context, out_dir: Path | None, open_it: bool, profile: str | None) -> None:
    """Write a self-contained HTML gallery of every target (opens from disk, no server)."""
    from ..review.gallery import write_gallery

    project = obj.project(profile, remote=False)
    try:
        index = write_gallery(project, out_dir=out_dir)
    finally:
        project.close()
    click.echo(str(index))
    if open_it:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())


# -- push, pull -------------------------------------------------------------------------------------

@cli.command()
@click.pass_obj
def push(obj: Context) -> None:
    """Upload the images of every locked target to the remote cache."""
    from ..commands.sync import push as do_push

    project = obj.project()
    try:
        sent, already = do_push(project)
    finally:
        project.close()
    click.echo(f"Pushed {sent} generation(s) to {project.remote.display_url if project.remote else '?'}; "
               f"{already} were there already.")


@cli.command()
@click.pass_obj
def pull(obj: Context) -> None:
    """Download the images of every locked target from the remote cache into the local cache."""
    from ..commands.sync import pull as do_pull

    project = obj.project()
    try:
        got, missing = do_pull(project)
    finally:
        project.close()
    note = f"; {missing} not in the remote" if missing else ""
    click.echo(f"Pulled {got} generation(s) into {CACHE_DIR}/{note}. `assetgen build` now restores "
               f"missing outputs for free.")


# -- pick, reroll, candidates -----------------------------------------------------------------------

@cli.command()
@click.argument("target")
@click.argument("choice", type=int)
@profile_option
@click.pass_obj
def pick(obj: Context, target: str, choice: int, profile: str | None) -> None:
    """Choose candidate CHOICE (1-based) as TARGET's output. Writes `pick` into the manifest; pays nothing."""
    from ..commands.authoring import pick as do_pick

    outcome = do_pick(Path(obj.file), target, choice, profile=profile)
    click.echo(f"Set pick = {choice} for {target} in {obj.file}.")
    if outcome.applied:
        click.echo(f"Wrote {', '.join(outcome.applied)} from the cached candidates (free).")
    else:
        click.echo(f"The candidates are not in the local cache: `assetgen build {target}` will make them "
                   f"({usd(outcome.cost)}).")


@cli.command()
@click.argument("target")
@profile_option
@click.pass_obj
def reroll(obj: Context, target: str, profile: str | None) -> None:
    """Write a new seed for TARGET so the next build pays for fresh images; say what that costs."""
    from ..commands.authoring import reroll as do_reroll

    seed, outcome = do_reroll(Path(obj.file), target, profile=profile)
    images = sum(i.target.n for i in outcome.rows if i.action == "generate")
    click.echo(f"Set seed = {seed} for {target} in {obj.file}. The next `assetgen build {target}` will "
               f"generate {images} new image{'s' if images != 1 else ''} for {usd(outcome.cost)}.")


@cli.command()
@click.argument("target")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to write the PNG.")
@profile_option
@click.pass_obj
def candidates(obj: Context, target: str, output: Path | None, profile: str | None) -> None:
    """Write a contact sheet of TARGET's candidates (PNG) and print its path."""
    from ..commands.authoring import write_contact_sheet

    project = obj.project(profile)
    try:
        click.echo(str(write_contact_sheet(project, target, output)))
    finally:
        project.close()


def _describe(derivation: Any) -> str:
    if derivation.passthrough:
        return f"candidate {derivation.pick}, as generated" if derivation.pick else "as generated"
    parts = [derivation.format]
    if derivation.resize:
        parts.append(f"resize {derivation.resize[0]}x{derivation.resize[1]} {derivation.fit}")
    if derivation.format != "png":
        parts.append(f"quality {derivation.quality}")
    if derivation.key_out:
        parts.append(f"key_out {derivation.key_out.color}±{derivation.key_out.tolerance}")
    return ", ".join(parts)


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@click.option("--grace", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Never remove images younger than this many seconds.")
@click.option("--forget-missing", is_flag=True,
              help="Forget manifests that used this cache and are gone (their images may then go).")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache.")
@click.pass_obj
def gc(obj: Context, dry_run: bool, grace: float, forget_missing: bool, wait: float) -> None:
    """Remove cached images that no manifest sharing this cache references any more."""
    from ..commands.gc import GcOptions, collect

    project = obj.project()
    try:
        report = collect(project, GcOptions(dry_run=dry_run, grace=grace, forget_missing=forget_missing,
                                            wait=wait),
                         on_wait=lambda: click.echo("A build, watch or gc using this cache is running; "
                                                    "waiting for it to finish…", err=True))
    finally:
        project.close()
    for line in _gc_lines(report):
        click.echo(line)


def _gc_lines(report: GcReport) -> list[str]:
    lines = []
    for gone in report.vanished:
        if gone.lock_gone:
            kept = "its lock is gone too, so its images cannot be told apart: nothing was removed"
        else:
            kept = f"kept what its lock{'s reference' if len(gone.locks) > 1 else ' references'}"
        lines.append(f"{gone.name} used this cache and is gone; {kept}. Restore it, or run "
                     f"`assetgen gc --forget-missing` to forget it.")
    for name in report.forgotten:
        lines.append(f"{'Would forget' if report.dry_run else 'Forgot'} {name} (gone): its images are "
                     f"no longer kept for it.")
    result = report.result
    size = f"{result.freed / 1e6:.1f} MB"
    young = f"; kept {result.young} unreferenced younger than --grace" if result.young else ""
    if report.dry_run:
        lines.append(f"Would remove {result.removed} cached images ({size}){young}.")
    else:
        lines.append(f"Removed {result.removed} cached images ({size}); kept {report.kept} referenced by the "
                     f"locks of {', '.join(report.manifests)}{young}.")
    return lines


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
@click.pass_obj
def init(obj: Context, force: bool) -> None:
    """Write a commented starter assets.toml and ignore .assetgen/ in git."""
    path = Path(obj.file)
    if path.exists() and not force:
        raise click.UsageError(f"{path} already exists (use --force to overwrite it)")
    from ..manifest.starter import STARTER_MANIFEST

    path.write_text(STARTER_MANIFEST, encoding="utf-8")
    ignore = path.parent / ".gitignore"
    lines = ignore.read_text(encoding="utf-8").splitlines() if ignore.exists() else []
    if not any(line.strip().rstrip("/") in (CACHE_DIR, "/" + CACHE_DIR) for line in lines):
        with ignore.open("a", encoding="utf-8") as handle:
            if lines and lines[-1].strip():
                handle.write("\n")
            handle.write(f"# assetgen's local cache\n{CACHE_DIR}/\n")
    click.echo(f"Wrote {path} and added {CACHE_DIR}/ to {ignore}. Next: assetgen plan")


def main() -> None:
    try:
        cli(prog_name="assetgen")
    finally:
        # The interpreter's final garbage collection walks every object still alive: 0.4 s after
        # loading 10,000 targets, for nothing (the process is ending). Frozen objects are skipped, so
        # a reference cycle with a finalizer would not be finalized: assetgen closes what it opens
        # itself (with-blocks, aclose) rather than leaving it to finalizers. atexit still runs.
        freeze_heap()

"""The ``assetgen`` command: parse, wire up, call the library, turn ``AssetgenError`` into exit codes.

Thin on purpose: what a command decides is the library's (``commands``, ``engine``), how it runs in a
terminal is ``runtime``'s, and what it prints is ``rendering``'s and ``reporters``'.

Exit codes: 0 success; 1 a build or check failed; 2 usage, manifest or configuration errors; 130 a second
Ctrl-C; 143 / 129 SIGTERM / SIGHUP (128 + the signal's number, as shells report them).
"""

from __future__ import annotations

from gc import freeze as freeze_heap   # (`gc` is the name of a command below)
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .. import catalog
from ..commands import DEFAULT_SETTLE
from ..engine.events import PlainReporter, money, usd
from ..engine.project import CACHE_DIR, Project, acquire_build_lock
from ..errors import AssetgenError, ManifestError
from .money import ask_first_build, build_money_line, confirm_on_terminal
from .reporters import render_markdown, render_plan, render_summary
from .rendering import explain_lines, gc_lines, models_lines
from .runtime import OUTPUT, WAITING, Context, build_reporter, echo_err, run_interruptible, run_watch, warn_limits

if TYPE_CHECKING:
    from ..engine.plan import Plan
    from ..engine.scheduler import BuildReport, Controller

# The build machinery (asyncio, httpx, Pillow, watchfiles) is imported inside the commands that use
# it: `plan` on a big manifest should not pay for it.


F = TypeVar("F", bound=Callable[..., Any])


# -- shell completion: names from the manifest the command would use (loaded quietly; never an error) --

def _completion_manifest(ctx: click.Context) -> str | None:
    """The manifest a command being completed would open: -f (either side), ASSETGEN_FILE, else the search."""
    from .discovery import ENV_VAR, find_manifest

    for c in [ctx, *_parents(ctx)]:
        if isinstance(c.obj, Context) and c.obj.requested:
            return c.obj.requested
        if c.params.get("file"):
            return str(c.params["file"])
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        return find_manifest()
    except AssetgenError:
        return None


def _parents(ctx: click.Context) -> list[click.Context]:
    found = []
    while ctx.parent is not None:
        ctx = ctx.parent
        found.append(ctx)
    return found


def _complete_targets(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ..commands.completion import complete_targets, quietly

    return quietly(lambda: complete_targets(_completion_manifest(ctx), incomplete))


def _complete_tags(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ..commands.completion import complete_tags, quietly

    return quietly(lambda: complete_tags(_completion_manifest(ctx), incomplete))


def _complete_profiles(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ..commands.completion import complete_profiles, quietly

    return quietly(lambda: complete_profiles(_completion_manifest(ctx), incomplete))


def _complete_models(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from ..commands.completion import complete_models, quietly

    return quietly(complete_models, incomplete)


def profile_option(command: F) -> F:
    return click.option("--profile", metavar="NAME", shell_complete=_complete_profiles,
                        help="Apply [profiles.NAME] (e.g. cheap drafts); its outputs and lock are its own.")(command)


def tag_option(command: F) -> F:
    return click.option("--tag", "tags", multiple=True, metavar="TAG", shell_complete=_complete_tags,
                        help="Also select the targets tagged TAG (repeatable: any of them).")(command)


def remote_option(command: F) -> F:
    return click.option("--no-remote", "no_remote", is_flag=True,
                        help="Ignore [cache] remote: local cache only.")(command)


# What a broken manifest stopped: only the commands that build say "nothing was built".
_NOT_DONE = {"build": "nothing was built", "watch": "nothing was built", "plan": "no plan was made",
             "explain": "nothing to explain until it is fixed"}


def _fail(exc: AssetgenError, command: str | None = None) -> None:
    error = click.style("Error:", fg="red", bold=True) if OUTPUT.colored(sys.stderr) else "Error:"
    if isinstance(exc, ManifestError):
        echo_err(f"{error} {exc.render(_NOT_DONE.get(command or '', 'nothing was changed'))}")
    else:
        echo_err(f"{error} {exc}")
    sys.exit(exc.exit_code)


def _file_after_command(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:          # `assetgen plan -f x.toml`: as `assetgen -f x.toml plan`
        ctx.ensure_object(Context).requested = value


def _set_color(ctx: click.Context, param: click.Parameter, value: bool | None) -> None:
    if value is not None and not ctx.resilient_parsing:
        OUTPUT.color = value


def _set_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        OUTPUT.verbosity = -1


def _also_quiet(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    """A command's own -q (build's: only failures and the summary) is the global one too: no warnings."""
    _set_quiet(ctx, param, value)
    return value


def _set_verbose(ctx: click.Context, param: click.Parameter, value: int) -> None:
    if value and not ctx.resilient_parsing:
        OUTPUT.verbosity = max(OUTPUT.verbosity, 0) + value


def output_options() -> list[click.Option]:
    """--color/--no-color, -q/--quiet, -v/--verbose: the group's and every command's (either side of it)."""
    return [click.Option(["--color/--no-color"], default=None, expose_value=False, callback=_set_color,
                         help="Colour the output [default: on a terminal, unless NO_COLOR is set]."),
            click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_set_quiet,
                         help="Print only results and errors: no warnings or notes."),
            click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_set_verbose,
                         help="Say more: which manifest (and profile) a command opened, with its target count.")]


_TARGET_ARGUMENTS = {"targets", "target"}


class _Group(click.Group):
    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        OUTPUT.reset()           # each invocation starts from the defaults (a test process runs many)
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AssetgenError as exc:
            _fail(exc, ctx.invoked_subcommand)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Every command also takes -f/--file after its name (git-style tools accept it on either side), the
        output options, and completes its TARGET arguments with the manifest's target names."""
        taken = {opt for p in cmd.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
        if not {"-f", "--file"} & taken:
            cmd.params.append(click.Option(["-f", "--file"], metavar="PATH", expose_value=False,
                                           callback=_file_after_command, help="The manifest (as before the command)."))
        cmd.params.extend(o for o in output_options() if not set(o.opts + o.secondary_opts) & taken)
        for param in cmd.params:
            if isinstance(param, click.Argument) and param.name in _TARGET_ARGUMENTS \
                    and param._custom_shell_complete is None:      # (click's attribute for shell_complete=)
                param._custom_shell_complete = _complete_targets
        super().add_command(cmd, name)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-f", "--file", "file", envvar="ASSETGEN_FILE", show_envvar=True, metavar="PATH",
              help="The manifest [default: the nearest assets.toml in this folder or above].")
@click.version_option(package_name="assetgen-build", prog_name="assetgen")
@click.pass_context
def cli(ctx: click.Context, file: str | None) -> None:
    """Declare AI-generated images once; build only what changed; never pay twice."""
    ctx.obj = Context(file)


cli.params.extend(output_options())


# -- plan -------------------------------------------------------------------------------------------

@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]),
              help="Output format (markdown: a table for a pull-request comment) [default: text].")
@click.option("--check", is_flag=True, help="Exit 1 if anything is stale (for CI).")
@click.option("--approved", "need_approved", is_flag=True,
              help="With --check: also exit 1 if any target's art is not approved as it stands.")
@click.option("--offline", is_flag=True, default=None, help="Plan an offline build (placeholders count as built).")
@click.option("--all", "list_all", is_flag=True, help="List every target, with each matrix row on its own line.")
@click.option("--batch", is_flag=True, help="Price Gemini, OpenAI targets as `build --batch` would (half price).")
@tag_option
@profile_option
@remote_option
@click.pass_obj
def plan(obj: Context, targets: tuple[str, ...], as_json: bool, fmt: str | None, check: bool, need_approved: bool,
         offline: bool | None, list_all: bool, batch: bool, tags: tuple[str, ...], profile: str | None,
         no_remote: bool) -> None:
    """Show what a build would do, why, and what it would cost. Never calls the gateway."""
    from ..engine.plan import batch_prices
    from ..commands.spend import money_check
    from .money import plan_money_lines

    if as_json and fmt not in (None, "json"):
        raise click.UsageError(f"--json and --format {fmt} ask for two outputs: use one of them "
                               f"(--json is --format json)")
    project = obj.project(profile, remote=not no_remote)
    warn_limits(project)
    try:
        result = project.plan(project.manifest.selection(targets, tags), offline=offline or None)
        if batch and not result.offline:
            batch_prices(result)
        money_facts = money_check(project, result, offline=project.is_offline(offline or None))
        sheets = sheet_lines(project, result)
    finally:
        project.close()
    if as_json or fmt == "json":
        click.echo(json.dumps({**result.to_json(), "money": money_facts.to_json()}, indent=2))
    elif fmt == "markdown":
        click.echo(render_markdown(result), nl=False)
    else:
        click.echo(render_plan(result, list_all=list_all))
        for line in sheets:
            click.echo(line)
        for line in plan_money_lines(money_facts):
            click.echo(line)
    if check and money_facts.refused:
        click.echo("Error: `assetgen build` would refuse this build (see the budget and limits above); "
                   "nothing would be submitted", err=True)
    if check and need_approved and result.unapproved:
        from .rendering import unapproved_lines
        for line in unapproved_lines(result):
            click.echo(line, err=True)
        sys.exit(1)
    if check and (result.stale or any("stale" in line for line in sheets)):
        sys.exit(1)


def sheet_lines(project: Any, result: Any) -> list[str]:
    """One line per ``[sheets.*]``: up to date, or stale and why (``engine.sheets``)."""
    if not project.manifest.sheets:
        return []
    from ..engine.sheets import sheet_states

    return [f"  sheet {s.name}: " + (f"stale ({s.why}); the next build remakes it, free" if s.stale else "up to date")
            for s in sheet_states(project, result)]


# -- build ------------------------------------------------------------------------------------------

@cli.command(name="build")
@click.argument("targets", nargs=-1)
@click.option("--dry-run", is_flag=True, help="Show the plan and build nothing (same as `plan`).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), help="Tasks in flight at once [default: settings.jobs].")
@click.option("--budget", type=click.FloatRange(min=0), help="Refuse a build whose estimate exceeds USD.")
@click.option("--keep-going", is_flag=True, help="Go on with other targets after one fails.")
@click.option("--force", is_flag=True, help="Replace outputs that were modified by hand.")
@click.option("--offline", is_flag=True, default=None, help="Render placeholders locally; costs nothing.")
@click.option("-q", "--quiet", is_flag=True, callback=_also_quiet,
              help="Print only failures and the summary: no progress, warnings or notes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for scripts).")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache (.assetgen/).")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before spending more than [settings] confirm_over.")
@click.option("--retry-uncertain", "retry_uncertain", is_flag=True,
              help="Submit again the uncertain targets (all, or the TARGETs named): an earlier submission "
                   "of theirs may have been paid for, so this may pay twice.")
@tag_option
@click.option("--batch", is_flag=True, help="Send Gemini and OpenAI targets in batch jobs (half price; results in "
                                            "minutes to hours; Ctrl-C leaves it for the next build to collect).")
@click.option("--no-wait", "no_wait", is_flag=True, help="With --batch: create and journal the batch jobs, print "
                                                         "their names and exit; `assetgen build` collects them.")
@profile_option
@remote_option
@click.pass_obj
def build_cmd(obj: Context, targets: tuple[str, ...], dry_run: bool, jobs: int | None, budget: float | None,
              keep_going: bool, force: bool, offline: bool | None, quiet: bool, as_json: bool, wait: float,
              retry_uncertain: bool, batch: bool, tags: tuple[str, ...], profile: str | None,
              no_remote: bool, yes: bool = False, no_wait: bool = False) -> None:
    """Build stale targets (and what they depend on)."""
    from ..commands.build import BuildOptions, build, make_provider

    quiet = quiet or OUTPUT.verbosity < 0
    if dry_run and as_json:
        raise click.UsageError("--dry-run prints the plan as text and --json the build's result: for the plan as "
                               "JSON use `assetgen plan --json`")
    if no_wait and not batch:
        raise click.UsageError("--no-wait only applies to --batch (a batch job can be collected later; a sync call "
                               "or a gateway task is waited for): use `assetgen build --batch --no-wait`")

    project = obj.project(profile, remote=not no_remote)
    warn_limits(project)
    targets = project.manifest.selection(targets, tags)
    if not dry_run:
        project.sweep_temporaries()
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
                           jobs=jobs, budget=budget, lock_timeout=wait, retry_uncertain=retry, batch=batch,
                           no_wait=no_wait)
    provider = make_provider(project, offline=project.is_offline(options.offline), batch=batch,
                             no_wait=no_wait)   # no key: exit 2
    live = not (quiet or as_json) and sys.stdout.isatty()
    stream = sys.stderr if as_json else sys.stdout
    reporter = build_reporter(quiet=quiet, as_json=as_json, live=live, stream=stream)

    def on_plan(p: Plan) -> None:
        if not (quiet or as_json) and p.stale:
            cost = f", estimated {money(p.total_cost)}" if p.total_cost else ""
            click.echo(f"Building {len(p.stale)} of {len(p.items)} targets{cost}.", file=stream)
        if live and p.stale:
            reporter.start(len(p.stale))

    async def main(controller: Controller) -> BuildReport:
        try:
            return await build(project, options, reporter=reporter, provider=provider, controller=controller,
                               on_wait=lambda: click.echo(WAITING, err=True), on_plan=on_plan,
                               confirm=None if yes or as_json else confirm_on_terminal(project))
        finally:
            reporter.close() if hasattr(reporter, "close") else None

    try:
        report = run_interruptible(main)
    finally:
        project.close()
    if not as_json and not project.is_offline(options.offline):
        click.echo(build_money_line(report, project), file=stream)
    _print_report(report, as_json, stream)


def _print_report(report: BuildReport, as_json: bool, stream: Any) -> None:
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(render_summary(report), file=stream)
        if report.sheets:
            click.echo(f"Sheets made: {', '.join(report.sheets)} (free)", file=stream)
        for failure in report.failed:
            click.echo(f"  {failure.name}: {failure.status}: {failure.message}", err=True)
        for problem in report.problems:
            click.echo(f"Error: {problem}", err=True)
    sys.exit(report.exit_code)


# -- export -----------------------------------------------------------------------------------------

@cli.command(name="export")
@click.option("--format", "fmt", type=click.Choice(["json", "ts", "gdscript"]), required=True,
              help="json: a sorted list; ts: a typed `assets` object; gdscript: a `const ASSETS` dictionary.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write here (only if the content changed) [default: print it].")
@click.option("--res-root", type=click.Path(file_okay=False, path_type=Path),
              help="gdscript: the Godot project's folder, for res:// paths [default: the manifest's folder].")
@click.pass_obj
def export_cmd(obj: Context, fmt: str, output: Path | None, res_root: Path | None) -> None:
    """Write an index of the built outputs (path, size, format, alt text, tags) for web or game code."""
    from ..commands.export import collect, render, write_if_changed

    with obj.opened() as project:
        index = collect(project)
        text = render(index, fmt, root=project.root, res_root=res_root)
    for target, why in index.skipped:
        click.echo(f"Skipped {target}: {why}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        changed = write_if_changed(output, text)
        click.echo(f"{'Wrote' if changed else 'Unchanged:'} {output} ({len(index.outputs)} outputs)", err=True)


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
@tag_option
@click.option("-y", "--yes", is_flag=True, help="Do not ask before the first build spends more than confirm_over.")
@profile_option
@remote_option
@click.pass_obj
def watch(obj: Context, targets: tuple[str, ...], settle: float, budget: float | None, offline: bool | None,
          jobs: int | None, wait: float, with_gallery: bool, tags: tuple[str, ...], profile: str | None,
          no_remote: bool, yes: bool = False) -> None:
    """Build, then rebuild what changes whenever the manifest or a reference file is saved."""
    from ..commands.build import make_provider
    from ..commands.watch import WatchOptions, Watcher

    path = Path(obj.file)
    if not path.exists():
        raise AssetgenError(f"{path} not found; run `assetgen init` to write a starter manifest")
    try:
        project: Project | None = Project.open(path, profile=profile)
    except AssetgenError:
        project = None                            # shown by the watch's first build, which then waits for a fix
    if tags:            # resolved once: the tags as the session starts
        targets = Project.open(path, profile=profile).manifest.selection(targets, tags) if project is None \
            else project.manifest.selection(targets, tags)
    offline_now = project.is_offline(offline or None) if project is not None else bool(offline)
    provider = make_provider(project, offline=offline_now)
    if project is not None and not offline_now and not yes:
        ask_first_build(project, targets)
    if project is not None:
        project.close()
    lock = acquire_build_lock(path.resolve(), timeout=wait, on_wait=lambda: click.echo(WAITING, err=True))
    options = WatchOptions(targets=targets, offline=offline_now, settle=settle, budget=budget, jobs=jobs,
                           profile=profile, use_remote=not no_remote)
    reporter: Any = PlainReporter()
    server = None
    if with_gallery:
        from ..review.live import LiveGallery

        from ..commands.review import gallery_actions

        gallery_dir = path.resolve().parent / CACHE_DIR / "gallery"
        # Verdicts go through the watcher (created below) onto its event loop: see ``Watcher.call``.
        server = LiveGallery(gallery_dir, project, gallery_actions(path, gallery_dir, profile=profile,
                                                                   in_watch=lambda fn: watcher.call(fn)))
        reporter = server.reporter(reporter)
        click.echo(f"Gallery: {server.start()}")
    watcher = Watcher(path, provider, options, reporter=reporter, echo=click.echo)
    if server is not None:
        watcher.after_build = server.refresh
    click.echo(f"Watching {path} (settle {settle:g} s{', offline' if offline_now else ''}). Ctrl-C to stop.")

    try:
        stopped_by = run_watch(watcher)
    finally:
        lock.release()
        if server is not None:
            server.stop()
    in_flight = len(list((path.parent / CACHE_DIR / "journal").glob("*.json")))
    note = (f" {in_flight} task(s) in flight stay in the journal; the next build or watch collects them "
            f"without paying again." if in_flight else "")
    click.echo(f"Stopped watching. Session spent {usd(watcher.session.spent)}.{note}")
    if stopped_by is not None:
        sys.exit(128 + stopped_by)


# -- spend ------------------------------------------------------------------------------------------

@cli.command()
@click.option("--by", type=click.Choice(["day", "model", "target", "profile", "person"]), default="day",
              show_default=True, help="Group the table by this.")
@click.option("--since", metavar="YYYY-MM-DD", help="From this day on (UTC).")
@click.option("--until", metavar="YYYY-MM-DD", help="Up to this day, included (UTC).")
@click.option("--month", metavar="YYYY-MM", help="Only this month (UTC); 'this' for the current one.")
@click.option("--json", "as_json", is_flag=True, help="Print the totals and rows as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the rows as CSV.")
@click.option("--team", is_flag=True, help="Add every other machine's entries from the remote cache's ledger.")
@click.pass_obj
def spend(obj: Context, by: str, since: str | None, until: str | None, month: str | None, as_json: bool,
          as_csv: bool, team: bool = False) -> None:
    """What was spent on this project (every manifest sharing .assetgen/), from the ledger."""
    from ..commands.spend import spend as spend_report
    from .money import spend_csv, spend_json, spend_text

    if as_json and as_csv:
        raise click.UsageError("--json and --csv ask for two outputs: use one of them")

    path = Path(obj.file_or_here)
    project = None
    if path.exists():
        try:
            project = Project.open(path)
        except AssetgenError:
            project = None                     # the ledger is still readable without a valid manifest
    report = spend_report(path, by=by, since=since, until=until, month=month, project=project, team=team)
    click.echo(spend_json(report) if as_json else spend_csv(report) if as_csv else spend_text(report),
               nl=not as_csv)


@cli.command()
@click.argument("target")
@profile_option
@click.pass_obj
def history(obj: Context, target: str, profile: str | None) -> None:
    """Every generation of TARGET the ledger knows: when, what changed, cost, still cached."""
    from ..commands.history import history as generations
    from .money import history_lines

    with obj.opened(profile) as project:
        click.echo("\n".join(history_lines(target, generations(project, target))))


@cli.command()
@click.argument("target")
@click.argument("number", type=int)
@profile_option
@click.pass_obj
def restore(obj: Context, target: str, number: int, profile: str | None) -> None:
    """Write generation NUMBER's spec of TARGET into the manifest and put its outputs back (free)."""
    from ..commands.history import restore as restore_generation

    done = restore_generation(Path(obj.file), target, number, profile=profile)
    fields = ", ".join(done.written) or "no field (the manifest already had them)"
    click.echo(f"{target}: generation {number} ({done.generation.time[:19]}) written back: {fields}.")
    if done.applied:
        click.echo("Restored its outputs from the cache; nothing was paid.")
    else:
        click.echo(f"Not restored: {done.note}.")
        sys.exit(1)


# -- models, explain, gc, init ----------------------------------------------------------------------

@cli.command()
@click.argument("model_ids", nargs=-1, metavar="[MODEL]...", shell_complete=_complete_models)
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def models(model_ids: tuple[str, ...], as_json: bool) -> None:
    """Every provider's models (or the MODELs named): ids, prices, sizes, what a crash can cost."""
    every = [m for provider in catalog.CHANNELS for m in catalog.MODELS_OF[provider]
             if not model_ids or m.id in model_ids]
    unknown = [m for m in model_ids if m not in {x.id for p in catalog.CHANNELS for x in catalog.MODELS_OF[p]}]
    if unknown:
        raise click.BadParameter(f"no such model: {', '.join(unknown)} (`assetgen models` lists them)",
                                 param_hint="MODEL")
    if as_json:
        click.echo(json.dumps([{**vars(m), "auth": list(catalog.PROVIDERS[m.provider].key_envs),
                                "submission": catalog.PROVIDERS[m.provider].submission,
                                "crash_cost": catalog.PROVIDERS[m.provider].crash_cost} for m in every], indent=2))
        return
    for line in models_lines(every):
        click.echo(line)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (bash, zsh or fish); see the README's Shell completion."""
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)
    assert complete is not None                     # (the three shells click ships)
    click.echo(complete(cli, {}, "assetgen", "_ASSETGEN_COMPLETE").source())


@cli.command()
@click.option("--check", "check_files", is_flag=True,
              help="Instead: validate the manifests FILEs [default: the manifest] (exit 2 naming field and line).")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.pass_obj
def schema(obj: Context, check_files: bool, files: tuple[str, ...]) -> None:
    """The JSON Schema of assets.toml (for editors: completion, hover docs; see the README's Editor support)."""
    if check_files:
        from ..manifest.loader import load

        for file in files or (obj.file,):       # the checks the schema is generated from, with lines
            click.echo(f"{file}: valid ({len(load(file).targets)} targets)")
        return
    if files:
        raise click.UsageError("FILEs are for --check (`assetgen schema --check assets.toml`)")
    from ..manifest.schema import json_schema_text

    click.echo(json_schema_text(), nl=False)


@cli.command()
@click.argument("targets", nargs=-1)
@tag_option
@profile_option
@click.pass_obj
def explain(obj: Context, targets: tuple[str, ...], tags: tuple[str, ...], profile: str | None) -> None:
    """A target's key, the inputs that made it, and what differs from the lock (names, globs, --tag)."""
    if not (targets or tags):
        raise click.UsageError("name a target (a glob such as 'icon.*' or --tag TAG selects several)")
    with obj.opened(profile) as project:
        names = project.manifest.expand(project.manifest.selection(targets, tags))
        plan = project.plan(names)
    for item in (i for i in plan.items if i.name in names):
        for line in explain_lines(item):
            click.echo(line)


# -- fmt, lint: migration help (issue 17) -----------------------------------------------------------

@cli.command(name="fmt")
@click.argument("paths", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Change nothing; exit 1 if a file is not formatted (for CI).")
@click.option("--diff", "show_diff", is_flag=True, help="Change nothing; print what would change.")
@click.pass_obj
def fmt_cmd(obj: Context, paths: tuple[Path, ...], check: bool, show_diff: bool) -> None:
    """Normalise the layout of the manifest (or PATHs): comments kept, keys never change."""
    from ..commands.fmt import format_file

    results = [format_file(p, write=not (check or show_diff)) for p in paths or (Path(obj.file),)]
    for result in results:
        if show_diff and result.changed:
            click.echo(result.diff(), nl=False)
        elif check and result.changed:
            click.echo(f"would reformat {result.path}", err=True)
        elif result.changed:
            click.echo(f"reformatted {result.path}")
    unchanged = sum(1 for r in results if not r.changed)
    if unchanged and not show_diff:
        click.echo(f"{unchanged} file{'s' if unchanged != 1 else ''} already formatted", err=check)
    if check and any(r.changed for r in results):
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the suggestions as JSON.")
@click.option("--min-targets", type=click.IntRange(min=2), default=3, show_default=True,
              help="Suggest a style only for a pattern on at least this many targets.")
@click.pass_obj
def lint(obj: Context, as_json: bool, min_targets: int) -> None:
    """Suggest styles and output sets for repeated fields, prompt fragments and output rows (changes nothing)."""
    from ..commands.lint import lint_file, render

    suggestions = lint_file(Path(obj.file), min_targets=min_targets)
    if as_json:
        click.echo(json.dumps({"manifest": obj.file, "suggestions": [s.to_json() for s in suggestions]}, indent=2))
        return
    for line in render(suggestions, obj.file):
        click.echo(line)


# -- gallery ----------------------------------------------------------------------------------------

@cli.command()
@click.option("-o", "--output", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the gallery to [default: .assetgen/gallery].")
@click.option("--open", "open_it", is_flag=True, help="Open it in a web browser.")
@click.argument("targets", nargs=-1)
@tag_option
@profile_option
@click.pass_obj
def gallery(obj: Context, out_dir: Path | None, open_it: bool, targets: tuple[str, ...], tags: tuple[str, ...],
            profile: str | None) -> None:
    """Write a self-contained HTML gallery of every target, or those selected (opens from disk, no server)."""
    from ..review.page import write_gallery

    with obj.opened(profile, remote=False) as project:
        selected = project.manifest.selection(targets, tags)
        index = write_gallery(project, out_dir=out_dir, plan=project.plan(selected) if selected else None)
    click.echo(str(index))
    if open_it:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())


@cli.command(name="review")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=0, help="Port [default: any free one].")
@profile_option
@click.pass_obj
def review_cmd(obj: Context, port: int, profile: str | None) -> None:
    """Serve the gallery on 127.0.0.1 with Approve / Reject / Pick / Reroll buttons, until Ctrl-C."""
    import time

    from ..commands.review import gallery_actions
    from ..review.page import write_gallery
    from ..review.server import GalleryServer

    path = Path(obj.file)
    with obj.opened(profile, remote=False) as project:
        gallery_dir = project.cache_dir / "gallery"
        write_gallery(project, out_dir=gallery_dir, live=True)
    server = GalleryServer(gallery_dir, port=port, actions=gallery_actions(path, gallery_dir, profile=profile))
    click.echo(f"Reviewing at {server.start()} (127.0.0.1 only). Ctrl-C to stop.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    click.echo("Stopped reviewing.")


# -- push, pull -------------------------------------------------------------------------------------

@cli.command()
@click.pass_obj
def push(obj: Context) -> None:
    """Upload the images of every locked target to the remote cache."""
    from ..commands.sync import push as do_push

    with obj.opened() as project:
        sent, already = do_push(project)
    click.echo(f"Pushed {sent} generation(s) to {project.remote.display_url if project.remote else '?'}; "
               f"{already} were there already.")


@cli.command()
@click.pass_obj
def pull(obj: Context) -> None:
    """Download the images of every locked target from the remote cache into the local cache."""
    from ..commands.sync import pull as do_pull

    with obj.opened() as project:
        got, missing = do_pull(project)
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

    with obj.opened(profile) as project:
        click.echo(str(write_contact_sheet(project, target, output)))


# -- approve, unapprove, reject ----------------------------------------------------------------------

def _review(obj: Context, targets: tuple[str, ...], tags: tuple[str, ...], verdict: str | None, note: str,
            profile: str | None, wait: float) -> None:
    from ..commands.review import set_verdict

    done = set_verdict(Path(obj.file), list(targets), verdict, tags=tags, note=note, profile=profile,
                       timeout=wait)
    verb = {"approved": "Approved", "rejected": "Rejected", None: "Withdrew the verdict on"}[verdict]
    for item in done:
        click.echo(f"{verb} {item.name}" + (f": {', '.join(item.outputs)}" if verdict else ""))


def review_options(command: F) -> F:
    command = click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
                           help="Seconds to wait for a running build, watch or gc that uses this cache.")(command)
    return profile_option(tag_option(click.argument("targets", nargs=-1)(command)))


@cli.command()
@review_options
@click.option("--note", default="", help="Why (kept with the verdict).")
@click.pass_obj
def approve(obj: Context, targets: tuple[str, ...], tags: tuple[str, ...], profile: str | None, wait: float,
            note: str) -> None:
    """Approve TARGETs' outputs as they are now (the verdict lapses when they change)."""
    _review(obj, targets, tags, "approved", note, profile, wait)


@cli.command()
@review_options
@click.pass_obj
def unapprove(obj: Context, targets: tuple[str, ...], tags: tuple[str, ...], profile: str | None,
              wait: float) -> None:
    """Withdraw the verdict on TARGETs: they need review again."""
    _review(obj, targets, tags, None, "", profile, wait)


@cli.command()
@review_options
@click.option("--note", required=True, help="What is wrong (kept with the verdict).")
@click.pass_obj
def reject(obj: Context, targets: tuple[str, ...], tags: tuple[str, ...], profile: str | None, wait: float,
           note: str) -> None:
    """Reject TARGETs' outputs as they are now, saying why."""
    _review(obj, targets, tags, "rejected", note, profile, wait)


# -- adopt ------------------------------------------------------------------------------------------

@cli.command()
@click.argument("targets", nargs=-1)
@click.option("--all-modified", is_flag=True, help="Adopt every target with an output modified by hand.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache.")
@tag_option
@profile_option
@click.pass_obj
def adopt(obj: Context, targets: tuple[str, ...], all_modified: bool, wait: float, tags: tuple[str, ...],
          profile: str | None) -> None:
    """Take TARGETs' files on disk (a retouch) as their outputs for the current spec. Pays nothing."""
    from ..commands.adopt import adopt_command

    done = adopt_command(Path(obj.file), list(targets), all_modified=all_modified, profile=profile,
                         timeout=wait, tags=tags)
    if not done:
        click.echo("No output is modified by hand: nothing to adopt.")
    for item in done:
        what = f"{len(item.changed)} retouched" if item.changed else "as generated"
        spec = " for the new spec" if item.spec_changed else ""
        click.echo(f"Adopted {item.name}{spec}: {', '.join(item.outputs)} ({what}).")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@click.option("--force", is_flag=True, help="Also delete orphaned outputs that were modified by hand.")
@click.option("--wait", "wait", type=click.FloatRange(min=0), default=600.0, show_default=True,
              help="Seconds to wait for a running build, watch or gc that uses this cache.")
@profile_option
@click.pass_obj
def prune(obj: Context, dry_run: bool, force: bool, wait: float, profile: str | None) -> None:
    """Delete the outputs of targets removed from the manifest (never a retouch without --force)."""
    from ..commands.prune import prune as do_prune

    report = do_prune(Path(obj.file), dry_run=dry_run, force=force, profile=profile, timeout=wait)
    verb = "Would delete" if dry_run else "Deleted"
    for orphan in report.deleted:
        click.echo(f"{verb} {orphan.path} ({orphan.target}, removed from the manifest)")
    for orphan in report.kept:
        click.echo(f"Kept {orphan.path} ({orphan.target}): modified by hand; `assetgen prune --force` deletes it")
    if not (report.deleted or report.kept):
        click.echo("No outputs of removed targets: nothing to prune.")
    elif report.deleted and not dry_run:
        click.echo("Their images stay in the cache until `assetgen gc`.")


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

    with obj.opened() as project:
        report = collect(project, GcOptions(dry_run=dry_run, grace=grace, forget_missing=forget_missing,
                                            wait=wait),
                         on_wait=lambda: click.echo("A build, watch or gc using this cache is running; "
                                                    "waiting for it to finish…", err=True))
    for line in gc_lines(report):
        click.echo(line)


@cli.command(name="merge-lock")
@click.argument("base", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("ours", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("theirs", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("path", required=False, default="assets.lock")
def merge_lock(base: Path, ours: Path, theirs: Path, path: str) -> None:
    """Git merge driver for the lock: merge THEIRS into OURS against BASE, target by target (exit 1: conflict).

    Registered by `assetgen init` in .gitattributes; enable it once per clone with
    git config merge.assetgen-lock.driver "assetgen merge-lock %O %A %B %P"
    """
    from ..commands.merge_lock import conflict_help, merge_locks, targets_count

    result = merge_locks(base, ours, theirs, shown=path)
    if result.conflicts:
        for line in conflict_help(result, path):
            echo_err(line)
        sys.exit(1)
    if OUTPUT.verbosity > 0:
        echo_err(f"{path}: merged {targets_count(result.merged)}; {len(result.taken_theirs)} from their side.")


@cli.command()
@click.option("--force", is_flag=True, help="Overwrite an existing manifest.")
@click.pass_obj
def init(obj: Context, force: bool) -> None:
    """Write a commented starter assets.toml and ignore .assetgen/ in git."""
    path = Path(obj.requested or "assets.toml")     # here, never a manifest found further up
    if path.exists() and not force:
        raise click.UsageError(f"{path} already exists (use --force to overwrite it)")
    from ..commands.init import init as do_init

    from ..commands.init import in_git_work_tree
    from ..commands.merge_lock import DRIVER_CONFIG

    ignore = do_init(path)
    enable = f" (enable it in this clone: {DRIVER_CONFIG})" if in_git_work_tree(ignore.parent) else ""
    click.echo(f"Wrote {path}, added {CACHE_DIR}/ to {ignore} and the lock's merge driver to "
               f"{ignore.with_name('.gitattributes')}{enable}. Next: assetgen plan")


def main() -> None:
    try:
        cli(prog_name="assetgen")
    finally:
        # The interpreter's final garbage collection walks every object still alive: 0.4 s after
        # loading 10,000 targets, for nothing (the process is ending). Frozen objects are skipped, so
        # a reference cycle with a finalizer would not be finalized: assetgen closes what it opens
        # itself (with-blocks, aclose) rather than leaving it to finalizers. atexit still runs.
        freeze_heap()

"""The `regend` typer app: thin commands over agent, dryrun and quarantine (the edge).

The environment is read here and nowhere deeper (R12):
  REGEND_CONFIG            default for --config (else /etc/regen/regend.toml)
No test switch is read: the tests run regend through tests/regend_harness.py, which installs its
substitutes (a FakeProbe, a crash hook) in-process (oneshot.Substitutes).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from regen.daemon import oneshot, render
from regen.daemon.config import DEFAULT_PATH, DaemonConfig
from regen.daemon.errors import UsageError
from regen.store.errors import EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, RegenError, exit_status


class RegendGroup(TyperGroup):
    """Every RegenError and click usage error -> one line on stderr and its exit status."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, windows_expand_args: bool = True,
             **extra: Any) -> Any:
        try:
            rv = super().main(args, prog_name or "regend", complete_var, standalone_mode=False,
                              windows_expand_args=windows_expand_args, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except RegenError as exc:
            render.error(exc)
            code = exit_status(exc)
        except typer.Abort:
            code = EXIT_FAILED
        except Exception as exc:  # click's usage errors (exit 2)
            code = exit_status(exc)
            if code == EXIT_INTERNAL:  # not click's: a bug, for __main__'s last-resort handler
                raise
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()  # type: ignore[attr-defined]
            else:
                ctx = getattr(exc, "ctx", None)
                render.usage_error(exc.format_message(), ctx.command_path if ctx is not None else "regend")  # type: ignore[attr-defined]
        if code == EXIT_INTERRUPTED:
            render.interrupted()
        if standalone_mode:
            sys.exit(code)
        return code


# rich_markup_mode=None: help texts are shown as written (Rich markup would eat "[schedule]")
app = typer.Typer(cls=RegendGroup, name="regend", no_args_is_help=True, pretty_exceptions_show_locals=False,
                  rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})

# (long only: -c means --channel in regen, one meaning per short option across both tools)
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="regend.toml (default: $REGEND_CONFIG "
                                                   f"or {DEFAULT_PATH})", dir_okay=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _version(value: bool) -> None:
    if value:
        from regen.store import about

        sys.stdout.write(about.version_line("regend") + "\n")
        raise typer.Exit(0)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and the store formats it reads, then exit.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging to stderr (also REGEN_DEBUG=1).")]
    = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Errors only: no warnings, no summary line.")] = False,
) -> None:
    """Keep this machine identical to its channel's signed generation: diagnose the hardware, install,
    repair drift, update, and report to the store.

    Exit status: 0 ok (the machine may start its software); 1 the run failed (the next run resumes);
    2 usage error or bad configuration; 3 quarantined (the machine must not start); 10/11/12 the
    machine may start, but the store was unreachable / this client is misconfigured for it / the
    store is damaged; 70 internal error; 128+N ended by signal N.
    """
    ctx.obj = {"quiet": quiet}
    oneshot.logging_setup(debug=verbose or bool(os.environ.get("REGEN_DEBUG")), quiet=quiet)


def _quiet(ctx: typer.Context) -> bool:
    return bool((ctx.find_root().obj or {}).get("quiet"))


def _config(path: Path | None) -> DaemonConfig:
    return oneshot.config(str(path) if path is not None else None)


@app.command()
def run(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One run (the boot run), then exit with its status.")] = False,
    verify: Annotated[bool, typer.Option("--verify", help="Hash every file, whatever its stat says.")] = False,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for another run to finish instead of failing.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> int:
    """Run the cycle: hardware, start decision, install, drift scan, repair, update, report.

    With --once: one run; exit 0 the machine may start (repairs and updates done), 1 the run
    failed (consistent; the next run resumes), 3 quarantined (must not start), 10/11/12 may start
    but the store was unreachable / misconfigured / damaged. Without: stay
    running and run on the [schedule] of the configuration, until SIGTERM (exit 0).
    """
    cfg = _config(config)
    if once:
        return oneshot.run_once(cfg, verify=verify, wait=wait, json_out=json_out, quiet=_quiet(ctx))
    from regen.daemon.run.agent import Agent, RunOptions
    from regen.daemon.schedule import run_forever

    stop = oneshot.prepare_run()
    agent = Agent(cfg, oneshot.probe(cfg), stop=stop)

    last: dict[str, float | None] = {"retry_after": None}

    def job(verify_run: bool) -> int:
        try:
            result = agent.run(RunOptions(verify=verify or verify_run, wait_lock=True))
        except RegenError as exc:
            render.error(exc)
            return exc.exit_code
        last["retry_after"] = result.retry_after
        render.run_summary(result.report, result.warnings, result.upload_error, json_out=json_out,
                           quiet=_quiet(ctx))
        return result.exit_code

    run_forever(job, cfg.schedule, cfg.host, stop, retry_after=lambda: last["retry_after"])
    return 0


@app.command()
def check(
    ctx: typer.Context,
    verify: Annotated[bool, typer.Option("--verify", help="Hash every file, whatever its stat says.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> int:
    """Dry run: the drift, the repair and a pending update a run would do now. Writes nothing
    (not even the index). Exit 0 whatever it finds; 1 only if it cannot look (a run holds the lock)."""
    return oneshot.check(_config(config), verify=verify, json_out=json_out, quiet=_quiet(ctx))


@app.command()
def status(json_out: JsonOpt = False, config: ConfigOpt = None) -> int:
    """Installed generation, last run's outcome, outbox and quarantine sizes. Exit 0."""
    from regen.daemon.run.dryrun import status as do_status

    render.status(do_status(_config(config)), json_out=json_out)
    return 0


@app.command("host-key")
def host_key_cmd(config: ConfigOpt = None) -> int:
    """Print this host's public key (made on first use in state_dir, the secret half mode 0600), for
    the admin's 'regen host enroll HOST FILE'. Exit 0; 1 if state_dir cannot hold the key."""
    from regen.daemon.run.hostid import host_key

    key = host_key(_config(config).state_dir)
    assert key is not None
    sys.stdout.write(key.public.text())
    return 0


@app.command()
def recover(
    run_id: Annotated[str | None, typer.Argument(help="A quarantine run id (see --list).")] = None,
    paths: Annotated[list[str] | None, typer.Argument(help="Paths to recover (default: all of the run).")] = None,
    list_: Annotated[bool, typer.Option("--list", help="List quarantine runs (with RUN_ID: their items).")] = False,
    to: Annotated[Path | None, typer.Option("--to", help="Copy into this directory, outside the tree.",
                                               file_okay=False)] = None,
    in_place: Annotated[bool, typer.Option("--in-place", help="Put back at their paths in the tree.")] = False,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
) -> int:
    """List what regend set aside, or put it back: --to DIR (outside the managed tree, owned by root
    or you) or --in-place (over the managed paths; the next run repairs managed paths again unless you
    add them to preserve). Owner and group are restored before the mode; where the owner cannot be,
    set-id bits are cleared (and said so). No symlink is followed."""
    from regen.daemon.tree.quarantine import Quarantine, new_run_id

    cfg = _config(config)
    q = Quarantine(cfg.state_dir)
    if list_ or run_id is None:
        if run_id is not None:
            q.items(run_id)  # RecoverError naming it when there is no such run
        runs = [r for r in q.listing() if run_id is None or r.run_id == run_id]
        items = {r.run_id: q.items(r.run_id) for r in runs} if run_id is not None or json_out else None
        render.recover_list(runs, items, json_out=json_out)
        return 0
    if (to is None) == (not in_place):
        raise UsageError("choose where to recover to: --to DIR (outside the tree) or --in-place",
                         hint="regend recover RUN_ID [PATH...] --to DIR")
    chosen = q.select(run_id, paths or [])
    from regen.daemon.tree.recover import restore_in_place, restore_to

    if to is not None:
        render.recovered(restore_to(q, chosen, str(to), root=cfg.root, preserve=cfg.preserve))
        return 0
    from regen.daemon.run.lock import RunLock
    from regen.daemon.tree.fsops import SafeRoot

    with RunLock(cfg.state_dir) as lock:
        lock.acquire()
        with SafeRoot(cfg.root) as sroot:
            render.recovered(restore_in_place(q, chosen, sroot, new_run_id()))
    render.warning("recovered in place: the next run repairs managed paths and quarantines unmanaged ones "
                   "again unless they are added to 'preserve' (or junk = \"keep\")")
    return 0


@app.command("example-config")
def example_config(
    policy: Annotated[bool, typer.Option("--policy", help="The example policy file instead (regen --policy).")]
    = False,
) -> int:
    """Print the example regend.toml, every key with its meaning (or the example policy):
    regend example-config > /etc/regen/regend.toml. Exit 0."""
    from regen.daemon.shipped import example

    sys.stdout.write(example("policy" if policy else "config"))
    return 0


@app.command("install-units")
def install_units(
    directory: Annotated[Path, typer.Option("--dir", help="Where to write the units.", file_okay=False)]
    = Path("/etc/systemd/system"),
) -> int:
    """Write regend-boot.service, regend.service and regen-protected.target with ExecStart= naming
    this installation's regend by its absolute path (a venv's regend is not on systemd's path);
    then: systemctl daemon-reload; systemctl enable regend-boot.service regen-protected.target
    regend.service. Exit 0; 2 if regend cannot be found."""
    from regen.daemon.shipped import install_units as write_units

    for path in write_units(str(directory)):
        sys.stdout.write(path + "\n")
    return 0


__all__ = ["app"]

"""The `crmsync` command line. Commands are thin: load settings, call one
function in sync/, render, return an exit code.

Exit codes: the one table is in state/errors.py (and the README):
0 done, 1 rejected rows, 2 a local problem, 3 a CRM problem, 70 a bug, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import json
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from crmsync.state.db import mirror_errors
from crmsync.state.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CrmsyncError,
    OutputError,
    UsageError,
    error_line,
)
from crmsync.state.text import printable

if TYPE_CHECKING:  # the commands load the configuration when they run
    from .config import Config

log = logging.getLogger(__name__)


def config_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config_path",
        default="sync.toml",
        show_default=True,
        type=click.Path(dir_okay=False, path_type=Path),
        help="Path of sync.toml.",
    )(f)


def crm_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--crm", type=click.Choice(["salesforce", "hubspot"]), help="Only this CRM."
    )(f)


def format_option(
    *formats: str, help: str = "table to read; json or csv for scripts and spreadsheets."
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--format` with the formats a command really prints (default: table, json, csv)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(formats or ("table", "json", "csv"))),
        default="table",
        show_default=True,
        help=help,
    )


def handles_errors(f: Callable[..., int]) -> Callable[..., None]:
    """End every command with one exit code from the one table (state/errors.py).

    A crmsync error prints one line naming the thing and the fix; Ctrl-C prints
    one line and exits 130; anything else is a bug: one line, exit 70. `-v`
    (before or after the command) adds the traceback.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = f(*args, **kwargs)
        except CrmsyncError as e:
            _fail(e, error_line(e))
            code = e.exit_code
        except KeyboardInterrupt as e:
            _fail(e, error_line(e))
            code = EXIT_INTERRUPTED
        except BrokenPipeError:
            # The reader went away (`crmsync status | head`): nothing is wrong with crmsync.
            # Point stdout at /dev/null so the interpreter's final flush stays quiet.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            code = EXIT_OK
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except Exception as e:  # a bug: say so in one line, keep the traceback for -v
            _fail(e, error_line(e))
            code = EXIT_INTERNAL
        sys.exit(code or 0)

    return wrapper


def _verbose() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("verbose") or (isinstance(ctx.obj, dict) and ctx.obj.get("verbose")):
            return True
        ctx = ctx.parent
    return False


def _fail(error: BaseException, line: str) -> None:
    if _verbose():
        click.echo("".join(traceback.format_exception(error)).rstrip(), err=True)
    click.echo(f"crmsync: {printable(line)}", err=True)


def _echo_text(text: str) -> None:
    """Print a run's summary or a plan: the CRM text in it (names, subjects, the CRM's
    messages) as text, without control or bidi characters (state/text.py)."""
    click.echo(printable(text, newlines=True))


@contextlib.contextmanager
def stop_on_signals() -> Iterator[Callable[[], bool]]:
    """Ctrl-C (SIGINT) or SIGTERM asks a one-shot run to stop at its next safe point.

    The run finishes the page or write batch in flight, commits it, records
    itself as interrupted and the command exits 130 (as the daemon stops, O7).
    A second signal stops at once (KeyboardInterrupt): the open transaction
    rolls back. Yields `should_stop`.
    """
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set  # signals reach the main thread only
        return

    def on_signal(signum: int, _frame: Any) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        log.warning(
            "%s received: stopping after the current page or batch (again to stop at once)",
            signal.Signals(signum).name,
        )

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield requested.is_set
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _load_config(path: Path) -> Config:
    from . import config

    return config.load(path)


def _setup_logs(cfg: Config | None = None, fmt: str | None = None, verbose: bool = False) -> None:
    from . import logs

    level = "DEBUG" if verbose else (cfg.daemon.log_level if cfg else "INFO")
    logs.setup(fmt or (cfg.daemon.log_format if cfg else "text"), level)
    if cfg is not None:
        from .config import warn_exposed_secret_files

        warn_exposed_secret_files(cfg)


def _parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO date or date-time (e.g. 2026-11-01 or 2026-11-01T09:00:00Z)"
        ) from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


@click.group(context_settings={"help_option_names": ["-h", "--help"]}, epilog=(
    "Exit codes: 0 done; 1 the run finished but the CRM rejected some rows; "
    "2 a local problem to fix (configuration, files, the mirror, usage); "
    "3 a CRM problem (unreachable, authentication, API quota, a refused request); "
    "70 an internal error (a bug: please report it); 130 interrupted."
))
@click.version_option(package_name="crmsync")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """crmsync keeps CRM people data honest: it mirrors Salesforce and HubSpot
    into SQLite, runs hygiene rules, and writes what it found back to the CRM."""
    ctx.obj = {"verbose": verbose}


@cli.command()
@click.option("--accounts", default=60, show_default=True, help="Accounts to seed in each CRM.")
@click.option("--seed", default=7, show_default=True, help="Seed of the generated org (same seed, same org).")
@click.option(
    "--out",
    default="demo-out",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo's sync.toml and mirror are left for inspection.",
)
@handles_errors
def demo(accounts: int, seed: int, out: Path) -> int:
    """Start both sandbox CRMs, seed them, sync, write back and report."""
    _need_sandbox("demo")
    from .demo import run_demo

    _setup_logs(fmt="text")
    logging.getLogger().setLevel(logging.WARNING)
    return run_demo(out=out, accounts=accounts, seed=seed)


# What the sandbox extra adds (pyproject.toml `[project.optional-dependencies] sandbox`).
SANDBOX_EXTRA = ("trustme", "jwt")


def _need_sandbox(command: str) -> None:
    """The sandbox CRMs are an extra a daemon does without: say how to get them."""
    missing = [m for m in SANDBOX_EXTRA if importlib.util.find_spec(m) is None]
    if missing:
        raise UsageError(
            f"`crmsync {command}` runs the sandbox CRMs, which are not installed (missing: {', '.join(missing)})",
            fix="pip install 'crmsync[sandbox]' (or `make demo` from a checkout)",
        )


@cli.command("sync")
@config_option
@crm_option
@click.option("--full", is_flag=True, help="Pull everything, not only what changed.")
@click.option("--reconcile", is_flag=True, help="Compare id sets to catch old hard deletes.")
@click.option("--pull-only", is_flag=True, help="Update the mirror only: no rules, no writes.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Preview: pull, run the rules and print the writes a sync would make, then roll "
    "everything back. Nothing is written to the CRM and nothing is stored in the mirror (no "
    "records, cursors, flags, outbox rows or run history); the pull's API calls are spent. "
    "To update the mirror without writing back, use --pull-only.",
)
@click.option("--as-of", "as_of", help="Evaluate rules as of this time (ISO), for reproducible runs.")
@click.option("--allow-empty", is_flag=True, help="With --full: accept an object the CRM returns empty (its mirror rows are marked deleted).")
@click.option("--wait/--no-wait", "wait", default=None, help="If another run holds the mirror: wait (default from [daemon] lock) or exit.")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and debug logs.")
@handles_errors
def sync_cmd(
    config_path: Path,
    crm: str | None,
    full: bool,
    reconcile: bool,
    pull_only: bool,
    dry_run: bool,
    as_of: str | None,
    allow_empty: bool,
    wait: bool | None,
    verbose: bool,
) -> int:
    """One run: pull (incremental unless --full), rules, write-back.

    Write-back needs crmsync's fields in the CRM: if any is missing the run
    stores what it pulled and found, queues no write, names the fields and
    exits 3 (run `crmsync setup`). Writes the CRM refused stay in the outbox
    (exit 1): see `crmsync outbox`.
    """
    from .run import RunOptions, run_all

    cfg = _load_config(config_path)
    _setup_logs(cfg, verbose=verbose)
    opts = RunOptions(
        full=full,
        reconcile=reconcile,
        pull_only=pull_only,
        dry_run=dry_run,  # [writeback] dry_run = true is a real run that writes nothing back
        as_of=_parse_time(as_of),
        wait=(cfg.daemon.lock == "wait") if wait is None else wait,
        progress=sys.stderr.isatty(),
        allow_empty=allow_empty,
    )
    with stop_on_signals() as should_stop:
        return run_all(cfg, crm=crm, opts=opts, echo=_echo_text, should_stop=should_stop)


@cli.command(short_help="Preview the next run's writes from the mirror; stores nothing.")
@config_option
@crm_option
@click.option("--as-of", "as_of", help="Evaluate rules as of this time (ISO).")
@handles_errors
def plan(config_path: Path, crm: str | None, as_of: str | None) -> int:
    """Print the writes the next run would make, from the mirror as it is (sync --dry-run
    without the pull). Reads only: no flag, run, outbox row or CRM write is stored or made."""
    from .run import RunOptions, run_all

    cfg = _load_config(config_path)
    _setup_logs(cfg)
    opts = RunOptions(dry_run=True, skip_pull=True, as_of=_parse_time(as_of), wait=False)
    with stop_on_signals() as should_stop:
        return run_all(cfg, crm=crm, opts=opts, echo=_echo_text, should_stop=should_stop)


@cli.command()
@config_option
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Overrides [daemon] log_format.")
@handles_errors
def daemon(config_path: Path, log_format: str | None) -> int:
    """The scheduled service; stops cleanly on SIGTERM/SIGINT, reloads on SIGHUP."""
    from .daemon import run_daemon

    cfg = _load_config(config_path)
    _setup_logs(cfg, fmt=log_format)
    return run_daemon(config_path, cfg, log_format=log_format)


@cli.command()
@config_option
@crm_option
@click.option("--dry-run", is_flag=True, help="Only check; create nothing.")
@handles_errors
def setup(config_path: Path, crm: str | None, dry_run: bool) -> int:
    """Check, and where the API allows create, the fields crmsync writes to; then
    requeue the writes the CRM refused because one of them was missing."""
    from .run import setup_fields

    cfg = _load_config(config_path)
    _setup_logs(cfg)
    return setup_fields(cfg, crm=crm, dry_run=dry_run, echo=_echo_text)


@cli.command()
@config_option
@crm_option
@click.option("--rule", help="Only this rule (e.g. stale_contact).")
@click.option("--account", "account_id", help="Only this account id.")
@click.option(
    "--status",
    type=click.Choice(["open", "resolved", "suppressed", "all"]),
    default="open",
    show_default=True,
    help="open: problems found by the last run; resolved: gone since; suppressed: "
    "exempted or snoozed by the account team; all.",
)
@format_option()
@handles_errors
def flags(
    config_path: Path, crm: str | None, rule: str | None, account_id: str | None, status: str, fmt: str
) -> int:
    """Flags from the mirror."""
    from .report import print_flags

    if rule is not None:
        _check_rule(rule)
    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        return print_flags(
            cfg, crm=crm, rule=rule, account_id=account_id,
            status=None if status == "all" else status, fmt=fmt, echo=click.echo,
        )


def _check_rule(rule: str) -> None:
    """A --rule value must name a rule: a typo would otherwise print "0 flags"."""

    from crmsync.rules import RULE_NAMES

    if rule in RULE_NAMES:
        return
    close = difflib.get_close_matches(rule, RULE_NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise UsageError(
        f"--rule {rule}: there is no such rule; {hint}Rules: {', '.join(RULE_NAMES)}."
    )


@cli.command(short_help="Records linked across Salesforce and HubSpot, and ambiguous matches.")
@config_option
@format_option("table", "json", help="table to read, json for scripts.")
@handles_errors
def links(config_path: Path, fmt: str) -> int:
    """Records linked across the two CRMs ([identity], docs/identity.md): how many and how
    they were matched, and the matches reported instead of linked (ids only)."""
    from .links_report import print_links

    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        return print_links(cfg, fmt=fmt, echo=click.echo)


@cli.command()
@config_option
@format_option("table", "json", help="table to read, json for scripts.")
@handles_errors
def status(config_path: Path, fmt: str) -> int:
    """Last runs, cursors, outbox depth and errors, API calls used, open flags."""
    from .report import print_status

    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        return print_status(cfg, fmt=fmt, echo=click.echo)


@cli.group(
    "outbox",
    invoke_without_command=True,
    short_help="Writes the CRM refused, with its code and message; requeue them.",
)
@config_option
@crm_option
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["dead", "failed", "pending", "inflight", "done"]),
    help="Only rows in this state; repeat for several. dead: the CRM refused it and crmsync "
    "gave up; failed: refused, retried by the next run; pending: queued; inflight: being sent; "
    "done: landed. Default: dead and failed.",
)
@click.option("--code", help="Only rows the CRM refused with this error code, e.g. INVALID_FIELD.")
@click.option(
    "--limit",
    default=50,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows shown in the table (--format json lists every row).",
)
@format_option("table", "json", help="table to read, json for scripts.")
@click.pass_context
def outbox_cmd(
    ctx: click.Context,
    config_path: Path,
    crm: str | None,
    statuses: tuple[str, ...],
    code: str | None,
    limit: int,
    fmt: str,
) -> None:
    """The writes crmsync queued for the CRM: list the rows the CRM refused (with its
    error code and message), or requeue them with `crmsync outbox requeue`."""
    if ctx.invoked_subcommand is not None:
        if statuses or code or crm or fmt != "table" or config_path != Path("sync.toml"):
            raise click.UsageError(
                f"put the options after `{ctx.invoked_subcommand}` "
                f"(see `crmsync outbox {ctx.invoked_subcommand} --help`)."
            )
        return
    _outbox_list(config_path, crm, statuses or ("dead", "failed"), code, limit, fmt)


@handles_errors
def _outbox_list(
    config_path: Path, crm: str | None, statuses: tuple[str, ...], code: str | None,
    limit: int, fmt: str,
) -> int:
    from .report import print_outbox

    cfg = _load_config(config_path)
    return print_outbox(
        cfg, statuses=statuses, code=code, crm=crm, fmt=fmt, limit=limit, echo=click.echo
    )


@outbox_cmd.command("requeue", short_help="Put refused rows back in the queue: --code CODE or --all.")
@config_option
@crm_option
@click.option("--code", help="Requeue the rows the CRM refused with this error code.")
@click.option("--all", "all_rows", is_flag=True, help="Requeue every refused row.")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["dead", "failed"]),
    help="Only rows in this state; repeat for both. Default: dead and failed.",
)
@handles_errors
def outbox_requeue(
    config_path: Path, crm: str | None, code: str | None, all_rows: bool, statuses: tuple[str, ...]
) -> int:
    """Give refused rows another chance once their cause is fixed: they go back to
    pending with their attempts reset, and the next `crmsync sync` sends them.
    Say which: --code CODE (from `crmsync outbox`) or --all."""

    from .run import requeue_outbox

    if bool(code) == all_rows:
        raise UsageError(
            "say which rows to requeue: --code CODE or --all",
            fix="`crmsync outbox` lists the refused rows and their codes.",
        )
    cfg = _load_config(config_path)
    return requeue_outbox(
        cfg, code=code, crm=crm, statuses=statuses or ("dead", "failed"), echo=click.echo
    )


@cli.group(
    "conflicts",
    invoke_without_command=True,
    short_help="Values crmsync left alone because they are not its own; hand them back.",
)
@config_option
@crm_option
@format_option("table", "json", help="table to read, json for scripts.")
@click.pass_context
def conflicts_cmd(ctx: click.Context, config_path: Path, crm: str | None, fmt: str) -> None:
    """Values in the fields crmsync writes that a person, a workflow or another integration
    set: crmsync leaves them as they are. Lists each (what crmsync wants, what the CRM
    holds, since when, who), or hands fields back with `crmsync conflicts handback`.
    Blanking the field in the CRM hands it back too (docs/ownership.md)."""
    if ctx.invoked_subcommand is not None:
        if crm or fmt != "table" or config_path != Path("sync.toml"):
            raise click.UsageError(
                f"put the options after `{ctx.invoked_subcommand}` "
                f"(see `crmsync conflicts {ctx.invoked_subcommand} --help`)."
            )
        return
    _conflicts_list(config_path, crm, fmt)


@handles_errors
def _conflicts_list(config_path: Path, crm: str | None, fmt: str) -> int:
    from .report import print_conflicts

    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        return print_conflicts(cfg, crm=crm, fmt=fmt, echo=click.echo)


@conflicts_cmd.command("handback", short_help="Let crmsync write its value again: --record ID [--field F] or --all.")
@config_option
@click.option(
    "--crm", type=click.Choice(["salesforce", "hubspot"]), required=True, help="The CRM."
)
@click.option("--record", "record_id", help="The record's CRM id (from `crmsync conflicts`).")
@click.option("--field", "field_name", help="Only this field of the record (default: all of its conflicts).")
@click.option("--all", "all_rows", is_flag=True, help="Every open conflict of the CRM.")
@handles_errors
def conflicts_handback(
    config_path: Path, crm: str, record_id: str | None, field_name: str | None, all_rows: bool
) -> int:
    """Hand values back to crmsync: the next `crmsync sync` writes crmsync's value (and its
    signature) there, and the conflict is resolved once it lands. A contact's status and
    reason go back together. Say which: --record ID [--field FIELD], or --all."""
    from .conflicts import hand_back
    from .report import _open

    if bool(record_id) == all_rows:
        raise UsageError(
            "say which values to hand back: --record ID [--field FIELD], or --all",
            fix="`crmsync conflicts` lists the open conflicts.",
        )
    if field_name and not record_id:
        raise UsageError("--field needs --record", fix="`crmsync conflicts` lists the open conflicts.")
    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        db = _open(cfg)
        try:
            rows = hand_back(db, crm, record_id=record_id, field_name=field_name)
        finally:
            db.close()
    if not rows:
        click.echo(f"nothing to hand back: no open conflict ({crm}).")
        return EXIT_OK
    n = len(rows)
    click.echo(
        f"handed back {n:,} value{'' if n == 1 else 's'} ({crm}): the next `crmsync sync` "
        "writes crmsync's value there."
    )
    return EXIT_OK


@cli.command(short_help="The book for a sales leader: HTML page, or Markdown for a chat.")
@config_option
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the HTML page here (owner-only: it holds personal data).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["html", "md"]),
    default="html",
    show_default=True,
    help="html: one self-contained page (needs --html FILE or --out FILE); md: Markdown "
    "for a chat or an e-mail, printed (or written with --out).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the report here instead (owner-only).",
)
@click.option("--owner", help="Only this owner's accounts (name, e-mail address or owner id).")
@click.option(
    "--tier",
    type=click.Choice(["strategic", "growth", "maintenance", "none"]),
    help="Only accounts of this tier (none: accounts without a tier).",
)
@handles_errors
def report(
    config_path: Path,
    html_path: Path | None,
    fmt: str,
    out_path: Path | None,
    owner: str | None,
    tier: str | None,
) -> int:
    """The book at a glance for a sales or CS leader: coverage overall and per tier,
    open findings by rule and severity and their trend, one row per account owner, the
    top risks first (departed champions and single-threaded accounts renewing soon, with
    links into the CRM), then every account with why its coverage is what it is, its
    findings and crmsync's tasks. Dated by the rules' as-of date; read from the mirror
    only (no CRM call).

    \b
    crmsync report --html report.html            the page (open it in a browser)
    crmsync report --format md                   Markdown on stdout, for a chat
    crmsync report --format md --out monday.md   the same, in a file
    """
    from .report import markdown, write_html, write_markdown

    if html_path is not None and (fmt == "md" or out_path is not None):
        raise UsageError(
            "--html FILE writes the HTML page; use --format md [--out FILE] for Markdown, not both"
        )
    target = html_path or out_path
    if fmt == "html" and target is None:
        raise UsageError(
            "say where to write the page: --html FILE",
            fix="Or print Markdown instead: crmsync report --format md",
        )
    if target is not None:
        folder = target.parent
        if not folder.is_dir():
            option = "--html" if html_path is not None else "--out"
            raise OutputError(
                f"{option} {target}: the folder {folder} does not exist",
                fix="Create it first or choose another path.",
            )
    cfg = _load_config(config_path)
    with mirror_errors(cfg.mirror.path):
        if fmt == "md" and target is None:
            click.echo(markdown(cfg, owner=owner, tier=tier), nl=False)
            return EXIT_OK
        if fmt == "md":
            assert target is not None
            write_markdown(cfg, target, owner=owner, tier=tier)
        else:
            assert target is not None
            write_html(cfg, target, owner=owner, tier=tier)
    click.echo(f"wrote {target}")
    return EXIT_OK


@cli.command()
@click.argument("crm", type=click.Choice(["salesforce", "hubspot"]))
@click.option("--port", default=0, show_default=True, help="Port on 127.0.0.1; 0 picks a free one.")
@click.option("--seed", default=1, show_default=True, help="Seed of the generated org (same seed, same org).")
@click.option("--accounts", default=50, show_default=True, help="Accounts in the generated org (about 10 contacts each).")
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Dataset JSON file instead of generated data (format below).")
@click.option("--faults", help="Injected faults: JSON, a .json file, or kind:key=val,...;... (documented in sandbox/common.py), e.g. 'status:status=503,probability=0.05'.")
@click.option("--write-config", "write_config", type=click.Path(dir_okay=False, path_type=Path), help="Write the sync.toml table that connects crmsync to this sandbox.")
@click.option(
    "--realistic/--unlimited",
    default=True,
    show_default=True,
    help="Enforce a real account's limits (the default; see above), or answer as fast as "
    "loopback allows with no rate limit, index lag or latency (--unlimited).",
)
@click.option(
    "--plan",
    help="The account whose limits --realistic models. HubSpot: starter (the default: 100 "
    "requests per 10 s, 250,000 per day), professional (190, 625,000) or enterprise (190, "
    "1,000,000). Salesforce: production (the default: 25 concurrent long-running requests, "
    "100,000 requests per 24 h) or developer (5, 15,000).",
)
@click.option("--latency-ms", "latency_ms", type=click.FloatRange(min=0), help="With --realistic: milliseconds each API request takes (assumed: 100).")
@click.option("--index-lag", "index_lag", type=click.FloatRange(min=0), help="HubSpot with --realistic: seconds before search sees a write (assumed: 5).")
@handles_errors
def sandbox(
    crm: str, port: int, seed: int, accounts: int, data_file: Path | None,
    faults: str | None, write_config: Path | None, realistic: bool, plan: str | None,
    latency_ms: float | None, index_lag: float | None,
) -> int:
    """Run one emulator (Salesforce or HubSpot) as a standalone loopback server.

    It serves the official client libraries over real HTTP (Salesforce over
    TLS with a throwaway CA) until Ctrl-C or SIGTERM, and holds its data in
    memory only.

    \b
    Limits: realistic by default, because this command is where people and
    outside tools measure crmsync (how long a sync takes, how it copes with
    429s): numbers taken against a sandbox without limits would promise what
    the real CRM never gives. --realistic enforces, as the vendor documents them:
      HubSpot: the rolling limit per 10 s and the daily limit of the --plan,
        5 searches per second (429 past either);
      Salesforce: the concurrent long-running request limit (requests running
        20 s or more) and the daily requests of the --plan (403 past either);
    and, where no vendor gives a number, assumed values (sandbox/realistic.py
    cites each): a search index lag of 5 s (HubSpot), 100 ms per request, 10 s
    per Bulk query job (Salesforce). --unlimited turns all of it off (debugging,
    tests of crmsync's own speed); `crmsync demo` runs realistic too.

    \b
    Data: generated with --seed and --accounts, or --data FILE, a JSON object
    with one key per CRM, each holding its records as the CRM's API returns
    them (tests/golden/edge_cases/seed.json is a small example):
      {"salesforce": {"User": [...], "Account": [...], "Contact": [...],
                      "Opportunity": [...], "OpportunityContactRole": [...]},
       "hubspot": {"owners": [...], "companies": [...], "contacts": [...],
                   "deals": [...]}}
    A HubSpot record is {"id", "properties": {...}, "associations": {...}}.

    \b
    --write-config FILE writes the sync.toml table for this sandbox (plus a
    [mirror] table when FILE has none) and its dummy credential files beside
    FILE, so `crmsync setup --config FILE` works at once.
    """
    _need_sandbox("sandbox")
    from crmsync.sandbox.realistic import HubSpotProfile, SalesforceProfile, profile

    _setup_logs(fmt="text")
    limits: HubSpotProfile | SalesforceProfile | None = None
    if realistic:
        try:
            limits = profile(crm, plan, latency_ms=latency_ms, index_lag_seconds=index_lag)
        except ValueError as e:
            raise UsageError(f"--plan / --index-lag: {e}", fix="See `crmsync sandbox --help`.") from None
    elif plan or latency_ms is not None or index_lag is not None:
        raise UsageError(
            "--plan, --latency-ms and --index-lag set realistic limits, and --unlimited turns them off",
            fix="Drop --unlimited, or drop those options.",
        )
    if data_file is not None:
        try:
            dataset = json.loads(data_file.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise UsageError(
                f"--data {data_file}: not a readable JSON dataset ({e})",
                fix="Pass a file written by `python -m crmsync.sandbox.generate`, or drop --data.",
            ) from None
    else:
        from crmsync.sandbox.generate import generate

        dataset = generate(seed=seed, accounts=accounts)
    if crm == "salesforce":
        from crmsync.sandbox.salesforce import serve_forever as sf_serve

        assert limits is None or isinstance(limits, SalesforceProfile)
        sf_serve(port=port, dataset=dataset, faults=faults, write_config=write_config, realistic=limits)
    else:
        from crmsync.sandbox.hubspot import serve_forever as hs_serve

        assert limits is None or isinstance(limits, HubSpotProfile)
        hs_serve(port=port, dataset=dataset, faults=faults, write_config=write_config, realistic=limits)
    return EXIT_OK


def main() -> None:
    cli(prog_name="crmsync")


if __name__ == "__main__":
    main()

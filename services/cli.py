"""``cw``: the chuangwei command line. Each service registers its own subcommands, and
``cw run SERVICE`` runs any long-running service of the registry (:mod:`services.registry`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import nats.errors
from pydantic import ValidationError

from services import registry
from services.common.connect import SERVICE_REFUSED, Refused, failure_text
from services.common.settings import Settings, described_settings

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    # Imported here so that `cw --help` does not pay for every service's imports.
    from services.backups.entrypoints.cli import register as register_streams  # noqa: PLC0415
    from services.commands.tracking import register as register_tracking  # noqa: PLC0415
    from services.common.entrypoints import register as register_common  # noqa: PLC0415
    from services.deadletters.entrypoints.cli import register as register_dlq  # noqa: PLC0415
    from services.devstack.cli import register as register_dev  # noqa: PLC0415
    from services.intake.entrypoints.cli import register as register_intake  # noqa: PLC0415
    from services.permissions.entrypoints.cli import register as register_nats  # noqa: PLC0415
    from services.projector.entrypoints.cli import register as register_projector  # noqa: PLC0415
    from services.reports.entrypoints.cli import register as register_reports  # noqa: PLC0415

    return [
        register_common,
        register_dev,
        register_intake,
        register_run,
        register_projector,
        register_dlq,
        register_tracking,
        register_reports,
        register_nats,
        register_streams,
    ]


log = logging.getLogger("cw")

EXIT_METRICS_PORT_TAKEN = 2
EXIT_REFUSED = 3
EXIT_BAD_SETTING = 78
"""``EX_CONFIG``, as production mode's refusals."""


def _logging(settings: Settings) -> None:
    """Log lines stamped on the campaign's clock."""
    from services.common.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings.campaign_file)


REFUSED_STOP_S = 30.0
"""How long a service NATS refused is given to stop as on SIGTERM before it is cancelled."""
STOP_GRACE_S = 5.0
"""How long a service is given after SIGINT or SIGTERM to finish the batch in hand and return,
before it is cancelled: a wait for a server that is away (its first connection, a retry's
pause) does not watch the stop event. Cancelling is safe at any point: nothing is acknowledged
before it is committed."""


async def serve(service: registry.RunnableService, settings: Settings) -> None:
    """Run ``service`` until SIGINT or SIGTERM, or until NATS refuses it something (then stop
    it and raise ``Refused``: a user without the service's rights is a configuration error).

    Stopped by a signal, it returns whatever it was doing: a failure it was retrying is said in
    one line, not raised (the operator asked it to stop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    refused: asyncio.Future[str] = loop.create_future()

    def note(why: str) -> None:
        if not refused.done():
            refused.set_result(why)

    token = SERVICE_REFUSED.set(note)
    try:
        running = asyncio.ensure_future(service.run(settings, stop))
    finally:
        SERVICE_REFUSED.reset(token)  # the task took a copy of the context
    stopped = asyncio.ensure_future(stop.wait())
    either: set[asyncio.Future[Any]] = {running, refused, stopped}
    await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if refused.done():
        stop.set()
        await _ended(running, REFUSED_STOP_S)
        # How the service ended after the refusal (a request never answered) is not the news.
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await running
        raise Refused(
            f"{refused.result()}; is CW_NATS_URL or CW_NATS_CREDS this service's own user?"
        )
    refused.cancel()
    if stop.is_set():
        await _ended(running, STOP_GRACE_S)
        try:
            await running
        except asyncio.CancelledError:
            logging.getLogger(f"cw.{service.name}").info("stopped while waiting for a server")
        except Exception as exc:
            logging.getLogger(f"cw.{service.name}").warning(
                "stopped on request while failing: %s: %s", type(exc).__name__, failure_text(exc)
            )
        return
    running.result()


async def _ended(running: asyncio.Future[Any], within_s: float) -> None:
    """Wait up to ``within_s`` for ``running`` to end, then cancel it."""
    await asyncio.wait({running}, timeout=within_s)
    running.cancel()


def _stop_on_sigterm_before_the_loop() -> None:
    """Until ``serve`` installs its handlers, SIGTERM ends the service as SIGINT does (exit 0),
    not by the signal's default action."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _run(args: argparse.Namespace) -> int:
    from services.common.runtime import run  # noqa: PLC0415

    _stop_on_sigterm_before_the_loop()
    service = registry.by_name(args.service)
    settings = registry.service_settings(service, Settings())
    _logging(settings)
    log = logging.getLogger(f"cw.{service.name}")
    try:
        run(serve(service, settings))
    except KeyboardInterrupt:
        log.info("stopped before it started")
        return 0
    except registry.MetricsPortTaken as exc:
        log.error("%s", exc)
        return EXIT_METRICS_PORT_TAKEN
    except Refused as exc:
        # Credentials a server refuses will not start working by waiting: say so and stop.
        log.error("%s: stopping", exc)
        return EXIT_REFUSED
    except tuple(service.exits) as exc:
        log.error("%s: stopping", exc)
        return next(code for kind, code in service.exits.items() if isinstance(exc, kind))
    return 0


def _described(service: registry.RunnableService) -> str:
    exits = "".join(
        f", exit status {code} on {kind.__name__}" for kind, code in service.exits.items()
    )
    return f"{service.name}: {service.summary} (metrics port {service.metrics_port}{exits})"


def register_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    services = registry.all_services()
    names = [s.name for s in services]
    p = sub.add_parser(
        "run",
        help=f"run a service ({', '.join(names)})",
        description="Run one long-running service until SIGINT or SIGTERM.",
        epilog="services: "
        + "; ".join(_described(s) for s in services)
        + f". Exit status: 0 stopped; 2 the metrics port is taken"
        f" ({registry.METRICS_PORT_SETTING}); 3 NATS refused the credentials"
        " (CW_NATS_URL, CW_NATS_CREDS).",
    )
    p.add_argument("service", choices=names, metavar="SERVICE", help=" | ".join(names))
    p.set_defaults(handler=_run)


def settings_epilog(width: int = 79) -> str:
    """The ``CW_*`` settings, each with its default and meaning, from the settings class itself
    (so that ``cw --help`` cannot drift from what the commands read)."""
    lines = [
        "settings (environment variables, read by every command; durations read like 5s, 2m, 72h):"
    ]
    for name, default, meaning in described_settings():
        lines.append(f"  {name}  (default: {default})")
        lines.extend(
            textwrap.wrap(meaning, width, initial_indent=" " * 6, subsequent_indent=" " * 6)
        )
    lines.append("")
    lines.extend(
        textwrap.wrap(
            "With CW_ENV=production every command and service refuses to start (exit status 78, "
            "one line per problem) while NATS has no credentials, a database URL has no "
            "password, or a secret is a default one.",
            width,
        )
    )
    lines.append("cw COMMAND --help tells more about a command, its arguments and exit statuses.")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cw",
        description=textwrap.fill(
            "chuangwei 创卫: sanitary-inspection campaign tracking. District systems publish "
            "events to NATS JetStream (CW_EVENTS); the projector keeps the read model in "
            "PostgreSQL, which operators and reports read.",
            79,
        ),
        epilog=settings_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        title="commands",
        help="cw COMMAND --help says more",
    )
    for register in _registrations():
        register(sub)
    return parser


EXIT_BAD_CAMPAIGN = 2
EXIT_NOT_FOR_PRODUCTION = 78  # EX_CONFIG


def refused_in_production(command: str) -> int | None:
    """With ``CW_ENV=production``, a command or service does not start on settings that are not
    fit for it (:mod:`services.common.production`): one line per problem, never a secret."""
    from pydantic import ValidationError  # noqa: PLC0415

    from services.common.production import production_problems  # noqa: PLC0415

    try:
        settings = Settings()
    except ValidationError:
        return None  # the command itself says what is wrong with the settings
    problems = production_problems(settings)
    for problem in problems:
        print(f"cw {command}: CW_ENV=production: {problem}", file=sys.stderr)
    return EXIT_NOT_FOR_PRODUCTION if problems else None


def _use_the_stack_of_cw_dev(command: str) -> None:
    """With neither ``CW_NATS_URL`` nor ``CW_DATABASE_URL`` set, a command run from the project
    folder uses the stack of the ``cw dev`` running there (``.cw/stack.env``), and says so;
    otherwise it would talk to the machine's servers without a word."""
    if os.environ.get("CW_NATS_URL") or os.environ.get("CW_DATABASE_URL"):
        return
    from services.common.connect import mask_url  # noqa: PLC0415
    from services.devstack.stack_file import running_stack  # noqa: PLC0415

    try:
        stack = running_stack(Path.cwd())
    except OSError:  # the working folder is gone
        return
    if stack is None:
        return
    for name, value in stack.env.items():
        os.environ.setdefault(name, value)
    print(
        f"cw {command}: using the stack cw dev started (pid {stack.pid}): NATS "
        f"{mask_url(stack.env['CW_NATS_URL'])}, PostgreSQL {mask_url(stack.env['CW_DATABASE_URL'])}"
        f" ({stack.path}; set CW_NATS_URL and CW_DATABASE_URL to use other servers)",
        file=sys.stderr,
    )


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        # A setting that cannot be read, in one line each: its name and why, never its value
        # (it may be a secret).
        for error in exc.errors():
            name = "CW_" + "_".join(str(part) for part in error["loc"]).upper()
            print(f"cw: {name}: {error['msg']}", file=sys.stderr)
        return EXIT_BAD_SETTING


def _main(argv: Sequence[str] | None) -> int:
    from services.common.campaign import CampaignError  # noqa: PLC0415

    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    if args.command != "dev":
        _use_the_stack_of_cw_dev(args.command)
    refused = refused_in_production(args.command)
    if refused is not None:
        return refused
    try:
        return handler(args)
    except CampaignError as exc:
        # Every command that reads the campaign file refuses a bad one, in one line.
        print(f"cw {args.command}: campaign file: {exc}", file=sys.stderr)
        return EXIT_BAD_CAMPAIGN
    except nats.errors.TimeoutError:
        # NATS leaves a request it refused this user unanswered, so a refusal looks like this.
        print(
            f"cw {args.command}: NATS did not answer in time; a request this NATS user may not "
            "make is never answered: is it the operator? (README, 'Who may do what')",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`cw venue X | head`): not an error of ours. Point stdout at
        # /dev/null so that Python's flush at exit does not fail a second time.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())

"""``cw``: the chuangwei command line. Each service registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def _registrations() -> list[Register]:
    # Imported here so that `cw --help` does not pay for every service's imports.
    from services.common.entrypoints import register as register_common  # noqa: PLC0415
    from services.deadletters.cli import register as register_dlq  # noqa: PLC0415
    from services.devstack.cli import register as register_dev  # noqa: PLC0415
    from services.intake.entrypoints.cli import register as register_intake  # noqa: PLC0415
    from services.projector.entrypoints.cli import register as register_projector  # noqa: PLC0415

    return [register_common, register_dev, register_intake, register_projector, register_dlq]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cw", description="chuangwei 創衛: sanitary-inspection campaign tracking"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in _registrations():
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

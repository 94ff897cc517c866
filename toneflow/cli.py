"""The one CLI, ``toneflow``. Each package registers its own subcommands in its ``cli.py``.

Errors print as one line (``error: ...``) with a non-zero exit code; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from toneflow.errors import ToneflowError

# Each module exposes ``register(subparsers)``. Heavy imports stay inside the command handlers
# so ``toneflow --help`` is instant.
COMMAND_MODULES = (
    "toneflow.core_cli",
    "schemas.cli",
    "teacher.cli",
    "streams.cli",
    "warehouse.cli",
    "trainer.cli",
    "editor.cli",
    "serving.cli",
)


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toneflow",
        description="toneflow: distil a teacher LLM into a small, fast colour-tool-calling student.\n"
        "Every setting is also read from TONEFLOW_* environment variables (see `toneflow config`).",
        formatter_class=_Formatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name in (name, name.rsplit(".", 1)[0]):
                continue  # that package has no commands yet
            raise
        module.register(sub)
    return parser


def add_command(sub: argparse._SubParsersAction, name: str, help: str, description: str | None = None,  # noqa: A002
                ) -> argparse.ArgumentParser:
    """Add a subcommand with the house formatter (defaults shown, descriptions kept verbatim)."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=_Formatter)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code = args.func(args)
    except ToneflowError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the CLI's last line of defence
        if args.debug:
            raise
        print(f"error: {type(err).__name__}: {err} (run with --debug for the traceback)", file=sys.stderr)
        return 1
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())

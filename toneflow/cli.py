"""The one CLI, ``toneflow``. Each package registers its own subcommands in its ``cli.py``.

Errors print as one line (``error: ...``) with a non-zero exit code; ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

import console.cli
import editor.cli
import schemas.cli
import serving.cli
import streams.cli
import teacher.cli
import trainer.cli
import warehouse.cli
from foundation.cli import HelpFormatter
from foundation.errors import ToneflowError
from serving.ab import promotion_effect
from serving.edits import predict_edits
from toneflow import core_cli

# Each module exposes ``register(subparsers)``; they import only argparse-level code at the top,
# so ``toneflow --help`` stays instant. This root is the one place that knows every package.
COMMAND_MODULES = (core_cli, schemas.cli, teacher.cli, streams.cli, warehouse.cli, serving.cli, console.cli)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toneflow",
        description="toneflow: distil a teacher LLM into a small, fast colour-tool-calling student.\n"
        "Every setting is also read from TONEFLOW_* environment variables (see `toneflow config`).",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    editor.cli.register(sub, predict_edits=predict_edits)  # the renderer gets its models from here
    trainer.cli.register(sub, promotion_effect=promotion_effect)  # promote says when serving will not follow
    return parser


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

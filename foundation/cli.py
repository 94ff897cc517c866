"""How a package adds its subcommands to the one ``toneflow`` CLI.

Each package's ``cli.py`` has ``register(subparsers)`` and calls :func:`add_command`; the CLI root
(``toneflow/cli.py``) lists those modules. Heavy imports stay inside the command handlers so that
``toneflow --help`` is instant.
"""

from __future__ import annotations

import argparse


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown after every flag's help; descriptions kept as written (line breaks included)."""


def add_command(sub: argparse._SubParsersAction, name: str, help: str, description: str | None = None,  # noqa: A002
                ) -> argparse.ArgumentParser:
    """Add a subcommand with the house formatter (defaults shown, descriptions kept verbatim)."""
    return sub.add_parser(name, help=help, description=description or help, formatter_class=HelpFormatter)

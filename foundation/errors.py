"""The one exception root. Every error a user can see derives from ToneflowError.

The CLI prints ``str(error)`` as one line and exits non-zero, so messages say what went wrong
*and* what to do next.
"""

from __future__ import annotations


class ToneflowError(Exception):
    """Base of every toneflow error; its message is shown to the user as is."""

    exit_code: int = 1


class ConfigError(ToneflowError):
    """A setting is missing or invalid."""

    exit_code = 2


class BrokerError(ToneflowError):
    """The Kafka broker (embedded or real) cannot be reached, started or stopped."""

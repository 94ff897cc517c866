"""Errors of the editor. Every message says what went wrong and what to do next."""

from __future__ import annotations

from foundation.errors import ToneflowError


class EditorError(ToneflowError):
    """Base of every editor error."""


class MediaNotFound(EditorError):
    """The input image or video does not exist or cannot be read."""


class UnsupportedFormat(EditorError):
    """The file extension is not one the editor reads or writes."""

    exit_code = 2


class MediaDecodeError(EditorError):
    """The file exists but is not a readable image or video (truncated, wrong extension, ...)."""


class EditFileError(EditorError):
    """An ``--edit`` file is missing, not JSON, or breaks the edit contract."""

    exit_code = 2


class VideoError(EditorError):
    """Decoding, encoding or muxing a video failed."""

"""Vouching for a served edit: the serving layer signs what it served, the labeler checks it.

An app producer writes ``served_by`` and ``served_edit`` itself, so on their own they prove
nothing: anyone could send ``served_by.kind = "teacher"`` with an edit of their choosing and have
it taken as a free teacher label (streams/guard.py). The server that really served the edit adds
``served_sig``: HMAC-SHA256 over the prompt, ``served_by`` and the canonical edit, with a key that
the server and the worker share and apps never see. Signing the prompt too keeps a genuine
(served_by, edit) pair from being replayed as the label of another prompt.

The key is ``TONEFLOW_SERVE_SIGNING_KEY``; unset, it is a random key kept in
``<data_dir>/secrets/serve-signing.key`` (0600), created by the first process that needs it, so
processes on one data directory (the compose services share a volume) agree without setup.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from foundation.errors import ToneflowError
from foundation.settings import Settings
from schemas.edit import Edit, canonical_json_sorted
from schemas.events import PromptEvent, ServedBy

KEY_FILE = Path("secrets") / "serve-signing.key"
_KEYS: dict[str, bytes] = {}  # data dir -> key read from its file (the file never changes)


# Built once: json.dumps with these options builds an encoder per call, and the labeler checks a
# signature for every teacher-served prompt. Same options, same bytes.
_SIGNED = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _message(prompt: str, served_by: ServedBy, served_edit: Edit) -> bytes:
    """``_SIGNED.encode({"prompt": .., "served_by": .., "served_edit": canonical})``, put together
    from its parts: the three keys are in sorted order as written, and the served edit's sorted
    JSON is cached per edit object (schemas.edit), which is the same object the worker lands. The
    same bytes as the dict encoding (tests/test_trust.py compares both)."""
    return (f'{{"prompt":{_SIGNED.encode(prompt)},"served_by":{_served_by_json(served_by)},'
            f'"served_edit":{canonical_json_sorted(served_edit)}}}').encode()


# served_by's sorted JSON by its field values (all of them, so a field added to ServedBy is part
# of the key): a server answers with a handful of (kind, model, version, variant), and dumping
# the model for every prompt was a tenth of the signature check.
_SERVED_BY: dict[tuple[tuple[str, object], ...], str] = {}
_SERVED_BY_LIMIT = 1024


def _served_by_json(served_by: ServedBy) -> str:
    key = tuple(served_by.__dict__.items())
    text = _SERVED_BY.get(key)
    if text is None:
        if len(_SERVED_BY) >= _SERVED_BY_LIMIT:  # a flood of distinct variants: start over, never grow
            _SERVED_BY.clear()
        text = _SERVED_BY[key] = _SIGNED.encode(served_by.model_dump(mode="json"))
    return text


def sign_served(key: bytes, prompt: str, served_by: ServedBy, served_edit: Edit) -> str:
    """The ``served_sig`` of an edit served for ``prompt`` (hex HMAC-SHA256)."""
    # hmac.digest: the one-shot C path, the same HMAC as hmac.new(...).digest()
    return hmac.digest(key, _message(prompt, served_by, served_edit), hashlib.sha256).hex()


def vouched(key: bytes, event: PromptEvent) -> bool:
    """True when ``event``'s served edit carries a valid signature of the serving layer."""
    if event.served_by is None or event.served_edit is None or not event.served_sig:
        return False
    expected = sign_served(key, event.prompt, event.served_by, event.served_edit)
    # As bytes: compare_digest raises TypeError on a str with non-ASCII characters, and an app can
    # send any text as served_sig (the contract keeps it valid Unicode, so it encodes).
    return hmac.compare_digest(expected.encode("ascii"), event.served_sig.encode("utf-8"))


def signing_key(settings: Settings) -> bytes:
    """The shared key: TONEFLOW_SERVE_SIGNING_KEY, else the data directory's key file (made once)."""
    if settings.serve_signing_key is not None:
        return settings.serve_signing_key.get_secret_value().encode("utf-8")
    path = settings.data_path / KEY_FILE
    cached = _KEYS.get(str(path))
    if cached is not None:
        return cached
    if not path.exists():
        _create(path)
    key = path.read_bytes().strip()
    if len(key) < 32:
        msg = (f"the signing key file {path} is damaged (too short); delete it and restart the server and worker, "
               "or set TONEFLOW_SERVE_SIGNING_KEY")
        raise ToneflowError(msg)
    _KEYS[str(path)] = key
    return key


def _create(path: Path) -> None:
    """Write a new random key so that of two processes racing here, both end up with the same one."""
    from foundation.osutil import fsync_dir

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".tmp-{os.getpid()}-{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, secrets.token_hex(32).encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # fails if another process got there first: theirs is the key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)

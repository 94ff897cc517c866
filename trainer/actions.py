"""Promote and roll back as the CLI does them, for every caller (``toneflow models``, the console)."""

from __future__ import annotations

from typing import Any

from foundation.settings import Settings


def promote_model(settings: Settings, name: str, *, force: bool = False, margin: float | None = None) -> dict[str, Any]:
    """Evaluate ``name`` and the current model on the gate's test set (unless ``force``), then promote."""
    from trainer import registry
    from trainer.train import gate_eval

    version = registry.resolve(settings, name)
    test_id = None if force else gate_eval(settings, version)
    return registry.promote(settings, version, test_set=test_id, margin=margin, force=force)


def rollback_model(settings: Settings, to: str | None = None) -> dict[str, Any]:
    """Point ``current`` back at the previous champion (or ``to``); never gated."""
    from trainer import registry

    return registry.rollback(settings, to)

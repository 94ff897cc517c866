"""What ``GET /healthz`` says about the server: ``ok``, or ``degraded`` with one reason per problem.

Status policy (also in docs/serving.md): **200** whenever the server answers ``/v1/edit`` —
``"status": "ok"``, or ``"degraded"`` while it answers worse than it should; **503** only while it
does not answer at all (``"starting"``: the lifespan is loading the plan and models, or shutting
down). A degraded server stays in rotation on purpose: every degraded state still answers each
request (an older model, the teacher, PyTorch instead of ONNX, no prompt events), and taking the
only server out of rotation would turn a degraded service into none. Monitors alert on the body.

Each reason is ``{"kind", "detail"}``; the kinds:

* ``model_refused``: what a model name resolves to now could not be loaded (damaged files, a missing
  version); the previous version keeps serving, if there was one;
* ``fallback``: a model the traffic plan uses is not loaded, so its arm is answered by the teacher
  (tagged ``<variant>-fallback``), or a version with an ONNX export serves through PyTorch;
* ``reloader_failing``: the traffic plan cannot be read poll after poll, the reloader thread died,
  or its last poll is long past: promotions are not picked up;
* ``events_undeliverable``: prompt events are asked for but the producer cannot be created, the
  broker does not acknowledge them, or the queue is filling up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.events import EventEmitter
    from serving.models import ModelHolder, Reloader


def health_report(holder: ModelHolder, reloader: Reloader, emitter: EventEmitter,
                  missing: list[str]) -> tuple[str, list[dict[str, Any]]]:
    """``("ok" | "degraded", reasons)`` for a running server; ``missing`` = plan models not loaded."""
    reasons: list[dict[str, Any]] = []
    for name, why in sorted(holder.refused.items()):
        serving = holder.versions().get(name)
        still = f"still serving {serving}" if serving else "nothing loaded for it"
        reasons.append({"kind": "model_refused", "model": name, "detail": f"{name} could not be loaded ({why}); {still}"})
    for name in missing:
        reasons.append({"kind": "fallback", "model": name,
                        "detail": f"model {name} is not loaded: the teacher answers its arm (served as <variant>-fallback)"})
    for name, cause in sorted(holder.runtime_fallbacks().items()):
        reasons.append({"kind": "fallback", "model": name, "detail": f"{name} serves through PyTorch: {cause}"})
    for kind, problem in (("reloader_failing", reloader.degraded()), ("events_undeliverable", emitter.degraded())):
        if problem is not None:
            reasons.append({"kind": kind, "detail": problem})
    return ("degraded" if reasons else "ok"), reasons

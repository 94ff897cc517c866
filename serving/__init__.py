"""Serving: the student (or the teacher) behind an HTTP API, A/B traffic plans and the online gate.

* ``serving.ab``       the traffic plan (``<data_dir>/serving/traffic.json``) and deterministic assignment
* ``serving.models``   hot-reloading holder of registry students (swap on promote, never drop a request)
* ``serving.events``   non-blocking emitter of served prompt events to ``toneflow.prompts``
* ``serving.app``      the app (``create_app(settings)``): ``POST /v1/edit``, ``GET /healthz``, the docs
* ``serving.front``    the ASGI front: auth before the body, the body limit, ``POST /v1/edit`` without FastAPI
* ``serving.batching`` micro-batching, one forward pass per core at once
* ``serving.health``   what ``/healthz`` reports: ``ok`` or ``degraded`` with reasons
* ``serving.rollout``  the online gate: non-inferiority test per arm, promote / roll back, decision log
* ``serving.cli``      ``toneflow predict | serve | rollout``

Heavy imports (torch, fastapi) stay inside the modules that need them.
"""

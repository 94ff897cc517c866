"""The web console, ``toneflow ui``: the loop, the models and the blind review in a browser.

Server-rendered pages on loopback, on a port of their own (``TONEFLOW_UI_PORT``), behind the same
bearer token as ``toneflow serve`` (``TONEFLOW_SERVE_TOKEN``). It reads the warehouse
(``warehouse.catalog.connect``) and the model registry (``trainer.registry``) and writes only
ratings (``warehouse.reviews``) and the registry pointer (``trainer.actions``, what the CLI calls):
it is never on the serving hot path.
"""

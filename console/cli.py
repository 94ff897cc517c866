"""``toneflow ui``: the web console. Heavy imports stay inside the handler."""

from __future__ import annotations

import argparse
import sys

from foundation.cli import add_command
from foundation.settings import Settings, get_settings

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    s = Settings.model_fields
    ui = add_command(sub, "ui", "web console: the loop, the models (promote/roll back), blind review",
                     "Pages: Loop (events, DLQ, slices, teacher spend, retrain trigger, trainer runs),\n"
                     "Models (metrics, curves, gate logs, A/B, promote/roll back), Review (blind teacher-vs-\n"
                     "student ratings into the warehouse table `reviews`). Reads the warehouse and registry\n"
                     "under TONEFLOW_DATA_DIR. With TONEFLOW_SERVE_TOKEN set, sign in at /login.")
    ui.add_argument("--host", default=None, help=f"bind address; unset = TONEFLOW_UI_HOST ({s['ui_host'].default})")
    ui.add_argument("--port", type=int, default=None, help=f"port; unset = TONEFLOW_UI_PORT ({s['ui_port'].default})")
    ui.set_defaults(func=_ui)


def _ui(args: argparse.Namespace) -> int:
    import uvicorn

    from console.app import create_app
    from foundation.errors import ConfigError

    settings = get_settings()
    host, port = args.host or settings.ui_host, args.port or settings.ui_port
    if host not in LOOPBACK and settings.serve_token is None:
        msg = (f"the console can promote models: bind it to {host} only with TONEFLOW_SERVE_TOKEN set "
               "(or keep the loopback default)")
        raise ConfigError(msg)
    print(f"toneflow console on http://{host}:{port} (data: {settings.data_path})", file=sys.stderr, flush=True)
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning", access_log=False)
    return 0

"""``toneflow demo`` (what ``make demo`` runs): the whole loop on a fresh machine, no network.

  1. an embedded broker, the stream worker (labeler, join, sinks, retrain trigger) and the trainer
     service (``toneflow trainer``, which consumes the trigger's ``toneflow.retrain`` records);
  2. teacher-served app traffic from the simulator → labels → accepted examples in the warehouse;
  3. the retrain trigger fires; the trainer service receives it and runs an incremental training:
     the first student is trained, evaluated, and promoted by the offline gate;
  4. ``toneflow serve`` starts; the student gets a share of traffic as an A/B arm next to the
     teacher; simulated users call the API and export (or not) what they are served;
  5. the online gate (``toneflow rollout step``) promotes the student to all traffic or rolls it back;
  6. a report: events, DLQ, training runs, the paper-style metrics table, completion rate per
     variant with intervals, teacher-vs-student latency, and a contact sheet of a few prompts.

The console (``toneflow ui``) runs beside it from the start; its address is printed first.

Everything lives in ``<data_dir>/demo`` (replaced on each run). Every process it starts is stopped
on the way out, Ctrl-C included.
"""

from __future__ import annotations

import shutil
import sys
import time

from foundation import broker
from foundation.settings import Settings
from schemas.events import TOPICS
from toneflow.demo_steps import Demo
from toneflow.demo_support import DemoPlan, Processes


def _start_console(demo: Demo) -> str:
    """``toneflow ui`` on the demo's data, on a free port, for as long as the demo runs."""
    from foundation.broker_state import free_port

    url = f"http://127.0.0.1:{free_port()}"
    demo.procs.start("console", ["ui", "--host", "127.0.0.1", "--port", url.rsplit(":", 1)[1]], demo.env,
                     demo.logs / "console.log")
    print(f"console on {url} (Loop, Models, Review; log: {demo.logs / 'console.log'})", flush=True)
    return url


def run(settings: Settings, plan: DemoPlan | None = None) -> int:
    plan = plan or DemoPlan()
    root = settings.data_path / "demo"
    if root.exists():
        old = Settings(data_dir=root / "broker")
        broker.stop(old)
        shutil.rmtree(root)
    root.mkdir(parents=True)
    own = Settings(data_dir=root / "broker")
    procs = Processes()
    started = time.monotonic()
    try:
        state = broker.start(own, TOPICS)
        demo = Demo(root=root, bootstrap=state.bootstrap, plan=plan, procs=procs)
        console = _start_console(demo)
        code = demo.run()
        print(f"\ndemo finished in {(time.monotonic() - started) / 60:.1f} min; everything is in {root}")
        print(f"the console ran at {console}; its data stays: TONEFLOW_DATA_DIR={root} toneflow ui "
              f"(then http://{settings.ui_host}:{settings.ui_port})")
        return code
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the server, the trainer, the worker and the broker", file=sys.stderr)
        return 130
    finally:
        procs.stop_all()
        broker.stop(own)

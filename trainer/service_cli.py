"""``toneflow trainer``: flags, help and signal handling around ``trainer.service``."""

from __future__ import annotations

import argparse
import signal
from types import FrameType

from foundation.cli import add_command
from foundation.settings import get_settings

DESCRIPTION = """\
The trainer service: consume the retrain triggers the stream worker emits on toneflow.retrain
(consumer group --group) and run one training per trigger_id, in this process: an incremental
`toneflow train --trigger-id ID` with the train flags below.

Per trigger it prints three lines: received, training, and the result (trained: version, overall,
gate verdict | duplicate: already trained, nothing to do | recovered | skipped | failed). The offset
is committed only after the run is recorded (model registry + models/runs/<trigger_id>.json), so a
crash redelivers the trigger and the redelivery trains it at most once. SIGTERM or Ctrl-C stops at
once: a run in flight is abandoned and redone by the next start.

Environment (see `toneflow config`):
  TONEFLOW_KAFKA_BOOTSTRAP   the Kafka cluster (unset: the embedded broker of `toneflow broker start`)
  TONEFLOW_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD, _SSL_CA_LOCATION
  TONEFLOW_DATA_DIR          the warehouse it trains from and the model registry it writes
  TONEFLOW_STUDENT           student kind of a first model (later runs continue the current one's)
  TONEFLOW_SEED, TONEFLOW_TORCH_THREADS, TONEFLOW_PROMOTE_MARGIN, TONEFLOW_TEST_FRACTION,
  TONEFLOW_VAL_FRACTION, TONEFLOW_LABEL_MIN_SERVED, TONEFLOW_AUGMENT_MIN_SLICE
"""


def register(sub: argparse._SubParsersAction) -> None:
    from trainer.config import add_arguments
    from trainer.service import GROUP

    svc = add_command(sub, "trainer", "the trainer service: train once per retrain trigger on toneflow.retrain",
                      DESCRIPTION)
    svc.add_argument("--group", default=GROUP, help="Kafka consumer group (one group = each trigger trained once)")
    svc.add_argument("--max-triggers", type=int, default=0, help="exit after handling this many records (0 = run "
                                                                  "until SIGTERM)")
    add_arguments(svc, exclude=("trigger_id", "incremental"))  # both come from each trigger
    svc.set_defaults(func=_trainer)


def _trainer(args: argparse.Namespace) -> int:
    from trainer.config import from_args
    from trainer.service import TrainerService

    service = TrainerService(get_settings(), from_args(args), group=args.group)

    def stop(signum: int, frame: FrameType | None) -> None:
        service.request_stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        service.run(max_records=args.max_triggers)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0

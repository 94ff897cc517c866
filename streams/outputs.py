"""What a stage emits: (topic, key, record). ``streams.batch_stage.Outbox`` produces them."""

from __future__ import annotations

from pydantic import BaseModel

# (topic, key, record): one output of a stage, keyed by project_id like every toneflow record.
Output = tuple[str, str | None, BaseModel]

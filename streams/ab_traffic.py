"""Simulated app traffic *through the serving API*: the A/B phase of the loop.

Each simulated user asks ``POST /v1/edit`` for a look; the server picks the user's A/B arm,
answers with the edit and emits the prompt event itself (with ``served_by``). The user reacts as
in ``streams.simulator`` (exports when the served edit is close to what they wanted, sometimes
tweaking it) and the app sends the export through the SDK. Completion rate per arm then shows up
in the ``ab_completion`` view without any change to the app.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from foundation.errors import ToneflowError
from foundation.settings import Settings
from schemas.events import ExportEvent
from schemas.validation import validate_edit
from streams.producer import EventProducer
from streams.simulator import Users


@dataclass
class AbResult:
    requests: int = 0
    failed: int = 0
    exports: int = 0
    by_variant: dict[str, list[int]] = field(default_factory=dict)  # variant -> [served, exported]


def run_ab_traffic(settings: Settings, url: str, projects: int, seed: int, *, token: str | None = None,
                   progress: bool = True) -> AbResult:
    import httpx
    from tqdm import tqdm

    users = Users(seed)
    result = AbResult()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with httpx.Client(base_url=url, timeout=30.0, headers=headers) as http, EventProducer(settings) as producer:
        for i, (intent, text) in enumerate(tqdm(users.draw(projects), desc="A/B projects", unit="proj",
                                                disable=not progress)):
            project, user = f"ab-{users.run}-{i:06d}", users.user_id(projects // 3)
            result.requests += 1
            response = http.post("/v1/edit", json={"prompt": text, "project_id": project, "user_id": user})
            if response.status_code != 200:
                result.failed += 1
                continue
            body = response.json()
            variant = body["served_by"]["variant"]
            counts = result.by_variant.setdefault(variant, [0, 0])
            counts[0] += 1
            exports, final_edit, delay = users.react(intent, validate_edit(body["edit"]))
            if not exports:
                continue
            # Exports happen later in user time; keep them within a minute so the run can finish.
            ts = datetime.now(UTC) + timedelta(seconds=min(delay, 60.0))
            producer.send_export(ExportEvent(event_id=f"ex-{project}", project_id=project, user_id=user, ts=ts,
                                             final_edit=final_edit))
            counts[1] += 1
            result.exports += 1
    if result.failed and result.failed == result.requests:
        msg = f"every request to {url} failed; is `toneflow serve` running?"
        raise ToneflowError(msg)
    return result

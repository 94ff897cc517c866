"""Who writes the new intents around the student's mistakes (the paper used an LLM).

* ``LLMIntentWriter``: any OpenAI-compatible endpoint (``TONEFLOW_OPENAI_*``), used when
  ``TONEFLOW_TEACHER=openai``; asked for short look requests near each mistake ("cool tone" from
  "cool morning").
* offline: ``augment.neighbour_intents`` recombines a word of the mistake with the training
  vocabulary. Deterministic, free, and honest about being a stand-in.

Either way the teacher labels the new intents; this module only writes prompts.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from foundation.settings import Settings

log = logging.getLogger(__name__)

SYSTEM = ("You write look requests that users of a photo and video editing app type: 1 to 6 words, lower case, "
          "no quotes. Given requests that a model handled badly, write new and different requests close to them "
          "in meaning or sharing a key word (for 'cool morning': 'cool tone', 'crisp morning light'). "
          "One request per line, no numbering.")
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


class LLMIntentWriter:
    def __init__(self, settings: Settings) -> None:
        from openai import OpenAI

        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "not-needed"
        self.client = OpenAI(base_url=settings.openai_base_url, api_key=key, timeout=settings.teacher_timeout_s,
                             max_retries=settings.teacher_max_retries)
        self.model = settings.openai_model

    def write(self, wrong: Sequence[str], per_prompt: int, batch: int = 20) -> list[str]:
        """About ``per_prompt`` new requests per wrong prompt; a failed call only loses its batch."""
        out: list[str] = []
        for i in range(0, len(wrong), batch):
            chunk = list(wrong[i:i + batch])
            user = "Handled badly:\n" + "\n".join(chunk) + f"\n\nWrite {per_prompt * len(chunk)} new requests."
            try:
                reply = self.client.chat.completions.create(
                    model=self.model, temperature=0.9,
                    messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}])
            except Exception as err:  # noqa: BLE001 - augmentation is best effort; the teacher path reports errors
                log.warning("intent writer: batch %d failed (%s); skipping it", i // batch, err)
                continue
            text = reply.choices[0].message.content or ""
            lines = (_BULLET.sub("", line).strip().strip("\"'").lower() for line in text.splitlines())
            out.extend(line for line in lines if 0 < len(line.split()) <= 8)
        return out


def llm_writer(settings: Settings) -> LLMIntentWriter | None:
    """The LLM writer when the OpenAI teacher is configured, else None (use the offline recombination)."""
    if settings.teacher != "openai" or not (settings.openai_base_url or settings.openai_api_key):
        return None
    return LLMIntentWriter(settings)

"""The OpenAI-compatible teacher (the paper's GPT-3.5-Turbo role): OpenAI, vLLM, Ollama, ...

Guarantees, on top of ``teacher.base``:
* at most ``concurrency`` requests in flight per teacher; each request times out after
  ``timeout_s``; transient failures are retried (``teacher.retry``), then reported as
  ``teacher_unavailable`` (retryable), never raised;
* duplicates inside one ``label`` call and prompts already in the cache make no HTTP request; such
  labels say ``cached=True`` and cost 0, so summing ``cost`` over labels equals the spend;
* output that is not JSON is asked for once more (``invalid_output_retries``); output that fails
  validation is repaired by ``schemas.repair_edit`` when the policy allows (at most ``max_repairs``
  changes, and something valid must be left), else ``teacher_invalid_output`` with the reason;
* tokens and cost come from the server's ``usage``, priced per 1M tokens; a count that is not one
  (negative, beyond ``schemas.events.MAX_TOKENS``, NaN) is clamped and counted in
  ``meter.usage_clamped``; past ``spend_limit_usd`` no request is sent (``spend_limit``, retryable);
* 401/403/404 raise ``TeacherConfigError``: the key, URL or model is wrong for every prompt.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

from foundation.settings import Settings
from schemas.events import MAX_TOKENS, TeacherRef
from schemas.exceptions import RepairFailed
from schemas.text import normalise_prompt
from schemas.validation import RepairResult, repair_edit
from teacher import prompting
from teacher.base import Label
from teacher.cache import LabelCache
from teacher.exceptions import TeacherConfigError
from teacher.retry import Backoff, classify_status, retry_after_s
from teacher.spend import SpendMeter

StructuredOutput = Literal["json_schema", "tools"]
# Repairs that remove content: if they leave an empty edit, the model's answer was not usable.
_LOSSY = frozenset({"dropped_tool", "dropped_key", "unknown_filter", "dropped_value"})
# An edit JSON is ~300 tokens at most; the cap stops a runaway generation from billing thousands.
MAX_COMPLETION_TOKENS = 600


class OpenAITeacher:
    name = "openai"

    def __init__(self, *, model: str, base_url: str | None = None, api_key: str | None = None,
                 concurrency: int = 8, timeout_s: float = 30.0, max_retries: int = 4,
                 price_input_per_1m: float = 0.0, price_output_per_1m: float = 0.0,
                 spend_limit_usd: float | None = None, temperature: float = 0.0,
                 structured_output: StructuredOutput = "json_schema", cache_path: Path | None = None,
                 backoff: Backoff | None = None, invalid_output_retries: int = 1, max_repairs: int = 10,
                 seed: int | None = None) -> None:
        if api_key is None and base_url is None:
            msg = "the openai teacher needs TONEFLOW_OPENAI_API_KEY (or TONEFLOW_OPENAI_BASE_URL for a local server)"
            raise TeacherConfigError(msg)
        self.model = model
        self.base_url = base_url
        # Local servers (vLLM, Ollama) ignore the key but the SDK insists on one.
        self._api_key = api_key or "not-needed"
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.temperature = temperature
        self.structured_output: StructuredOutput = structured_output
        self.backoff = backoff or Backoff()
        self.invalid_output_retries = invalid_output_retries
        self.max_repairs = max_repairs
        self.meter = SpendMeter(price_input_per_1m, price_output_per_1m, spend_limit_usd)
        self.cache = LabelCache(cache_path)
        self.cache_hits = 0
        self.version = f"{model}@{prompting.prompt_version()}"
        self.ref = TeacherRef(model=model, version=self.version)
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._sem: asyncio.Semaphore | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> OpenAITeacher:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        options: dict[str, Any] = {
            "model": settings.openai_model, "base_url": settings.openai_base_url, "api_key": key,
            "concurrency": settings.teacher_concurrency, "timeout_s": settings.teacher_timeout_s,
            "max_retries": settings.teacher_max_retries,
            "price_input_per_1m": settings.teacher_price_input_per_1m,
            "price_output_per_1m": settings.teacher_price_output_per_1m,
            "spend_limit_usd": settings.teacher_spend_limit_usd,
            "structured_output": settings.teacher_structured_output,
            "cache_path": settings.data_path / "teacher" / "cache.sqlite3" if settings.teacher_cache else None,
        }
        return cls(**{**options, **overrides})

    # -- plumbing ------------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        # httpx clients and asyncio semaphores belong to one event loop; the CLI and tests run
        # several loops in turn, so both are rebuilt when the loop changes.
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        from openai import AsyncOpenAI

        self._loop = loop
        self._sem = asyncio.Semaphore(self.concurrency)
        # Retries are ours (classification, Retry-After cap, accounting), so the SDK's are off.
        self._client = AsyncOpenAI(api_key=self._api_key, base_url=self.base_url, max_retries=0,
                                   timeout=self.timeout_s)

    def _request(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "temperature": self.temperature,
                                  "max_tokens": MAX_COMPLETION_TOKENS}
        if self.structured_output == "json_schema":
            kwargs["response_format"] = prompting.response_format()
        else:
            kwargs["tools"] = [prompting.tool_spec()]
            kwargs["tool_choice"] = {"type": "function", "function": {"name": prompting.TOOL_NAME}}
        return kwargs

    def _text(self, response: Any) -> str:
        """The model's answer: the forced tool call's arguments, else the message content."""
        message = response.choices[0].message
        calls = getattr(message, "tool_calls", None) or []
        if calls:
            return str(calls[0].function.arguments or "")
        return str(message.content or "")

    def _accept(self, text: str) -> tuple[RepairResult | None, str | None]:
        """(repaired edit, None) when the policy accepts the output, else (None, reason)."""
        try:
            result = repair_edit(text)
        except RepairFailed as err:
            return None, str(err)
        if len(result.repairs) > self.max_repairs:
            return None, f"output needed {len(result.repairs)} repairs (> {self.max_repairs}): {result.repairs[0]}"
        if result.edit.is_empty and any(r.kind in _LOSSY for r in result.repairs):
            return None, f"nothing valid left after repair: {'; '.join(map(str, result.repairs[:3]))}"
        return result, None

    # -- one prompt ----------------------------------------------------------------------------
    def _failure(self, prompt: str, kind: str, reason: str, started: float, tokens: tuple[int, int],
                 cost: float) -> Label:
        self.meter.failures[kind] = self.meter.failures.get(kind, 0) + 1
        return Label(prompt=prompt, edit=None, teacher=self.ref, latency_ms=(time.perf_counter() - started) * 1000,
                     prompt_tokens=tokens[0], completion_tokens=tokens[1], cost=cost, error_kind=kind, error=reason)

    async def _label_one(self, prompt: str) -> Label:
        import openai

        started = time.perf_counter()
        tokens_in = tokens_out = 0
        cost = 0.0
        transient = invalid = 0
        while True:
            wait: float | None = None
            problem = ""
            assert self._sem is not None
            async with self._sem:
                # Checked after the semaphore: calls queued behind it see the spend of those ahead.
                if self.meter.exhausted:
                    limit_reason = (f"spend limit reached: ${self.meter.cost_usd:.4f} of ${self.meter.limit_usd:.4f}; "
                                    "raise TONEFLOW_TEACHER_SPEND_LIMIT_USD to continue")
                    return self._failure(prompt, "spend_limit", limit_reason, started, (tokens_in, tokens_out), cost)
                self.meter.requests += 1
                try:
                    response = await self._client.chat.completions.create(
                        messages=prompting.messages(prompt), **self._request())
                except openai.APIStatusError as err:
                    verdict = classify_status(err.status_code)
                    if verdict == "config":
                        msg = (f"teacher endpoint answered {err.status_code} for model {self.model!r} at "
                               f"{self.base_url or 'api.openai.com'}: check TONEFLOW_OPENAI_API_KEY, "
                               "TONEFLOW_OPENAI_BASE_URL and TONEFLOW_OPENAI_MODEL")
                        raise TeacherConfigError(msg) from None
                    if verdict == "permanent":
                        if (self.structured_output == "json_schema" and err.status_code == 400
                                and "response_format" in str(err)):
                            # This endpoint has no JSON-Schema output: use a forced tool call instead.
                            self.structured_output = "tools"
                            continue
                        return self._failure(prompt, "teacher_rejected", f"HTTP {err.status_code}: {err.message}",
                                             started, (tokens_in, tokens_out), cost)
                    problem = f"HTTP {err.status_code}"
                    wait = retry_after_s(err.response.headers)
                except (openai.APITimeoutError, openai.APIConnectionError) as err:
                    problem = "timeout" if isinstance(err, openai.APITimeoutError) else f"connection error: {err}"
                except openai.APIResponseValidationError as err:
                    problem = f"response is not a chat completion: {err}"
                    invalid += 1
                    if invalid > self.invalid_output_retries:
                        return self._failure(prompt, "teacher_invalid_output", problem, started,
                                             (tokens_in, tokens_out), cost)
                    continue
                else:
                    usage = getattr(response, "usage", None)
                    p_tok = self.meter.tokens(getattr(usage, "prompt_tokens", 0))
                    c_tok = self.meter.tokens(getattr(usage, "completion_tokens", 0))
                    # Summed over retries, still within the contract's bound (schemas/events.py).
                    tokens_in, tokens_out = min(tokens_in + p_tok, MAX_TOKENS), min(tokens_out + c_tok, MAX_TOKENS)
                    cost += self.meter.record(p_tok, c_tok)
                    try:
                        text = self._text(response)
                    except (AttributeError, IndexError, TypeError):
                        text = ""
                    result, reason = self._accept(text)
                    if result is not None:
                        repairs = tuple(str(r) for r in result.repairs)
                        self.cache.put(prompt, self.version, result.edit, repairs)
                        return Label(prompt=prompt, edit=result.edit, teacher=self.ref,
                                     latency_ms=(time.perf_counter() - started) * 1000, prompt_tokens=tokens_in,
                                     completion_tokens=tokens_out, cost=cost, repairs=repairs)
                    invalid += 1
                    if invalid > self.invalid_output_retries:
                        return self._failure(prompt, "teacher_invalid_output", reason or "invalid output", started,
                                             (tokens_in, tokens_out), cost)
                    continue  # ask again at once: a malformed answer is not a sign of overload
            transient += 1
            delay = self.backoff.delay(transient, wait, self._rng) if transient <= self.max_retries else None
            if delay is None:
                why = (f"server asked to wait {wait:.0f}s (> {self.backoff.max_retry_after_s:.0f}s)"
                       if wait is not None and transient <= self.max_retries else f"{transient} attempts failed")
                return self._failure(prompt, "teacher_unavailable", f"{problem}; {why}; retry later", started,
                                     (tokens_in, tokens_out), cost)
            await asyncio.sleep(delay)

    # -- the contract --------------------------------------------------------------------------
    def cached_labels(self, prompts: Sequence[str]) -> list[Label | None]:
        """The labels the cache already holds (no request is made); None where a call is needed.

        The streams labeler answers these at once, so a cached prompt never waits behind the
        requests of prompts that are not cached.
        """
        out: list[Label | None] = []
        for prompt in prompts:
            hit = self.cache.get(prompt, self.version)
            if hit is not None:
                self.cache_hits += 1
            out.append(None if hit is None else
                       Label(prompt=prompt, edit=hit.edit, teacher=self.ref, cached=True, repairs=hit.repairs))
        return out

    async def label(self, prompts: Sequence[str]) -> list[Label]:
        self._bind_loop()
        results: list[Label | None] = [None] * len(prompts)
        first_of: dict[str, int] = {}
        todo: list[int] = []
        for i, prompt in enumerate(prompts):
            key = normalise_prompt(prompt)
            if key in first_of:
                continue
            first_of[key] = i
            hit = self.cache.get(prompt, self.version)
            if hit is not None:
                self.cache_hits += 1
                results[i] = Label(prompt=prompt, edit=hit.edit, teacher=self.ref, cached=True, repairs=hit.repairs)
            else:
                todo.append(i)
        fresh = await asyncio.gather(*(self._label_one(prompts[i]) for i in todo))
        for i, lab in zip(todo, fresh, strict=True):
            results[i] = lab
        for i, prompt in enumerate(prompts):
            if results[i] is None:  # a repeat inside this batch: share the first one's answer, free
                first = results[first_of[normalise_prompt(prompt)]]
                assert first is not None
                results[i] = replace(first, prompt=prompt, cached=first.ok, latency_ms=0.0, prompt_tokens=0,
                                     completion_tokens=0, cost=0.0)
        return [lab for lab in results if lab is not None]

    def warm(self) -> None:
        """Nothing to load here: the model runs behind the API, and the client opens on the first call."""

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
        self._client = None
        self._loop = None
        self.cache.close()

"""One settings object for the whole system.

Every field is read from an environment variable ``TONEFLOW_<FIELD>`` (case-insensitive), e.g.
``TONEFLOW_KAFKA_BOOTSTRAP``, ``TONEFLOW_TEACHER``, ``TONEFLOW_DATA_DIR``. The defaults run on a
fresh machine: data under ``./data``, the embedded broker, the offline teacher. Set the Kafka and
OpenAI fields to use real services. ``toneflow config`` prints the effective values with secrets
masked.

Each component reads its section; sections are grouped below by owner.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "TONEFLOW_"

TeacherKind = Literal["offline", "openai"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- storage -----------------------------------------------------------------------------
    data_dir: Path = Field(Path("data"), description="where the warehouse, models and broker state live")
    real_requests_dir: Path = Field(
        Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "real-requests",
        description="real human requests (dev.tsv, pool.txt), read at run time and never copied; "
                    "default ../shared/benchmarks/real-requests next to the repository")

    # --- Kafka (unset bootstrap = the embedded Tansu broker) ---------------------------------
    kafka_bootstrap: str | None = Field(None, description="bootstrap servers of a real Kafka; unset = embedded broker")
    kafka_security_protocol: str | None = Field(None, description="PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL")
    kafka_sasl_mechanism: str | None = Field(None, description="PLAIN, SCRAM-SHA-256, SCRAM-SHA-512")
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_ca_location: str | None = Field(None, description="CA bundle for SSL")
    topic_partitions: int = Field(4, ge=1, description="partitions of every toneflow topic on creation")
    topic_replication: int = Field(1, ge=1, description="replication factor on creation (3 in production)")
    broker_port: int = Field(0, ge=0, le=65535, description="embedded broker port; 0 = any free loopback port")

    # --- teacher -------------------------------------------------------------------------------
    teacher: TeacherKind = Field("offline", description="which teacher labels prompts")
    openai_base_url: str | None = Field(None, description="OpenAI-compatible endpoint (OpenAI, vLLM, Ollama)")
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    teacher_concurrency: int = Field(8, ge=1, description="max in-flight teacher calls per process")
    teacher_timeout_s: float = Field(30.0, gt=0, description="per-request timeout")
    teacher_max_retries: int = Field(4, ge=0, description="retries on 429/5xx/timeouts")
    # Finite and bounded: a label's cost (tokens x price, schemas/events.py) must stay a finite number.
    teacher_price_input_per_1m: float = Field(0.15, ge=0, le=1e6, allow_inf_nan=False, description="USD per 1M prompt tokens")
    teacher_price_output_per_1m: float = Field(0.60, ge=0, le=1e6, allow_inf_nan=False,
                                               description="USD per 1M completion tokens")
    teacher_spend_limit_usd: float | None = Field(None, ge=0, description="stop calling the teacher past this spend")
    teacher_temperature: float = Field(0.0, ge=0, le=2, description="offline teacher: seeded LLM-like variation")
    teacher_encoder_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="offline teacher's MiniLM: onnx = an ONNX Runtime graph exported once into model_cache_dir "
                            "(the teacher's single-prompt latency about halves), torch = PyTorch eager")
    model_cache_dir: Path | None = Field(None, description="graphs exported from the shipped weights (the offline "
                                                           "teacher's encoder); unset = $XDG_CACHE_HOME/toneflow, "
                                                           "else ~/.cache/toneflow")
    teacher_structured_output: Literal["json_schema", "tools"] = Field(
        "json_schema", description="openai teacher: JSON-Schema response format, or a forced tool call for endpoints without it")
    teacher_cache: bool = Field(True, description="openai teacher: cache edits by (normalised prompt, teacher version) "
                                                     "under data_dir")

    # --- streams -------------------------------------------------------------------------------
    label_batch: int = Field(512, ge=1, le=10_000, description="labeler: most prompts per teacher call (one batch)")
    label_in_flight: int = Field(64, ge=1, le=4096, description="labeler: most prompts waiting on teacher calls at once; "
                                 "set TONEFLOW_TEACHER_CONCURRENCY as high for a slow remote teacher")
    label_backlog: int = Field(4096, ge=1, le=100_000, description="labeler: most prompts held for the teacher "
                               "(queued or in flight); past it the labeler stops reading (back-pressure)")
    join_ttl_s: float = Field(6 * 3600, gt=0, description="how long the join waits for the other side")
    retrain_threshold: int = Field(500, ge=1, description="new accepted examples that trigger a retrain")
    retrain_min_interval_s: float = Field(600, ge=0, description="minimum seconds between retrains")
    retrain_quality_floor: float = Field(0.0, ge=0, le=1, description="min example quality counted by the trigger")
    trigger_check_s: float = Field(5.0, gt=0, description="how often the retrain trigger counts new data")
    worker_stall_s: float = Field(
        20.0, gt=0, description="worker liveness: a consumed partition with records whose committed offset has not "
                                "moved for this long (broker reachable) is a stall; the worker exits with code 75")
    student_share_cap: float = Field(0.5, ge=0, le=1, description="max share of student-served examples in a training set")
    sim_mix: str = Field("looks=0.4,explicit=0.35,real=0.25",
                         description="simulated users: shares of look requests, explicit adjustment requests "
                                     "and real requests (from real_requests_dir/pool.txt)")

    # --- trainer -------------------------------------------------------------------------------
    student: str = Field("minilm", description="default student type")
    seed: int = 0
    promote_margin: float = Field(0.0, ge=0, le=1, description="promote if candidate overall >= current - margin")
    test_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of intent groups (trainer/grouping.py) in the test split")
    val_fraction: float = Field(0.1, gt=0, lt=0.5, description="share of intent groups (trainer/grouping.py) in validation")
    label_min_served: int = Field(3, ge=1, description="export-rate label policy: min times an edit was served")
    augment_min_slice: int = Field(20, ge=0, description="augment look slices with fewer training examples; 0 = off")
    torch_threads: int = Field(0, ge=0, description="torch CPU threads for training; 0 = auto (cores not busy)")
    promote_delta_e_margin: float = Field(
        0.0, ge=0, description="offline gate: the candidate's rendered ΔE may exceed the champion's by this much")
    promote_request_margin: float = Field(
        0.0, ge=0, le=1, description="offline gate: the candidate's real-request accuracy may trail the champion's by this")

    # --- serving -------------------------------------------------------------------------------
    serve_host: str = "127.0.0.1"
    serve_port: int = 8080
    serve_token: SecretStr | None = Field(None, description="bearer token required by `toneflow serve` if set")
    serve_signing_key: SecretStr | None = Field(
        None, description="HMAC key the server signs served edits with and the worker checks (schemas/trust.py); "
                          "unset = a random key in <data_dir>/secrets/serve-signing.key")
    serve_reload_interval_s: float = Field(0.5, gt=0,
                                          description="how often the server checks for a promoted model / new traffic plan")
    serve_student_share: float = Field(1.0, ge=0, le=1, description="student share of traffic when no traffic plan "
                                                                    "exists and a student is current")
    serve_max_batch: int = Field(32, ge=1, description="requests answered by one student forward pass (micro-batching)")
    serve_workers: int = Field(0, ge=0, description="student forward passes `serve` runs at once (threads); 0 = one per core")
    serve_emit_events: bool = Field(True, description="`toneflow serve` sends each served prompt to toneflow.prompts")
    serve_torch_threads: int = Field(1, ge=0, description="torch threads per student forward pass in `serve`; 0 = all cores")
    serve_quantize: bool = Field(True, description="serve MiniLM students in int8 (the ONNX int8 export, else PyTorch int8)")
    student_runtime: Literal["onnx", "torch"] = Field(
        "onnx", description="`serve`/`predict` run a version's ONNX export when it has one; torch = always PyTorch")
    registry_export_onnx: bool = Field(True, description="promote also stores the ONNX export (fp32 + int8) of MiniLM")
    rollout_min_sample: int = Field(200, ge=1, description="projects per arm before the online gate decides")
    rollout_margin: float = Field(0.02, ge=0, le=1, description="non-inferiority margin on project_completion_rate")
    rollout_alpha: float = Field(0.05, gt=0, lt=0.5, description="one-sided significance level of the online gate")
    rollout_candidate_share: float = Field(0.2, gt=0, lt=1, description="traffic share a new candidate starts with")

    # --- console (`toneflow ui`) ---------------------------------------------------------------
    ui_host: str = Field("127.0.0.1", description="`toneflow ui` bind address (loopback: it can promote models)")
    ui_port: int = Field(8090, ge=1, le=65535, description="`toneflow ui` port (its own, never the API's)")
    review_sample: int = Field(30, ge=1, le=1000, description="test prompts in a model's blind review queue")
    promote_min_reviews: int = Field(0, ge=0, description="promotion needs this many reviewed items of the "
                                                          "candidate (the console's Review page); 0 = off")
    promote_min_mimicry: float = Field(0.0, ge=0, le=1, description="with promote_min_reviews: min share of reviews "
                                                                    "saying the student matches the teacher")

    # --- editor --------------------------------------------------------------------------------
    editor_lut_size: int = Field(33, ge=9, le=129, description="grid size of the 3D LUT an edit is folded into")
    editor_lut_backend: Literal["auto", "ocio", "pillow", "numpy"] = Field(
        "auto", description="3D LUT lookup: auto = PyOpenColorIO, else Pillow; numpy is the slow reference")
    editor_threads: int = Field(0, ge=0, description="render threads (image strips); 0 = one per CPU core")
    editor_cache_dir: Path | None = Field(None, description="generated filter .cube files; unset = <data_dir>/editor/looks")
    editor_video_preset: str = Field("veryfast", description="x264 preset for video output")
    editor_video_crf: int = Field(20, ge=0, le=51, description="x264 quality (lower = better, bigger)")

    # ---------------------------------------------------------------------------------------
    def as_dict(self, *, masked: bool = True) -> dict[str, Any]:
        """All settings as plain values; secrets shown as '***' (or null when unset)."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "***" if masked else value.get_secret_value()
            elif isinstance(value, Path):
                value = str(value)
            out[name] = value
        return out

    @staticmethod
    def env_name(field: str) -> str:
        return ENV_PREFIX + field.upper()

    @property
    def data_path(self) -> Path:
        return self.data_dir.expanduser().resolve()

    @property
    def model_cache_path(self) -> Path:
        # Not under data_dir: every test, demo and worker with a fresh data dir would export again.
        if self.model_cache_dir is not None:
            return self.model_cache_dir.expanduser().resolve()
        xdg = os.environ.get("XDG_CACHE_HOME")
        return (Path(xdg) if xdg else Path.home() / ".cache") / "toneflow"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()

"""docker-compose.yml cannot be started here (no Docker engine); check it against the settings."""

from pathlib import Path

import yaml

from foundation.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[1]


def _compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_images():
    services = _compose()["services"]
    assert {"kafka", "worker", "trainer", "server"} <= set(services)
    assert services["kafka"]["image"].startswith("apache/kafka:")
    env = services["kafka"]["environment"]
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]  # KRaft
    assert any("kafka-data" in v for v in services["kafka"]["volumes"])  # persistent log
    assert services["worker"]["command"][:2] == ["toneflow", "worker"]
    assert services["trainer"]["command"][:2] == ["toneflow", "trainer"]  # the service, not a one-off run
    assert "profiles" not in services["trainer"]  # it runs with the stack, listening for triggers
    gpu = services["trainer"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and "gpu" in gpu["capabilities"]
    assert (ROOT / services["worker"]["build"]["dockerfile"]).exists()


def test_every_toneflow_variable_is_a_setting():
    fields = {Settings.env_name(name) for name in Settings.model_fields}
    for name, service in _compose()["services"].items():
        for var in service.get("environment", {}) or {}:
            if var.startswith(ENV_PREFIX):
                assert var in fields, f"{name}: {var} is not a Settings field"
    worker_env = _compose()["services"]["worker"]["environment"]
    assert worker_env["TONEFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"


def test_dockerfile_copies_every_package():
    import tomllib

    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {p for p in include if "." not in p and "*" not in p}
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package


def test_worker_restarts_and_reports_its_liveness():
    """A stalled worker exits (code 75) and is restarted; the health check is the worker's own --check."""
    from toneflow.cli import build_parser

    worker = _compose()["services"]["worker"]
    assert worker["restart"] in ("always", "unless-stopped", "on-failure")
    check = worker["healthcheck"]["test"]
    assert check[0] == "CMD" and check[1:] == ["toneflow", "worker", "--check"]
    assert build_parser().parse_args(check[2:]).check is True  # a real flag of the real CLI
    assert worker["healthcheck"]["start_period"]  # startup (group join, table recovery) is not a failure

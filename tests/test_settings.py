from pathlib import Path

import pytest
from pydantic import ValidationError

from foundation.settings import Settings


def test_defaults_run_on_a_fresh_machine(monkeypatch):
    monkeypatch.delenv("TONEFLOW_DATA_DIR", raising=False)
    s = Settings()
    assert s.data_dir == Path("data")
    assert s.kafka_bootstrap is None and s.teacher == "offline"


def test_env_prefix_and_validation(monkeypatch):
    monkeypatch.setenv("TONEFLOW_KAFKA_BOOTSTRAP", "k1:9092,k2:9092")
    monkeypatch.setenv("TONEFLOW_TOPIC_PARTITIONS", "12")
    s = Settings()
    assert s.kafka_bootstrap == "k1:9092,k2:9092" and s.topic_partitions == 12
    monkeypatch.setenv("TONEFLOW_TOPIC_PARTITIONS", "0")
    with pytest.raises(ValidationError):
        Settings()


def test_secrets_are_masked(monkeypatch):
    monkeypatch.setenv("TONEFLOW_OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("TONEFLOW_KAFKA_SASL_PASSWORD", "hunter2")
    s = Settings()
    shown = s.as_dict()
    assert shown["openai_api_key"] == "***" and shown["kafka_sasl_password"] == "***"
    assert "sk-very-secret" not in repr(s) and "hunter2" not in str(shown)
    assert s.openai_api_key.get_secret_value() == "sk-very-secret"


def test_sasl_settings_pass_through_to_clients(monkeypatch):
    from foundation.kafka import client_config

    s = Settings(kafka_bootstrap="k:9093", kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="PLAIN",
                 kafka_sasl_username="u", kafka_sasl_password="p")
    conf = client_config(s)
    assert conf == {"bootstrap.servers": "k:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "PLAIN",
                    "sasl.username": "u", "sasl.password": "p"}

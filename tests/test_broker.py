"""The embedded broker: started once per session, real clients against it, no orphan processes."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from foundation import broker_state
from foundation.kafka import consumer_config, create_topics, producer_config
from foundation.osutil import pid_alive
from foundation.settings import Settings
from schemas.events import TOPICS

pytestmark = pytest.mark.broker


def test_topics_exist_with_configured_partitions(broker_settings):
    topics = AdminClient({"bootstrap.servers": broker_settings.kafka_bootstrap}).list_topics(timeout=10).topics
    for name in TOPICS:
        assert len(topics[name].partitions) == broker_settings.topic_partitions


def test_produce_and_consume_round_trip(broker_settings, unique):
    topic = f"test.roundtrip.{unique}"
    assert create_topics(broker_settings, [topic], partitions=1) == [topic]
    assert create_topics(broker_settings, [topic], partitions=1) == []  # idempotent
    errors = []
    producer = Producer(producer_config(broker_settings))
    for i in range(10):
        producer.produce(topic, key=b"p1", value=json.dumps({"i": i}).encode(),
                         on_delivery=lambda err, msg: err and errors.append(err))
    assert producer.flush(10) == 0 and not errors
    consumer = Consumer(consumer_config(broker_settings, f"g-{unique}"))
    consumer.subscribe([topic])
    seen = []
    try:
        for _ in range(200):
            msg = consumer.poll(0.2)
            if msg is not None and not msg.error():
                seen.append(json.loads(msg.value())["i"])
            if len(seen) == 10:
                break
    finally:
        consumer.close()
    assert seen == list(range(10))


def _cli(data_dir, *args):
    env = {**os.environ, "TONEFLOW_DATA_DIR": str(data_dir)}
    env.pop("TONEFLOW_KAFKA_BOOTSTRAP", None)
    return subprocess.run([sys.executable, "-m", "toneflow", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_cli_start_status_stop_leaves_no_process(tmp_path):
    started = _cli(tmp_path, "broker", "start")
    assert started.returncode == 0, started.stderr
    status = json.loads(_cli(tmp_path, "broker", "status", "--json").stdout)
    assert status["running"] is True and status["bootstrap"].startswith("127.0.0.1:")
    state = broker_state.read_state(Settings(data_dir=tmp_path))
    try:
        again = _cli(tmp_path, "broker", "start")  # a second start reuses the running broker
        assert again.returncode == 0 and status["bootstrap"] in again.stdout
    finally:
        stopped = _cli(tmp_path, "broker", "stop")
    assert stopped.returncode == 0
    assert not pid_alive(state.pid)
    assert json.loads(_cli(tmp_path, "broker", "status", "--json").stdout) == {"running": False, "bootstrap": None}


def test_without_a_broker_the_error_says_what_to_do(tmp_path):
    from foundation.errors import BrokerError
    from foundation.kafka import bootstrap_servers

    with pytest.raises(BrokerError, match="toneflow broker start"):
        bootstrap_servers(Settings(data_dir=tmp_path))


@pytest.mark.skipif(shutil.which("kcat") is None, reason="Debian's kcat is not installed")
def test_a_client_we_did_not_write(broker_settings, unique):
    """kcat (librdkafka) produces and consumes on a toneflow topic."""
    bootstrap = broker_settings.kafka_bootstrap
    probe = subprocess.run(["kcat", "-b", bootstrap, "-L", "-m", "5"], capture_output=True, text=True, timeout=30)
    if "ApiVersionRequest failed" in probe.stderr:
        # Debian bookworm's kcat links librdkafka 2.0.2, which cannot parse Tansu's ApiVersions
        # response; newer librdkafka (confluent-kafka's) can. Not a toneflow bug: see README.
        pytest.skip("this kcat's librdkafka cannot talk to Tansu (ApiVersionRequest)")
    value = f'{{"kcat": "{unique}"}}'
    produced = subprocess.run(["kcat", "-b", bootstrap, "-t", "toneflow.dlq", "-k", unique, "-P"],
                              input=value + "\n", capture_output=True, text=True, timeout=30)
    assert produced.returncode == 0, produced.stderr
    consumed = subprocess.run(["kcat", "-b", bootstrap, "-t", "toneflow.dlq", "-C", "-e", "-o", "beginning",
                               "-f", "%k %s\n"], capture_output=True, text=True, timeout=60)
    assert f"{unique} {value}" in consumed.stdout


def test_cli_start_creates_every_topic_the_worker_needs(tmp_path):
    """The join table's changelog too: a re-created broker has it before any worker starts."""
    from streams.topics import changelog_topic, worker_topics

    started = _cli(tmp_path, "broker", "start")
    assert started.returncode == 0, started.stderr
    try:
        state = broker_state.read_state(Settings(data_dir=tmp_path))
        topics = AdminClient({"bootstrap.servers": state.bootstrap}).list_topics(timeout=10).topics
        assert changelog_topic() in worker_topics()
        for name in worker_topics():
            assert len(topics[name].partitions) == Settings().topic_partitions, name
    finally:
        _cli(tmp_path, "broker", "stop")

"""Fixtures of the binding tests: the broker (KAFKA_BOOTSTRAP, set by test/kafka.sh run), the
schema module generated from proto/userevents.proto at test time, and an independent
consumer (confluent-kafka) that reads every record of a set of topics."""

from __future__ import annotations

import importlib
import os
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PROTO_DIR = REPO / "proto"


@pytest.fixture(scope="session")
def bootstrap() -> str:
    servers = os.environ.get("KAFKA_BOOTSTRAP")
    if not servers:
        pytest.skip("KAFKA_BOOTSTRAP is not set: run under test/kafka.sh run -- ...")
    return servers


def _compile_proto(tmp_path_factory, name: str):
    """The Python module protoc (grpcio-tools) generates from proto/<name>.proto."""
    from grpc_tools import protoc

    out = tmp_path_factory.mktemp("proto_" + name)
    rc = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={out}",
                      str(PROTO_DIR / f"{name}.proto")])
    assert rc == 0, f"protoc could not compile proto/{name}.proto"
    sys.path.insert(0, str(out))
    try:
        return importlib.import_module(f"{name}_pb2")
    finally:
        sys.path.remove(str(out))


@pytest.fixture(scope="session")
def pb2(tmp_path_factory):
    """userevents_pb2, generated from the repository's .proto."""
    return _compile_proto(tmp_path_factory, "userevents")


@pytest.fixture(scope="session")
def enriched_pb2(tmp_path_factory, pb2):
    """enriched_pb2 (it imports userevents_pb2: the pb2 fixture is loaded first)."""
    return _compile_proto(tmp_path_factory, "enriched")


@pytest.fixture
def topic_prefix() -> str:
    """A prefix no other test (or earlier run) uses: the topics of one test are its own."""
    return "pyt" + uuid.uuid4().hex[:12]


@pytest.fixture
def consume(bootstrap):
    """consume(topics) -> every record of those topics (confluent_kafka.Message list)."""
    return lambda topics, timeout=60.0: _consume_all(bootstrap, topics, timeout)


def _consume_all(bootstrap: str, topics: list[str], timeout: float) -> list:
    """Every record of ``topics`` from the first offset to the high watermark, read by plain
    confluent-kafka with explicit assignment (no consumer group to wait for). Committed
    records only (read_committed): a transactional topic's end is a commit marker, so a
    partition is done at its end-of-partition event or at its last record."""
    import time

    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "pyt-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "enable.partition.eof": True})
    try:
        meta = consumer.list_topics(timeout=10)
        parts, ends = [], {}
        for t in topics:
            assert t in meta.topics, f"topic {t} does not exist"
            for p in meta.topics[t].partitions:
                low, high = consumer.get_watermark_offsets(TopicPartition(t, p), timeout=10)
                if high > low:
                    ends[(t, p)] = high
                    parts.append(TopicPartition(t, p, OFFSET_BEGINNING))
        consumer.assign(parts)
        records, deadline = [], time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                key = (msg.topic(), msg.partition())
                if msg.error() and msg.error().code() == KafkaError._PARTITION_EOF:
                    ends.pop(key, None)
                    continue
                assert not msg.error(), msg.error()
                records.append(msg)
                if key in ends and msg.offset() + 1 >= ends[key]:
                    del ends[key]
        assert not ends, f"partitions not read to the end within {timeout}s: {ends}"
        return records
    finally:
        consumer.close()

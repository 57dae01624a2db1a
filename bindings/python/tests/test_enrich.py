"""The libenrich bindings (userevents.enrich): the pure pipeline and Python stages. No Kafka:
events are built with the protobuf module generated from proto/userevents.proto, and the
EnrichedEvent is decoded with the one generated from proto/enriched.proto."""

from __future__ import annotations

import time
import uuid

import pytest

from userevents import ConfigError, UserEventsError
from userevents.enrich import Pipeline, Stage, Verdict


def now_ms() -> int:
    return int(time.time() * 1000)


def make_event(pb2, event_id: bytes | None = None, **props) -> bytes:
    ts = now_ms()
    ev = pb2.Event(event_id=event_id or uuid.uuid4().bytes, type="page_view",
                   user_id="user-42", timestamp_ms=ts, sent_at_ms=ts, schema_version=1)
    for k, v in props.items():
        ev.properties[k].string_value = v
    return ev.SerializeToString()


def test_clock_session_keeps_and_starts_a_session(pb2, enriched_pb2):
    with Pipeline({"stages": "clock,session"}) as p:
        verdict, data, reason = p.process(make_event(pb2), now_ms())
        assert verdict == Verdict.KEEP == "keep", reason
        out = enriched_pb2.EnrichedEvent.FromString(data)
        assert out.event.type == "page_view"
        assert out.event.user_id == "user-42"
        assert out.session.sequence == 1
        assert out.session.session_id
        verdict, data, _ = p.process(make_event(pb2), now_ms())
        assert verdict == "keep"
        assert enriched_pb2.EnrichedEvent.FromString(data).session.sequence == 2
        assert p.stat("enriched") == 2
        assert p.flush(2**63 - 1) == []


def test_duplicate_is_dropped(pb2):
    event_id = uuid.uuid4().bytes
    with Pipeline({"stages": "dedup"}) as p:
        assert p.process(make_event(pb2, event_id), now_ms())[0] == "keep"
        verdict, data, _ = p.process(make_event(pb2, event_id), now_ms())
        assert verdict == Verdict.DROP
        assert data is None
        assert p.stat("dropped") == 1


def test_garbage_fails_undecodable():
    with Pipeline({"stages": "clock,session"}) as p:
        verdict, data, reason = p.process(b"\xff\xff\xff\xff not an event", now_ms())
        assert verdict == Verdict.FAIL
        assert data is None
        assert "undecodable" in reason


class AddProperty(Stage):
    name = "add_prop"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str | None]] = []

    def process(self, event):
        self.seen.append((event.type, event.user_id, event.get_string("page")))
        event.set_string("tagged", "yes")
        event.set_int("answer", 42)
        event.set_double("ratio", 0.5)
        assert event.get_int("answer") == 42
        return "keep"


class Boom(Stage):
    name = "boom"

    def process(self, event):
        raise RuntimeError("boom: " + event.type)


class Refuse(Stage):
    name = "refuse"

    def process(self, event):
        return ("fail", "refused by policy")


def test_python_stage_adds_properties(pb2, enriched_pb2):
    stage = AddProperty()
    with Pipeline({"stages": "clock,add_prop,session"}, stages=[stage]) as p:
        verdict, data, reason = p.process(make_event(pb2, page="/home"), now_ms())
        assert verdict == "keep", reason
    assert stage.seen == [("page_view", "user-42", "/home")]
    props = enriched_pb2.EnrichedEvent.FromString(data).event.properties
    assert props["tagged"].string_value == "yes"
    assert props["answer"].int_value == 42
    assert props["ratio"].double_value == 0.5
    assert props["page"].string_value == "/home"


def test_python_stage_exception_fails_with_its_message(pb2):
    with Pipeline({"stages": "boom"}, stages=[Boom()]) as p:
        verdict, data, reason = p.process(make_event(pb2), now_ms())
        assert verdict == Verdict.FAIL
        assert data is None
        assert "boom: page_view" in reason


def test_python_stage_fail_tuple(pb2):
    with Pipeline({"stages": "refuse"}, stages=[Refuse()]) as p:
        verdict, _, reason = p.process(make_event(pb2), now_ms())
        assert verdict == "fail"
        assert "refused by policy" in reason


def test_bad_config_key_raises():
    with pytest.raises(ConfigError, match="no.such.key") as info:
        Pipeline({"no.such.key": "1"})
    assert isinstance(info.value, ValueError)


def test_unknown_stage_raises():
    with pytest.raises(UserEventsError, match="nope"):
        Pipeline({"stages": "clock,nope"})


def test_closed_pipeline_refuses_calls(pb2):
    p = Pipeline({"stages": "clock"})
    p.close()
    p.close()
    with pytest.raises(UserEventsError, match="closed"):
        p.process(make_event(pb2), now_ms())
    with pytest.raises(ValueError):
        Pipeline({"stages": "clock"}).stat("no_such_counter")

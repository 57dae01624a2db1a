"""The binding's own behaviour, no broker needed: arguments, errors, lifecycle, threads.
(Clients point at a closed port; nothing here waits for a delivery.)"""

from __future__ import annotations

import enum
import threading
import uuid

import pytest

import userevents
from userevents import _ue

NOWHERE = {"kafka.bootstrap.servers": "127.0.0.1:9", "shutdown.timeout.ms": 100,
           "log.level": "error"}


@pytest.fixture
def client():
    with userevents.Client(NOWHERE) as c:
        yield c


def test_error_codes_match_the_library_names():
    for code in userevents.ErrorCode:
        assert _ue.err_name(code) == ("UE_OK" if code == 0 else "UE_ERR_" + code.name)


def test_version_is_the_loaded_library_version():
    assert userevents.version() == _ue.lib.ue_version_str().decode()


def test_unknown_config_key_raises_config_error_with_code():
    with pytest.raises(userevents.ConfigError) as e:
        userevents.Client({"no.such.key": "1"})
    assert e.value.code == userevents.ErrorCode.CONF_UNKNOWN
    assert e.value.name == "UE_ERR_CONF_UNKNOWN"
    assert "no.such.key" in str(e.value)


def test_invalid_config_value_raises_config_error_with_library_message():
    with pytest.raises(ValueError) as e:  # ConfigError is a ValueError too
        userevents.Client({"linger.ms": "soon"})
    assert e.value.code == userevents.ErrorCode.CONF_INVALID
    assert "linger.ms" in e.value.message and "soon" in e.value.message


def test_config_values_may_be_int_float_and_bool():
    with userevents.Client({**NOWHERE, "linger.ms": 7, "spool.fsync": False}) as c:
        assert c.track("ok") is not None


def test_config_must_be_a_mapping():
    with pytest.raises(TypeError):
        userevents.Client([("linger.ms", "5")])  # type: ignore[arg-type]


def test_client_creation_failure_raises_with_reason(tmp_path):
    with userevents.Client({**NOWHERE, "spool.dir": str(tmp_path)}):
        with pytest.raises(userevents.UserEventsError) as e:  # the spool is locked
            userevents.Client({**NOWHERE, "spool.dir": str(tmp_path)})
    assert "cannot create client" in str(e.value)


def test_track_returns_the_stamped_uuid7(client):
    eid = client.track("page_view", "user-1", {"path": "/"})
    assert isinstance(eid, uuid.UUID) and eid.version == 7
    assert client.track("page_view") != eid


def test_track_keeps_a_given_event_id(client):
    eid = uuid.uuid4()
    assert client.track("page_view", event_id=eid) == eid


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 201])
def test_bad_event_type_raises_invalid_argument(client, bad):
    with pytest.raises(userevents.InvalidArgumentError) as e:
        client.track(bad)
    assert e.value.code == userevents.ErrorCode.INVALID_ARG
    assert "event type" in str(e.value)


@pytest.mark.parametrize("reserved", ["enriched", "dead_letter", "Alerts"])
def test_reserved_event_type_raises_invalid_argument(client, reserved):
    with pytest.raises(userevents.InvalidArgumentError) as e:
        client.track(reserved)
    assert e.value.code == userevents.ErrorCode.TYPE_RESERVED
    assert "reserved" in str(e.value)


def test_event_type_must_be_a_str(client):
    with pytest.raises(TypeError, match="event type must be a str"):
        client.track(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [{"a": 1}, [1, 2], (1,), {1}])
def test_nested_property_raises_type_error(client, value):
    with pytest.raises(TypeError, match="nested values .* not supported"):
        client.track("t", properties={"p": value})


@pytest.mark.parametrize("value", [None, object(), b"bytes"])
def test_non_scalar_property_raises_type_error(client, value):
    with pytest.raises(TypeError, match="property 'p'"):
        client.track("t", properties={"p": value})


def test_property_key_must_be_a_str(client):
    with pytest.raises(TypeError, match="property key"):
        client.track("t", properties={1: "x"})  # type: ignore[dict-item]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_float_property_raises_invalid_argument(client, value):
    with pytest.raises(userevents.InvalidArgumentError, match="property 'p'"):
        client.track("t", properties={"p": value})


def test_empty_property_key_raises_invalid_argument(client):
    with pytest.raises(userevents.InvalidArgumentError):
        client.track("t", properties={"": 1})


def test_int_property_out_of_64_bits_raises_overflow(client):
    with pytest.raises(OverflowError):
        client.track("t", properties={"p": 2**63})
    client.track("t", properties={"p": 2**63 - 1, "q": -(2**63)})


def test_nul_in_a_string_raises_value_error(client):
    with pytest.raises(ValueError, match="NUL"):
        client.track("t", user_id="a\0b")


def test_lone_surrogate_raises_value_error(client):
    with pytest.raises(ValueError, match="not valid Unicode"):
        client.track("t", properties={"p": "\ud800"})


def test_int_like_and_enum_properties_are_accepted(client):
    class Color(enum.IntEnum):
        RED = 1

    class Name(str, enum.Enum):
        A = "a"

    client.track("t", properties={"c": Color.RED, "n": Name.A})


def test_unknown_context_field_raises_invalid_argument(client):
    with pytest.raises(userevents.InvalidArgumentError, match="context 'no.such'"):
        client.track("t", context={"no.such": "x"})


def test_context_screen_size_must_be_a_number(client):
    with pytest.raises(userevents.InvalidArgumentError):
        client.track("t", context={"screen.width": "wide"})
    client.track("t", context={"screen.width": 1280, "app.name": "shop"})


def test_negative_timestamp_raises_invalid_argument(client):
    with pytest.raises(userevents.InvalidArgumentError):
        client.track("t", timestamp_ms=-1)


def test_stats_is_a_dict_of_ints_with_the_library_keys(client):
    client.track("t")
    stats = client.stats()
    assert stats["tracked"] == 1
    names = [_ue.lib.ue_stat_name(i) for i in range(64)]
    names = [n.decode() for n in names if n is not None]
    assert "delivered" in names and set(stats) == set(names)
    assert all(isinstance(v, int) for v in stats.values())


def test_anonymous_id_comes_from_config():
    with userevents.Client({**NOWHERE, "anonymous.id": "anon-1"}) as c:
        assert c.anonymous_id == "anon-1"


def test_calls_after_close_raise_client_closed_and_close_twice_is_fine():
    c = userevents.Client(NOWHERE)
    c.close()
    c.close()
    assert c.closed
    for call in (lambda: c.track("t"), lambda: c.flush(0), lambda: c.identify("u"),
                 c.stats):
        with pytest.raises(userevents.ClientClosedError) as e:
            call()
        assert e.value.code == userevents.ErrorCode.SHUTDOWN


def test_flush_timeout_raises_timed_out(client):
    client.track("t")
    with pytest.raises(userevents.TimedOutError) as e:
        client.flush(0.05)
    assert isinstance(e.value, TimeoutError)
    assert e.value.code == userevents.ErrorCode.TIMED_OUT


def test_undelivered_events_are_reported_dropped_on_close():
    reports = []
    c = userevents.Client(NOWHERE, on_delivery=reports.append)
    ids = [c.track("t", "u") for _ in range(3)]
    c.close()
    assert sorted(r.event_id for r in reports) == sorted(ids)
    for r in reports:
        assert r.outcome == userevents.Outcome.DROPPED and not r.delivered
        assert isinstance(r.error, userevents.ClientClosedError)
        assert r.error.code == userevents.ErrorCode.SHUTDOWN


def test_queue_full_raises_queue_full_error():
    conf = {**NOWHERE, "queue.max.events": 1, "kafka.queue.buffering.max.messages": 1,
            "linger.ms": 1000}
    with userevents.Client(conf) as c:
        with pytest.raises(userevents.QueueFullError) as e:
            for _ in range(10000):
                c.track("t")
        assert e.value.code == userevents.ErrorCode.QUEUE_FULL
        assert c.stats()["dropped_queue_full"] >= 1


def test_exception_in_on_delivery_propagates_from_poll_and_keeps_the_rest():
    calls = []

    def boom(report):
        calls.append(report)
        if len(calls) == 1:
            raise RuntimeError("boom")

    c = userevents.Client(NOWHERE, on_delivery=boom)
    c.track("t")
    c.track("t")
    with pytest.raises(RuntimeError, match="boom"):
        c.close()
    assert c.poll() == 1 and len(calls) == 2


def test_close_from_on_delivery_is_allowed():
    holder = {}

    def on_delivery(report):
        holder["c"].close()

    c = holder["c"] = userevents.Client(NOWHERE, on_delivery=on_delivery)
    c.track("t")
    with pytest.raises(userevents.TimedOutError):
        c.flush(0.05)
    c.close()  # serves the DROPPED report, whose callback closes again: a no-op
    assert c.closed


def test_tracking_from_threads_while_closing_never_crashes():
    c = userevents.Client(NOWHERE)
    errors, start = [], threading.Barrier(5)

    def worker():
        start.wait()
        try:
            for i in range(2000):
                c.track("t", f"user-{i % 7}", {"i": i})
        except userevents.ClientClosedError:
            pass
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    start.wait()
    c.close()
    for t in threads:
        t.join()
    assert errors == []

"""libenrich's Kafka processor (userevents.enrich.Processor) and libwhsink's sink
(userevents.whsink.Sink) driven from Python against the real broker (test/kafka.sh): events
tracked from Python are enriched once each (a Python stage among the C ones) and loaded once
each into the embedded SQLite warehouse. Bad arguments raise clear exceptions."""

from __future__ import annotations

import collections
import json
import sqlite3
import threading
import time
import uuid

import pytest

import userevents
from userevents import ConfigError, EnrichError, SinkError, UserEventsError
from userevents.enrich import Processor, Stage
from userevents.whsink import Commit, Sink

USERS = 10
TYPES = ("page_view", "purchase")


class Tag(Stage):
    """Marks every event, and counts what it saw (on the thread driving the processor)."""

    name = "tag"

    def __init__(self) -> None:
        self.seen = 0
        self.threads: set[int] = set()

    def process(self, event):
        self.seen += 1
        self.threads.add(threading.get_ident())
        event.set_string("tagged", f"{event.type}/{event.user_id}")
        return "keep"


def wait_until(condition, timeout: float = 90.0, what: str = "condition") -> None:
    """Polls ``condition`` (no fixed sleeps): the processor and sink run in other threads."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def processor_config(bootstrap: str, prefix: str, **extra) -> dict:
    conf = {"kafka.bootstrap.servers": bootstrap, "group.id": prefix + "-enrich",
            "input.topics": f"^{prefix}\\.ev\\..*", "output.topic": prefix + ".enriched",
            "dead_letter.topic": prefix + ".dlq", "aggregates.topic": prefix + ".agg",
            "alerts.topic": prefix + ".alerts", "stages": "dedup,clock,tag,useragent,session",
            "txn.max.events": 200, "log.level": "warning"}
    conf.update(extra)
    return conf


def sink_config(bootstrap: str, prefix: str, db: str, **extra) -> dict:
    conf = {"kafka.bootstrap.servers": bootstrap, "kafka.group.id": prefix + "-sink",
            "topic": prefix + ".enriched", "warehouse.url": "sqlite:" + db,
            "dead_letter.topic": prefix + ".sink-dlq", "batch.max.ms": 200}
    conf.update(extra)
    return conf


def track(bootstrap: str, prefix: str, n: int) -> dict[uuid.UUID, tuple[str, str]]:
    """n events of USERS users, 1 in 50 sent twice with the same id (a device retry)."""
    tracked = {}
    conf = {"kafka.bootstrap.servers": bootstrap, "topic.template": prefix + ".ev.{type}",
            "log.level": "error", "linger.ms": 5}
    with userevents.Client(conf) as ue:
        for i in range(n):
            type_, user = TYPES[i % 2], f"user-{i % USERS}"
            eid = ue.track(type_, user_id=user, properties={"i": i},
                           context={"user_agent": "Mozilla/5.0 (X11; Linux x86_64) "
                                                  "Chrome/120.0 Safari/537.36"})
            if i % 50 == 0:
                ue.track(type_, user_id=user, properties={"i": i}, event_id=eid)
            tracked[eid] = (type_, user)
        ue.flush(30)
        assert ue.stats()["delivered"] == n + (n + 49) // 50
    return tracked


def test_track_enrich_and_load_each_event_once(bootstrap, topic_prefix, consume, enriched_pb2,
                                               tmp_path):
    """Guarantee: Python app -> Processor (C stages + a Python stage) -> Sink -> SQLite,
    each tracked id exactly once at every step, the Python stage's work in the rows."""
    n = 1000
    tracked = track(bootstrap, topic_prefix, n)
    raw = n + (n + 49) // 50

    # The processor, run() on a thread, stopped from this one.
    tag = Tag()
    with Processor(processor_config(bootstrap, topic_prefix), stages=[tag]) as p:
        runner = threading.Thread(target=p.run)
        runner.start()
        wait_until(lambda: p.stat("consumed") >= raw, what="the processor to read the input")
        p.stop()
        runner.join(30)
        assert not runner.is_alive(), "run() did not return after stop()"
        stats = p.stats()
    assert stats["consumed"] == raw and stats["enriched"] == n
    assert stats["dropped"] == raw - n  # the retried ids, dropped by dedup
    assert stats["dead_letters"] == 0 and stats["txn_commits"] >= 1
    assert tag.threads == {runner.ident}, "the Python stage ran off the driving thread"

    enriched = [enriched_pb2.EnrichedEvent.FromString(m.value())
                for m in consume([topic_prefix + ".enriched"])]
    ids = collections.Counter(uuid.UUID(bytes=e.event.event_id) for e in enriched)
    assert set(ids) == set(tracked) and max(ids.values()) == 1, "an id missing or twice"
    for e in enriched:
        type_, user = tracked[uuid.UUID(bytes=e.event.event_id)]
        assert e.event.properties["tagged"].string_value == f"{type_}/{user}"
        assert e.session.session_id and e.user_agent.browser == "Chrome"

    # The sink, driven by poll() here, into the embedded default warehouse.
    commits: list[Commit] = []
    db = str(tmp_path / "warehouse.db")
    with Sink(sink_config(bootstrap, topic_prefix, db), on_commit=commits.append) as sink:
        deadline = time.monotonic() + 90
        while sink.stat("rows_loaded") < n:
            assert time.monotonic() < deadline, f"loaded {sink.stat('rows_loaded')} of {n}"
            sink.poll(0.5)
        assert sink.stat("dead_letters") == 0
    assert sum(c.rows for c in commits) == n
    assert all(c.topic == topic_prefix + ".enriched" and c.next_offset > 0 for c in commits)

    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT event_id, type, user_id, properties FROM events").fetchall()
    loaded = collections.Counter(uuid.UUID(r[0]) for r in rows)
    assert set(loaded) == set(tracked) and max(loaded.values()) == 1
    for event_id, type_, user, props in rows:
        assert (type_, user) == tracked[uuid.UUID(event_id)]
        assert json.loads(props)["tagged"] == f"{type_}/{user}"


def test_two_processors_share_the_work(bootstrap, topic_prefix, consume, enriched_pb2):
    """Guarantee: two processors of one group (instance.id "a" and "b") split the tasks (one
    per input partition) and together enrich each tracked id once."""
    n = 600
    tracked = track(bootstrap, topic_prefix, n)
    raw = n + (n + 49) // 50
    procs = [Processor(processor_config(bootstrap, topic_prefix, stages="dedup,clock",
                                        **{"instance.id": name}))
             for name in ("a", "b")]
    runners = [threading.Thread(target=p.run) for p in procs]
    for r in runners:
        r.start()
    wait_until(lambda: sum(p.stat("consumed") for p in procs) >= raw,
               what="the two processors to read the input")
    wait_until(lambda: sorted(p.stat("tasks") for p in procs) == [1, 2],
               what="the 3 tasks to be shared")
    for p, r in zip(procs, runners):
        p.stop()
        r.join(30)
        p.close()
    enriched = [enriched_pb2.EnrichedEvent.FromString(m.value())
                for m in consume([topic_prefix + ".enriched"])]
    ids = collections.Counter(uuid.UUID(bytes=e.event.event_id) for e in enriched)
    assert set(ids) == set(tracked) and max(ids.values()) == 1, "an id missing or twice"


def enrich_all(bootstrap: str, prefix: str, raw: int) -> None:
    """Runs a processor (poll() on this thread) until it has read ``raw`` input records; it
    goes on from the group's committed offsets."""
    with Processor(processor_config(bootstrap, prefix, stages="dedup,clock")) as p:
        wait_until(lambda: p.poll(0.2) >= 0 and p.stat("consumed") >= raw,
                   what="the processor to read the input")


def load_until(sink: Sink, rows: int) -> None:
    wait_until(lambda: sink.poll(0.2) >= 0 and sink.stat("rows_loaded") >= rows,
               what=f"{rows} rows loaded")


def test_a_restarted_sink_loads_nothing_twice(bootstrap, topic_prefix, tmp_path):
    """Guarantee: a second sink on the same warehouse (a new consumer group, so Kafka's own
    offsets cannot help) starts where the warehouse's offsets say: it loads only the events
    that came after, none twice."""
    n, more = 200, 30
    track(bootstrap, topic_prefix, n)
    enrich_all(bootstrap, topic_prefix, n + 4)
    db = str(tmp_path / "w.db")
    conf = sink_config(bootstrap, topic_prefix, db)
    with Sink(conf) as sink:
        load_until(sink, n)

    track(bootstrap, topic_prefix, more)
    enrich_all(bootstrap, topic_prefix, more + 1)
    conf["kafka.group.id"] = topic_prefix + "-sink-2"
    with Sink(conf) as sink:
        load_until(sink, more)
        sink.flush(30)
        assert sink.stat("rows_loaded") == more, "the second sink loaded old rows again"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() \
            == (n + more, n + more)


def test_callback_exceptions_come_back_from_the_call(bootstrap, topic_prefix, tmp_path):
    """An exception in on_commit cannot cross into C: it is raised by the call that ran it,
    and the sink keeps working."""
    track(bootstrap, topic_prefix, 20)
    enrich_all(bootstrap, topic_prefix, 21)

    def boom(commit: Commit) -> None:
        raise KeyError(f"boom at {commit.next_offset}")

    with Sink(sink_config(bootstrap, topic_prefix, str(tmp_path / "w.db")),
              on_commit=boom) as sink:
        with pytest.raises(KeyError, match="boom"):
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                sink.poll(0.5)
        assert sink.stat("rows_loaded") == 20


# ---- bad input: clear errors, never a crash ---------------------------------------------------

def test_bad_processor_arguments_raise():
    with pytest.raises(ConfigError, match="no.such.key") as info:
        Processor({"no.such.key": 1})
    assert info.value.code == -2 and info.value.name == "ENR_ERR_CONF_UNKNOWN"
    with pytest.raises(ConfigError, match="txn.max.events"):
        Processor({"txn.max.events": 0})
    with pytest.raises(TypeError):
        Processor({"stages": "clock"}, stages=["not a stage"])
    with pytest.raises(TypeError):
        Processor(["not", "a", "mapping"])
    with pytest.raises(UserEventsError, match="nope"):
        Processor({"stages": "clock,nope", "kafka.bootstrap.servers": "127.0.0.1:1"})


def test_bad_sink_arguments_raise(tmp_path):
    with pytest.raises(ConfigError, match="no.such.key") as info:
        Sink({"no.such.key": 1})
    assert isinstance(info.value, ValueError) and info.value.name == "WHS_ERR_CONF_UNKNOWN"
    with pytest.raises(ConfigError, match="batch.max.rows"):
        Sink({"batch.max.rows": -1})
    with pytest.raises(ConfigError, match="warehouse.url"):
        Sink({"warehouse.url": "oracle://nope"})
    with pytest.raises(SinkError, match="cannot create sink"):
        Sink({"warehouse.url": "sqlite:" + str(tmp_path / "w.db")})  # no bootstrap servers
    with pytest.raises(ValueError, match="NUL"):
        Sink({"warehouse.url": "sqlite:a\0b"})


def test_closed_processor_and_sink_refuse_calls(bootstrap, topic_prefix, tmp_path):
    p = Processor(processor_config(bootstrap, topic_prefix, stages="clock"))
    p.close()
    p.close()  # a no-op
    assert p.closed
    for call in (lambda: p.poll(0), p.run, lambda: p.stat("consumed")):
        with pytest.raises(EnrichError, match="closed"):
            call()
    p.stop()  # harmless
    with pytest.raises(ValueError, match="unknown statistic"):
        with Processor(processor_config(bootstrap, topic_prefix, stages="clock")) as q:
            q.stat("no_such_counter")

    sink = Sink(sink_config(bootstrap, topic_prefix, str(tmp_path / "w.db")))
    with pytest.raises(ValueError, match="timeout"):
        sink.flush(-1)  # refused before reaching C
    sink.close()
    sink.close()
    for call in (lambda: sink.poll(0), sink.run, lambda: sink.flush(1), sink.stats):
        with pytest.raises(SinkError, match="closed"):
            call()


def test_stop_ends_run_and_poll_reports_it(bootstrap, topic_prefix):
    with Processor(processor_config(bootstrap, topic_prefix, stages="clock")) as p:
        threading.Timer(0.3, p.stop).start()
        p.run()  # returns once stopped
        with pytest.raises(EnrichError) as info:
            p.poll(0)
        assert info.value.name == "ENR_ERR_STOPPED"


def test_close_waits_for_run_in_another_thread(bootstrap, topic_prefix, tmp_path):
    p = Processor(processor_config(bootstrap, topic_prefix, stages="clock"))
    sink = Sink(sink_config(bootstrap, topic_prefix, str(tmp_path / "w.db")))
    runners = [threading.Thread(target=x.run) for x in (p, sink)]
    for r in runners:
        r.start()

    def driven_elsewhere(x) -> bool:
        try:
            x.poll(0)
        except RuntimeError as e:
            assert "another thread" in str(e)
            return True
        return False  # run() has not started yet: this poll() was allowed

    wait_until(lambda: driven_elsewhere(p) and driven_elsewhere(sink), what="run() to start")
    p.close()
    sink.close()
    for r in runners:
        r.join(30)
        assert not r.is_alive()


def test_kafka_stats_and_replication_health(bootstrap, topic_prefix, tmp_path):
    """librdkafka's statistics reach Python as dicts (broker state, per-partition lag), and
    the processor counts under-replicated partitions: none on the test's healthy broker."""
    track(bootstrap, topic_prefix, 20)
    conf = processor_config(bootstrap, topic_prefix, stages="clock",
                            **{"kafka.consumer.statistics.interval.ms": 100})
    with Processor(conf) as p:
        wait_until(lambda: p.poll(0.2) >= 0 and p.stat("consumed") >= 21, what="input read")
        wait_until(lambda: p.poll(0.1) >= 0 and p.kafka_stats() is not None,
                   what="the processor's first statistics")
        stats = p.kafka_stats()
        assert stats["type"] == "consumer" and stats["brokers"]
        assert any(t.startswith(topic_prefix + ".ev.") for t in stats["topics"])
        assert p.under_replicated_partitions(10.0) == 0

    sink_conf = sink_config(bootstrap, topic_prefix, str(tmp_path / "w.db"),
                            **{"kafka.statistics.interval.ms": 100})
    with Sink(sink_conf) as sink:
        wait_until(lambda: sink.poll(0.2) >= 0 and sink.kafka_stats() is not None,
                   what="the sink's first statistics")
        stats = sink.kafka_stats()
        assert stats["type"] == "consumer" and stats["brokers"]

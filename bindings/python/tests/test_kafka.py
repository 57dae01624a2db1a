"""Events tracked from Python against the real broker (test/kafka.sh), read back by an
independent consumer (confluent-kafka) and decoded with proto/userevents.proto."""

from __future__ import annotations

import collections
import threading
import time
import uuid

import userevents

USERS = 20
TYPES = ("page_view", "purchase")


def make_client(bootstrap, prefix, **kw):
    conf = {"kafka.bootstrap.servers": bootstrap, "topic.template": prefix + ".{type}",
            "log.level": "error", "context.app.name": "pytest", "linger.ms": 5}
    return userevents.Client(conf, **kw)


def decode(pb2, records):
    events = []
    for msg in records:
        ev = pb2.Event()
        ev.ParseFromString(msg.value())
        events.append((msg, ev))
    return events


def test_events_arrive_once_each_in_user_order_and_decode(bootstrap, topic_prefix, consume,
                                                          pb2):
    """Guarantee: every event tracked from Python arrives exactly once, keyed by user id,
    in per-user order, with every field as tracked."""
    n = 3000
    tracked = {}
    with make_client(bootstrap, topic_prefix) as ue:
        for i in range(n):
            user = f"user-{i % USERS:02d}"
            props = {"seq": i // USERS, "price": i / 4, "paid": i % 2 == 0, "sku": f"A-{i}"}
            eid = ue.track(TYPES[i % 2], user_id=user, properties=props,
                           context={"os.name": "linux", "screen.width": 1280},
                           session_id="s-1")
            tracked[eid] = (TYPES[i % 2], user, props)
        ue.flush(30)
        assert ue.stats()["delivered"] == n

    events = decode(pb2, consume([f"{topic_prefix}.{t}" for t in TYPES]))
    ids = collections.Counter(uuid.UUID(bytes=ev.event_id) for _, ev in events)
    assert len(events) == n, f"{len(events)} records for {n} events"
    assert set(ids) == set(tracked) and max(ids.values()) == 1, "an event twice or missing"

    last_seq = collections.defaultdict(lambda: -1)
    for msg, ev in sorted(events, key=lambda m: (m[0].partition(), m[0].offset())):
        type_, user, props = tracked[uuid.UUID(bytes=ev.event_id)]
        assert msg.topic() == f"{topic_prefix}.{type_}" and ev.type == type_
        assert msg.key() == user.encode() and ev.user_id == user
        assert ev.session_id == "s-1" and ev.schema_version == 1
        assert ev.context.app_name == "pytest" and ev.context.os_name == "linux"
        assert ev.context.screen_width == 1280
        p = ev.properties
        assert p["seq"].int_value == props["seq"]
        assert p["price"].double_value == props["price"]
        assert p["paid"].bool_value == props["paid"]
        assert p["sku"].string_value == props["sku"]
        # One user's events are in one partition of a topic, in the order tracked.
        key = (msg.topic(), user)
        assert props["seq"] > last_seq[key]
        last_seq[key] = props["seq"]


def test_delivery_callbacks_fire_once_per_event(bootstrap, topic_prefix):
    """Every tracked event gets exactly one DELIVERED report, served by flush()."""
    reports = []
    with make_client(bootstrap, topic_prefix, on_delivery=reports.append) as ue:
        ids = {ue.track("click", user_id=f"u{i % 5}") for i in range(500)}
        ue.flush(30)
        delivered = [r for r in reports if r.outcome == userevents.Outcome.DELIVERED]
        assert sorted(r.event_id for r in delivered) == sorted(ids)
        assert all(r.type == "click" and r.error is None and r.delivered for r in delivered)
        assert ue.poll() == 0


def test_poll_serves_reports_on_the_calling_thread(bootstrap, topic_prefix):
    seen_threads = set()
    reports = []

    def on_delivery(report):
        seen_threads.add(threading.get_ident())
        reports.append(report)

    with make_client(bootstrap, topic_prefix, on_delivery=on_delivery) as ue:
        ue.track("click", user_id="u")
        deadline = time.monotonic() + 30
        while not reports and time.monotonic() < deadline:
            ue.poll(1.0)
    assert reports and reports[0].delivered
    assert seen_threads == {threading.get_ident()}


def test_many_threads_track_into_one_client(bootstrap, topic_prefix, consume, pb2):
    """A Client shared by threads: every event arrives once; each thread's user in order."""
    per_thread, nthreads = 400, 4
    reports = []
    with make_client(bootstrap, topic_prefix, on_delivery=reports.append) as ue:
        def worker(t):
            for i in range(per_thread):
                ue.track("page_view", user_id=f"thread-{t}", properties={"seq": i})

        threads = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ue.flush(30)
    assert sum(r.delivered for r in reports) == per_thread * nthreads
    events = decode(pb2, consume([f"{topic_prefix}.page_view"]))
    assert len({ev.event_id for _, ev in events}) == len(events) == per_thread * nthreads
    seqs = collections.defaultdict(list)
    for msg, ev in sorted(events, key=lambda m: (m[0].partition(), m[0].offset())):
        seqs[ev.user_id].append(ev.properties["seq"].int_value)
    assert all(s == list(range(per_thread)) for s in seqs.values())


def test_identify_sets_user_id_and_key_of_later_events(bootstrap, topic_prefix, consume, pb2):
    with make_client(bootstrap, topic_prefix) as ue:
        ue.track("login")
        ue.identify("user-42")
        ue.track("login")
        ue.identify(None)
        ue.track("login")
        anon = ue.anonymous_id
        ue.flush(30)
    events = decode(pb2, consume([f"{topic_prefix}.login"]))
    assert collections.Counter(ev.user_id for _, ev in events) == {"user-42": 1, "": 2}
    for msg, ev in events:  # the key is the user id, else the anonymous id
        assert msg.key() == (ev.user_id or anon).encode()
        assert ev.anonymous_id == anon

#!/usr/bin/env python3
"""Events/s tracked from Python with userevents, beside confluent-kafka producing the same
events in the same run, to the same broker and topic layout (one topic per type, key = user
id, headers ue-event-id and ue-schema-version) with the same producer settings as the SDK's
defaults (idempotent, acks=all, zstd, linger.ms=5, murmur2_random).

Sides:
  userevents          Client.track(type, user_id, properties): the C library stamps the
                      UUIDv7 and timestamp and encodes the protobuf inside the clock.
  confluent+protobuf  what a Python app does without us: build the Event with the generated
                      protobuf class, serialize it, Producer.produce() (the usual alternative).
  confluent raw       Producer.produce() of bytes encoded before the clock: the floor of any
                      Python Kafka producer (no event building at all).

Each side is a fresh producer on fresh topics, warmed up first; the clock runs from the first
call until every event is acknowledged (flush). "call" is the caller-side time alone (track /
produce loop), "e2e" includes waiting for the last acknowledgement. CPU is this process's
(all threads) per event: the broker shares the machine's cores.

Usage: KAFKA_BOOTSTRAP=host:port python bench.py [--events N] [--reps R]
       (bindings/bench.sh starts a broker and runs this and the Go benchmark)
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import userevents

REPO = Path(__file__).resolve().parents[2]
TYPES = ("page_view", "click", "purchase")
USERS = [f"user-{i:04d}" for i in range(1000)]
PRODUCER_CONF = {"enable.idempotence": True, "acks": "all", "compression.type": "zstd",
                 "linger.ms": 5, "partitioner": "murmur2_random"}


def pb2_module():
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="ue-bench-pb2-")
    if protoc.main(["protoc", f"-I{REPO / 'proto'}", f"--python_out={out}",
                    str(REPO / "proto" / "userevents.proto")]) != 0:
        sys.exit("protoc failed on proto/userevents.proto")
    sys.path.insert(0, out)
    return importlib.import_module("userevents_pb2")


def props_of(i):
    return {"path": "/pricing", "seq": i, "price": 19.9, "logged_in": True}


class Sample:
    def __init__(self, n, t0, t_call, t_end, cpu0):
        self.n = n
        self.call_eps = n / (t_call - t0)
        self.e2e_eps = n / (t_end - t0)
        self.cpu_us = (time.process_time() - cpu0) * 1e6 / n


def run_userevents(bootstrap, n, tag):
    conf = {"kafka.bootstrap.servers": bootstrap, "topic.template": tag + ".{type}",
            "queue.max.events": n + 10000, "queue.max.bytes": 1 << 30, "log.level": "error"}
    with userevents.Client(conf) as ue:
        for i in range(2000):  # warm-up: connections, topic metadata
            ue.track(TYPES[i % 3], USERS[i % 1000], props_of(i))
        ue.flush(60)
        track = ue.track
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            track(TYPES[i % 3], USERS[i % 1000], props_of(i))
        t_call = time.perf_counter()
        ue.flush(120)
        t_end = time.perf_counter()
        s = Sample(n, t0, t_call, t_end, cpu0)
        stats = ue.stats()
    assert stats["delivered"] == n + 2000, stats
    return s


def _producer(bootstrap):
    from confluent_kafka import Producer

    failures = []

    def on_delivery(err, _msg):
        if err is not None:
            failures.append(err)

    return Producer({"bootstrap.servers": bootstrap, **PRODUCER_CONF,
                     "on_delivery": on_delivery}), failures


def _produce_loop(p, n, tag, payload_of):
    produce, poll = p.produce, p.poll
    for i in range(n):
        type_, user = TYPES[i % 3], USERS[i % 1000]
        value, eid = payload_of(i, type_, user)
        while True:
            try:
                produce(f"{tag}.{type_}", value, user,
                        headers=[("ue-event-id", eid), ("ue-schema-version", b"1")])
                break
            except BufferError:
                poll(0.01)  # librdkafka's queue is full: serve reports, retry
        if i % 1024 == 1023:
            poll(0)


def run_confluent(bootstrap, n, tag, payload_of):
    p, failures = _producer(bootstrap)
    _produce_loop(p, 2000, tag, payload_of)
    p.flush(60)
    cpu0, t0 = time.process_time(), time.perf_counter()
    _produce_loop(p, n, tag, payload_of)
    t_call = time.perf_counter()
    left = p.flush(120)
    t_end = time.perf_counter()
    assert left == 0 and not failures, (left, failures[:3])
    return Sample(n, t0, t_call, t_end, cpu0)


def encoder(pb2, anonymous_id):
    """Builds and serializes an Event as the SDK would (ids, times, properties, context)."""
    lib_version = userevents.version()

    def payload_of(i, type_, user):
        ev = pb2.Event()
        eid = uuid.uuid4().bytes  # a UUIDv7 generator in Python would only cost more
        ev.event_id = eid
        ev.type = type_
        ev.user_id = user
        ev.anonymous_id = anonymous_id
        now = int(time.time() * 1000)
        ev.timestamp_ms = now
        ev.sent_at_ms = now
        ev.schema_version = 1
        for k, v in props_of(i).items():
            val = ev.properties[k]
            if isinstance(v, bool):
                val.bool_value = v
            elif isinstance(v, int):
                val.int_value = v
            elif isinstance(v, float):
                val.double_value = v
            else:
                val.string_value = v
        ev.context.library_name = "libuserevents"
        ev.context.library_version = lib_version
        return ev.SerializeToString(), eid

    return payload_of


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=int(os.environ.get("UE_BENCH_EVENTS", 100000)))
    ap.add_argument("--reps", type=int, default=int(os.environ.get("UE_BENCH_REPS", 3)))
    args = ap.parse_args()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP")
    if not bootstrap:
        sys.exit("KAFKA_BOOTSTRAP is not set (bindings/bench.sh starts a broker)")
    pb2 = pb2_module()
    anon = str(uuid.uuid4())
    build = encoder(pb2, anon)
    pre = [build(i, TYPES[i % 3], USERS[i % 1000]) for i in range(3000)]  # i % 3000 keeps
    raw = lambda i, _t, _u: pre[i % 3000]  # noqa: E731   # type and user of event i

    sides = {"userevents": lambda tag: run_userevents(bootstrap, args.events, tag),
             "confluent+protobuf": lambda tag: run_confluent(bootstrap, args.events, tag, build),
             "confluent raw": lambda tag: run_confluent(bootstrap, args.events, tag, raw)}
    results = {name: [] for name in sides}
    run_id = uuid.uuid4().hex[:8]
    for rep in range(args.reps):  # interleaved, so drift on a shared machine hits all sides
        for k, (name, fn) in enumerate(sides.items()):
            results[name].append(fn(f"pyb{run_id}r{rep}s{k}"))
            print(f"rep {rep + 1}/{args.reps} {name}: "
                  f"{results[name][-1].e2e_eps:,.0f} events/s", file=sys.stderr)

    med = {name: (statistics.median(s.call_eps for s in r),
                  statistics.median(s.e2e_eps for s in r),
                  statistics.median(s.cpu_us for s in r)) for name, r in results.items()}
    import confluent_kafka

    print(f"\nPython {sys.version.split()[0]}, userevents {userevents.version()}, "
          f"confluent-kafka {confluent_kafka.version()[0]} (librdkafka "
          f"{confluent_kafka.libversion()[0]}), {args.events} events x {args.reps} reps, "
          f"medians, broker {bootstrap}, {os.cpu_count()} cores")
    print(f"{'side':<20} {'call ev/s':>12} {'e2e ev/s':>12} {'CPU us/ev':>10} "
          f"{'ue/side e2e':>12}")
    ue_e2e = med["userevents"][1]
    for name, (call, e2e, cpu) in med.items():
        print(f"{name:<20} {call:>12,.0f} {e2e:>12,.0f} {cpu:>10.2f} {ue_e2e / e2e:>12.2f}")
    for name, (call, e2e, _) in med.items():
        if name != "userevents":
            print(f"RATIO python userevents/{name.replace(' ', '_')} e2e {ue_e2e / e2e:.2f} "
                  f"call {med['userevents'][0] / call:.2f}")


if __name__ == "__main__":
    main()

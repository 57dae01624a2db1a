"""No leak over 100k events, after a warm-up: the C heap in use (glibc mallinfo2, every
arena) and the Python objects (tracemalloc) stay flat, and the process RSS (/proc/self/statm)
stays within the memory the configuration allows in flight. (RSS alone cannot show a leak:
malloc keeps the memory of the fullest moment of the queue.)"""

from __future__ import annotations

import ctypes
import gc
import os
import tracemalloc

import pytest

import userevents

PAGE = os.sysconf("SC_PAGE_SIZE")
KiB, MiB = 1 << 10, 1 << 20


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def c_heap_in_use() -> int | None:
    fn = getattr(ctypes.CDLL(None), "mallinfo2", None)  # glibc 2.33+
    if fn is None:
        return None
    fn.restype = _Mallinfo2
    mi = fn()
    return mi.uordblks + mi.hblkhd


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def test_no_leak_over_100k_events(bootstrap, topic_prefix):
    delivered = 0

    def on_delivery(report):
        nonlocal delivered
        delivered += report.delivered

    # At most 8 MiB queued (track() waits for room) and 10k events inside librdkafka.
    conf = {"kafka.bootstrap.servers": bootstrap, "topic.template": topic_prefix + ".{type}",
            "log.level": "error", "queue.max.bytes": 8 << 20, "queue.full.policy": "block",
            "queue.block.timeout.ms": 10000, "kafka.queue.buffering.max.messages": 10000}
    props = {"path": "/pricing", "n": 1, "price": 9.5, "ok": True}

    def run(client, n):
        for i in range(n):
            client.track("page_view", user_id=f"user-{i % 100}", properties=props)
            if i % 1000 == 999:
                client.poll()
        client.flush(60)

    def measure():
        gc.collect()
        return rss(), tracemalloc.get_traced_memory()[0], c_heap_in_use()

    with userevents.Client(conf, on_delivery=on_delivery) as ue:
        run(ue, 20_000)  # warm-up: connections, buffers, allocator pools
        tracemalloc.start()
        rss0, py0, c0 = measure()
        run(ue, 100_000)
        rss1, py1, c1 = measure()
        tracemalloc.stop()
        assert ue.stats()["delivered"] == 120_000

    assert delivered == 120_000
    c_growth = None if c0 is None else c1 - c0
    c_text = "unknown" if c_growth is None else f"{c_growth // KiB:+} KiB"
    print(f"\nover 100k events: C heap {c_text}, Python heap "
          f"{(py1 - py0) // KiB:+} KiB, RSS {(rss1 - rss0) / MiB:+.1f} MiB ({rss1 / MiB:.1f})")
    assert py1 - py0 < 256 * KiB, "Python objects grow with events tracked"
    assert rss1 - rss0 < 32 * MiB, f"RSS grew {(rss1 - rss0) / MiB:.1f} MiB over 100k events"
    if c_growth is None:
        pytest.skip("no mallinfo2 (not glibc 2.33+): C heap not checked")
    assert c_growth < 1 * MiB, f"C heap grew {c_growth // KiB} KiB over 100k events"

#!/usr/bin/env python3
"""report.py - the recovery time of each fault and the peak memory of each daemon life of a
chaos run, from the files test/chaos/run.sh left in its log directory:

  samples.tsv  t_ms KIND v,v,.. (ue-chaos watch: raw, enrich, pg, ch are per partition)
  faults.tsv   t_fault_ms t_back_ms description
  rss.tsv      daemon life VmHWM_kB why
  t0           when the producers started (Unix ms)

Recovery of a stage after a fault: for every partition of the stage that still had work (its
value at the fault is below its final value), when it moved again for good: the end of its
last stall (no progress for more than 2.5 s, seen in a sample that showed the same value or
could not read it) that began before the fault was over (3 s margin) and ended before the
next fault (at least 10 s after the fault was over, at most 180 s after it began), or its
first move when it did not stall. The stage's recovery is the latest of its partitions', in seconds after the fault:
a stage the fault did not touch shows about one sampling interval. A partition whose value
could not be read (-1) is judged on the samples around it.

Usage: report.py LOG_DIR
"""
import os
import sys

STAGES = [("raw", "raw"), ("enrich", "enrich"), ("postgres", "pg"), ("clickhouse", "ch")]
WINDOW_MS = 180000
STALL_MS = 2500  # no progress for longer than this (2.5 samples) is a stall


def read_samples(path):
    """{kind: [(t_ms, [v, ..]), ..]} in time order."""
    series = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) != 3:
                continue
            series.setdefault(parts[1], []).append(
                (int(parts[0]), [int(v) for v in parts[2].split(",")]))
    return series


def partition_recovery(points, t_fault, t_back, t_end):
    """When one partition moved again for good after t_fault: the end of its last stall that
    began before the fault was over (t_back, plus 3 s), or its first move; None when it had no
    work; 'never' when it did not move before t_end. points: [(t, value or -1)]. A stall needs
    evidence: a sample in it that showed no progress or could not be read, so that a late
    sample (a loaded machine) is not taken for a stall; one that begins later is jitter."""
    known = [v for _, v in points if v >= 0]
    if len(known) < 2:
        return None
    final = known[-1]
    prev, i = None, 0
    while i < len(points) and points[i][0] <= t_fault:
        prev = points[i][1] if points[i][1] >= 0 else prev
        i += 1
    if prev is not None and prev >= final:
        return None
    last, evidence, first_move, stall_end = t_fault, False, None, None
    for t, v in points[i:]:
        if t > t_end:
            break
        if v < 0 or prev is None or v <= prev:
            evidence = evidence or v < 0 or prev is not None
            prev = v if v >= 0 else prev
            continue
        first_move = first_move or t
        if evidence and t - last > STALL_MS and last <= t_back + 3000:
            stall_end = t
        last, evidence, prev = t, False, v
        if v >= final:
            break
    if first_move is None:
        return "never"
    return stall_end or first_move


def stage_recovery(samples, t_fault, t_back, t_end):
    """Seconds after t_fault until every busy partition moved again for good; None when no
    partition had work; '>S' when one never moved in the S seconds of the window."""
    if len(samples) < 2:
        return "no data"
    worst = None
    for j in range(len(samples[-1][1])):
        end = partition_recovery([(t, v[j]) for t, v in samples], t_fault, t_back, t_end)
        if end == "never":
            return f">{(t_end - t_fault) / 1000:.0f}"
        if end is not None:
            worst = end if worst is None else max(worst, end)
    return None if worst is None else (worst - t_fault) / 1000.0


def faults_table(log_dir, series, t0):
    faults = []
    with open(os.path.join(log_dir, "faults.tsv")) as f:
        for line in f:
            t_f, t_b, name = line.rstrip("\n").split(" ", 2)
            faults.append((int(t_f), int(t_b), name))
    t_last = max(s[-1][0] for s in series.values())
    print("\nrecovery per fault: seconds from the fault until each stage moved again for good")
    print("(every partition that still had work; '-': nothing left to do; '>S': one had not moved")
    print(" when the window ended, S s after the fault; sampling ~1 s)")
    head = f"{'at s':>7} {'took s':>6}  {'fault':<58}"
    print(head + "".join(f" {name:>10}" for name, _ in STAGES))
    for k, (t_f, t_b, name) in enumerate(faults):
        t_next = faults[k + 1][0] if k + 1 < len(faults) else t_last
        t_end = min(max(t_next, t_b + 10000), t_f + WINDOW_MS)
        cells = []
        for _, kind in STAGES:
            r = stage_recovery(series.get(kind, []), t_f, t_b, t_end)
            cells.append("-" if r is None else r if isinstance(r, str) else f"{r:.1f}")
        line = f"{(t_f - t0) / 1000:7.1f} {(t_b - t_f) / 1000:6.1f}  {name:<58}"
        print(line + "".join(f" {c:>10}" for c in cells))


def memory_table(log_dir):
    lives = {}
    with open(os.path.join(log_dir, "rss.tsv")) as f:
        for line in f:
            name, life, kb, why = line.split()
            lives.setdefault(name, []).append((int(life), kb, why))
    print("\npeak memory (VmHWM just before each kill, freeze or stop), MB")
    for name, rows in lives.items():
        cells = [f"life {life}: {int(kb) / 1024:.1f} ({why})" if kb.isdigit()
                 else f"life {life}: ? ({why})" for life, kb, why in rows]
        peaks = [int(kb) for _, kb, _ in rows if kb.isdigit()]
        peak = f"{max(peaks) / 1024:.1f}" if peaks else "?"
        print(f"  {name:<8} peak {peak:>7}   " + ", ".join(cells))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    log_dir = sys.argv[1]
    series = read_samples(os.path.join(log_dir, "samples.tsv"))
    if not series:
        sys.exit("report.py: no samples")
    with open(os.path.join(log_dir, "t0")) as f:
        t0 = int(f.read())
    faults_table(log_dir, series, t0)
    memory_table(log_dir)
    last = {k: sum(max(x, 0) for x in v[-1][1]) for k, v in series.items()}
    print(f"\nat the end: raw {last.get('raw')}, enrich committed {last.get('enrich')}, "
          f"postgres {last.get('pg_rows')} rows, clickhouse {last.get('ch_rows')} rows; "
          f"samples: " + ", ".join(f"{k} {len(v)}" for k, v in sorted(series.items())))


if __name__ == "__main__":
    main()

#!/usr/bin/env bash
# The demo: simulated users track events through the SDK into a real Kafka broker, with a
# broker outage in the middle, and then we read back what arrived.
#
#   1. 100 users produce 3000 events (page views, clicks, purchases); ue-track sends them.
#   2. The broker goes down; 2000 more events are tracked and wait in the disk spool.
#   3. The broker comes back; a new ue-track process replays the spool.
#   4. ue-tail reads every topic back: 5000 events, 5000 distinct ids, 0 duplicates.
#
# Uses the broker in KAFKA_BOOTSTRAP if set (the outage step is then skipped).
set -euo pipefail
cd "$(dirname "$0")/../.."
./setup.sh
make -j2 >/dev/null

if [ -z "${UE_DEMO_INSIDE:-}" ]; then
  export UE_DEMO_INSIDE=1
  exec test/kafka.sh run -- "$(pwd)/examples/ue-track/outage-demo.sh" "$@"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ue-demo.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix="demo$(date +%s)"
spool=$work/spool

# Simulated users: NDJSON lines with a realistic mix of event types and properties.
simulate() { # first_index count
  python3 - "$1" "$2" <<'PY'
import json, random, sys
first, count = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(first)
pages = ["/", "/pricing", "/docs", "/blog/launch", "/signup"]
for i in range(first, first + count):
    user = f"user-{rnd.randrange(100):03d}"
    kind = rnd.choices(["page_view", "click", "purchase"], weights=[70, 25, 5])[0]
    props = {"path": rnd.choice(pages), "n": i}
    if kind == "click":
        props["button"] = rnd.choice(["buy", "signup", "menu"])
    if kind == "purchase":
        props.update(sku=f"A-{rnd.randrange(1000)}", amount=round(rnd.uniform(5, 200), 2))
    print(json.dumps({"type": kind, "user_id": user, "properties": props}))
PY
}

track() { build/ue-track -q -s "$spool" -X "topic.template=$prefix.{type}" -X log.level=error "$@"; }

echo "== 1. tracking 3000 events with the broker up"
simulate 0 3000 | track
echo "== 2. broker down: tracking 2000 more; they wait in the spool ($spool)"
if [ -n "${UE_KAFKA_DIR:-}" ]; then
  test/kafka.sh stop-node 1 --dir "$UE_KAFKA_DIR"
  simulate 3000 2000 | track -X shutdown.timeout.ms=2000 2>/dev/null || true
  echo "   spool: $(du -sh "$spool" | cut -f1) in $(ls "$spool" | grep -c '\.seg$') segment file(s)"
  echo "== 3. broker back: a new process replays the spool"
  test/kafka.sh start-node 1 --dir "$UE_KAFKA_DIR"
  track </dev/null
else
  echo "   (KAFKA_BOOTSTRAP given: no outage, tracking them directly)"
  simulate 3000 2000 | track
fi
echo "== 4. what arrived, read back with ue-tail"
build/ue-tail -p "^$prefix\\..*" --count
echo "   one event: $(build/ue-tail -t "$prefix.purchase" --max 1)"

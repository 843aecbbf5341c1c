#!/usr/bin/env bash
# CPU time per message of the client (ringmq-perf) and the broker for one producer run:
# the figure to compare on a busy machine, where msg/s swings with the neighbours' load.
#
#   perf/scripts/cpu-per-msg.sh [seconds] [-w] [size] [shards]     (defaults 20 64 1024 1)
#
# Starts `ringmq-broker standalone --flush-mode async` on free loopback ports with a fresh
# data dir, runs `ringmq-perf producer -w W -s SIZE --duration SECONDS --json` against it,
# and prints msg/s, latency and user+system CPU µs per message of each process (from
# /proc/<pid>/stat, so the broker's figure includes its embedded NameServer). Uses the
# release binaries in ${CARGO_TARGET_DIR:-target}/release, or $RINGMQ_BIN_DIR (build them first). Everything
# is stopped and the data dir removed on exit. RINGMQ_PRELOAD=/path/lib.so runs both
# processes with that library preloaded (e.g. an allocator: libmimalloc.so.2).
# RINGMQ_PERF_ARGS adds options to ringmq-perf (e.g. "--workerThreads 1"), RINGMQ_FLUSH_MODE
# picks the broker's flush mode (default async; `memory` separates the disk from the code).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-20}"; W="${2:-64}"; SIZE="${3:-1024}"; SHARDS="${4:-1}"
TARGET="${RINGMQ_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}"
TICK="$(getconf CLK_TCK)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # host port seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
# utime + stime of a process (all its threads), in clock ticks
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

WORK="$(mktemp -d /tmp/cpu-per-msg.XXXXXX)"
BROKER_PID=""
cleanup() {
  if [[ -n "$BROKER_PID" ]]; then kill -TERM "$BROKER_PID" 2>/dev/null || true; wait "$BROKER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

NS_PORT="$(free_port)"; BROKER_PORT="$(free_port)"
env ${RINGMQ_PRELOAD:+LD_PRELOAD=$RINGMQ_PRELOAD} "$TARGET/ringmq-broker" standalone --namesrv-port "$NS_PORT" --port "$BROKER_PORT" \
  --data "$WORK/data" --shards "$SHARDS" --flush-mode "${RINGMQ_FLUSH_MODE:-async}" >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
wait_port 127.0.0.1 "$BROKER_PORT" 30 || { cat "$WORK/broker.log" >&2; exit 1; }
sleep 1
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
B0="$(cpu_ticks "$BROKER_PID")"
env ${RINGMQ_PRELOAD:+LD_PRELOAD=$RINGMQ_PRELOAD} "$TARGET/ringmq-perf" ${RINGMQ_PERF_ARGS:-} producer -n "127.0.0.1:$NS_PORT" -w "$W" -s "$SIZE" \
  --duration "$SECS" --json >"$WORK/perf.json" 2>"$WORK/perf.log" &
PERF_PID=$!
# sample the client's CPU just before it exits: poll its stat file
C=0
while kill -0 "$PERF_PID" 2>/dev/null; do
  C="$(cpu_ticks "$PERF_PID" 2>/dev/null || echo "$C")"
  sleep 0.2
done
wait "$PERF_PID"
B1="$(cpu_ticks "$BROKER_PID")"
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$(tail -1 "$WORK/perf.json")" "$C" "$((B1 - B0))" "$TICK" "$LOAD_BEFORE" "$LOAD_AFTER" <<'PY'
import json, sys
r = json.loads(sys.argv[1]); client, broker, tick = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
n = max(r["success"], 1)
us = lambda t: t / tick * 1e6 / n
l = r["latency_us"]
print(f"msg/s {r['tps']:.0f}  sent {r['success']}  failed {r['send_failed'] + r['response_failed']}  "
      f"p50 {l['p50_us']} us  p99 {l['p99_us']} us  mean {l.get('mean_us', 0)} us")
print(f"cpu/msg  client {us(client):.1f} us  broker {us(broker):.1f} us  total {us(client) + us(broker):.1f} us"
      f"   (client {client / tick:.2f} s, broker {broker / tick:.2f} s)")
print(f"load {sys.argv[5]} -> {sys.argv[6]}")
PY

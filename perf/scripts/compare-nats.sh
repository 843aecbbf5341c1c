#!/usr/bin/env bash
# Publish rate of NATS JetStream (file storage) vs ringmq (standalone, async flush) for
# 1 KiB messages on this machine, one after the other in the same run, loopback only.
#
#   perf/scripts/compare-nats.sh [seconds-per-system]     (default 15)
#
# NATS: Debian's nats-server (installed with apt-get if missing), JetStream on with file
# storage in a temp dir; load = perf/examples/nats_js_pub.rs, one connection with 256
# publishes awaiting their JetStream ack at any time.
# ringmq: ringmq-broker standalone --flush-mode async; load = ringmq-perf producer -s 1024 -w 64.
# Everything binds 127.0.0.1 on free ports; every process is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS="${1:-15}"
[[ "$SECS" =~ ^[0-9]+$ ]] || { echo "usage: $0 [seconds]" >&2; exit 2; }

if ! command -v nats-server >/dev/null 2>&1; then
  echo "== installing nats-server (Debian)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >/dev/null; }
fi

echo "== building (release)" >&2
cargo build --release -q -p ringmq-broker -p ringmq-perf
cargo build --release -q -p ringmq-perf --example nats_js_pub
TARGET="${CARGO_TARGET_DIR:-target}/release"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # host port seconds
  for _ in $(seq 1 $(( $3 * 10 ))); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- NATS JetStream ---
NATS_PORT="$(free_port)"
nats-server -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/nats" >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
wait_port 127.0.0.1 "$NATS_PORT" 30 || { cat "$WORK/nats.log" >&2; exit 1; }
echo "== NATS JetStream $(nats-server --version 2>&1 | head -1), ${SECS}s, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
NATS_JSON="$(timeout $(( SECS + 60 )) "$TARGET/examples/nats_js_pub" --addr "127.0.0.1:$NATS_PORT" \
  --size 1024 --inflight 256 --duration "$SECS")"
NATS_LOAD="$(cut -d' ' -f1 /proc/loadavg)"
kill -TERM "$NATS_PID"; wait "$NATS_PID" 2>/dev/null || true

# --- ringmq ---
NS_PORT="$(free_port)"; BROKER_PORT="$(free_port)"
"$TARGET/ringmq-broker" standalone --namesrv-port "$NS_PORT" --port "$BROKER_PORT" \
  --data "$WORK/ringmq" --flush-mode async >"$WORK/broker.log" 2>&1 &
BROKER_PID=$!
PIDS+=("$BROKER_PID")
wait_port 127.0.0.1 "$BROKER_PORT" 30 || { cat "$WORK/broker.log" >&2; exit 1; }
echo "== ringmq standalone (async flush), ${SECS}s, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
RINGMQ_JSON="$(timeout $(( SECS + 60 )) "$TARGET/ringmq-perf" producer -n "127.0.0.1:$NS_PORT" \
  -s 1024 -w 64 --duration "$SECS" --json 2>"$WORK/perf.log" | tail -1)"
RINGMQ_LOAD="$(cut -d' ' -f1 /proc/loadavg)"
kill -TERM "$BROKER_PID"; wait "$BROKER_PID" 2>/dev/null || true

field() { python3 -c 'import json,sys; print(round(json.loads(sys.argv[1])[sys.argv[2]]))' "$1" "$2"; }
echo "NATS JetStream (file, 256 in flight, 1 KiB): $(field "$NATS_JSON" rate) msg/s   load1 $NATS_LOAD   $NATS_JSON"
echo "ringmq (async flush, -w 64, 1 KiB):          $(field "$RINGMQ_JSON" tps) msg/s   load1 $RINGMQ_LOAD   $RINGMQ_JSON"

#!/usr/bin/env bash
# Stock-client check, run by hand (needs node, npm and python3; not part of CI):
# starts ringmq-namesrv, registers two brokers, and reads the route with ali-ons.
#   cargo build -p ringmq-namesrv && namesrv/compat/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="${NAMESRV_BIN:-$here/../../target/debug/ringmq-namesrv}"
work="$(mktemp -d)"
trap 'kill "${ns_pid:-}" "${reg_pid:-}" 2>/dev/null || true; rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null && npm install --silent ali-ons@3.12.0 >/dev/null)
"$bin" --listen 127.0.0.1:0 --kv-config-path "$work/kv.json" >"$work/ns.out" 2>"$work/ns.err" &
ns_pid=$!
for _ in $(seq 100); do [ -s "$work/ns.out" ] && break; sleep 0.1; done
addr="$(sed 's/.* on //' "$work/ns.out")"
python3 "$here/register_brokers.py" "$addr" 20 &
reg_pid=$!
sleep 2
NODE_PATH="$work/node_modules" node "$here/ali_ons_route.js" "$addr"

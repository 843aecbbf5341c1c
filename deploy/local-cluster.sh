#!/usr/bin/env bash
# ringmq local cluster: one NameServer and N brokers (two-master style, one cluster) on this
# host, on loopback, from the binaries in target/release.
#
#   deploy/local-cluster.sh start  [--brokers N] [--shards S] [options]
#   deploy/local-cluster.sh status [--dir DIR]
#   deploy/local-cluster.sh stop   [--dir DIR]
#
# Everything lives under --dir (default ./local-cluster): conf/ (generated broker configs),
# data/<broker>/ (stores), namesrv/ (kvConfig.json), logs/*.log, run/*.pid, cluster.env.
# `start` returns once every shard of every broker is registered with the NameServer
# (checked with `ringmq-broker admin clusterList`); `stop` sends SIGTERM and waits for a
# clean stop. Exit codes: 0 ok; 1 failed (start: nothing is left running); status: 0 all
# running, 1 some running, 3 none; 64 usage.
set -u -o pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname -- "$SCRIPT_DIR")

usage() {
    cat <<'EOF'
usage: deploy/local-cluster.sh start|stop|status [options]

  --dir DIR            where configs, data, logs and pid files live (default ./local-cluster;
                       env RINGMQ_CLUSTER_DIR)
  --bin DIR            directory holding ringmq-namesrv and ringmq-broker (default
                       <repo>/target/release; env RINGMQ_BIN_DIR)
  --brokers N          start: brokers broker-a, broker-b, … (default 2, at most 26)
  --shards S           start: shards per broker (default 1)
  --namesrv-port P     start: NameServer port (default 9876)
  --base-port P        start: base_port of broker-a (default 10911); broker k uses
                       P + 4*S*k, each shard i of it P_k + 4*i (VIP port 2 below, HA 1 above)
  --flush-mode M       start: async (default), sync or memory
  --timeout SECS       how long start waits for readiness and stop for a clean stop (default 60)
  -h, --help           this help

Build first: cargo build --release -p ringmq-broker -p ringmq-namesrv
EOF
}

COMMAND=${1:-}
[[ $# -gt 0 ]] && shift
CLUSTER_DIR=${RINGMQ_CLUSTER_DIR:-./local-cluster}
BIN_DIR=${RINGMQ_BIN_DIR:-$REPO_DIR/target/release}
BROKERS=2
SHARDS=1
NAMESRV_PORT=9876
BASE_PORT=10911
FLUSH_MODE=async
TIMEOUT=60

while (($# > 0)); do
    case "$1" in
    --dir) CLUSTER_DIR=${2:-}; shift ;;
    --bin) BIN_DIR=${2:-}; shift ;;
    --brokers) BROKERS=${2:-}; shift ;;
    --shards) SHARDS=${2:-}; shift ;;
    --namesrv-port) NAMESRV_PORT=${2:-}; shift ;;
    --base-port) BASE_PORT=${2:-}; shift ;;
    --flush-mode) FLUSH_MODE=${2:-}; shift ;;
    --timeout) TIMEOUT=${2:-}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'local-cluster.sh: unknown option %s (see --help)\n' "$1" >&2; exit 64 ;;
    esac
    shift || true
done

die_usage() {
    printf 'local-cluster.sh: %s\n' "$1" >&2
    exit 64
}

is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# Whether $1 is an integer in [$2, $3].
uint_in() {
    is_uint "$1" && (($1 >= $2 && $1 <= $3))
}

[[ -n "$CLUSTER_DIR" ]] || die_usage "--dir needs a directory"
uint_in "$TIMEOUT" 1 86400 || die_usage "--timeout must be a number of seconds, not '$TIMEOUT'"

RUN_DIR="$CLUSTER_DIR/run"
LOG_DIR="$CLUSTER_DIR/logs"
ENV_FILE="$CLUSTER_DIR/cluster.env"

# broker-a, broker-b, … for index 0, 1, …
broker_name() {
    local letters=abcdefghijklmnopqrstuvwxyz
    printf 'broker-%s' "${letters:$1:1}"
}

# The pid in pid file $1 if that process is alive and is one of ours, else nothing.
live_pid() {
    local file=$1 pid comm
    [[ -f "$file" ]] || return 0
    pid=$(head -n 1 -- "$file" 2>/dev/null)
    is_uint "$pid" || return 0
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 0
    # An exited process not yet reaped by its new parent is a zombie: gone for us.
    [[ "$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null)" == Z ]] && return 0
    # A pid file left by a crash may name a pid reused by something else: never touch that.
    [[ "$comm" == ringmq-* ]] && printf '%s' "$pid"
}

# Whether something listens on 127.0.0.1:$1.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The process names whose pid files exist, brokers first (stop order), NameServer last.
pid_names() {
    local file names=()
    for file in "$RUN_DIR"/broker-*.pid; do
        [[ -e "$file" ]] && names+=("$(basename -- "$file" .pid)")
    done
    [[ -e "$RUN_DIR/namesrv.pid" ]] && names+=(namesrv)
    printf '%s\n' "${names[@]}"
}

load_env() {
    if [[ -r "$ENV_FILE" ]]; then
        # Written by `start` below: plain KEY=value lines.
        # shellcheck disable=SC1090
        . "$ENV_FILE"
    fi
}

# Stops one process (SIGTERM, then SIGKILL after TIMEOUT). Returns 1 if it had to be killed.
stop_one() {
    local name=$1 pid deadline
    pid=$(live_pid "$RUN_DIR/$name.pid")
    if [[ -z "$pid" ]]; then
        rm -f -- "$RUN_DIR/$name.pid"
        printf '%-10s not running\n' "$name"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null
    deadline=$((SECONDS + TIMEOUT))
    while [[ -n "$(live_pid "$RUN_DIR/$name.pid")" ]] && ((SECONDS < deadline)); do
        sleep 0.2
    done
    if [[ -n "$(live_pid "$RUN_DIR/$name.pid")" ]]; then
        kill -KILL "$pid" 2>/dev/null
        sleep 0.2
        rm -f -- "$RUN_DIR/$name.pid"
        printf '%-10s pid %s did not stop within %s s of SIGTERM: killed (see %s)\n' \
            "$name" "$pid" "$TIMEOUT" "$LOG_DIR/$name.log"
        return 1
    fi
    rm -f -- "$RUN_DIR/$name.pid"
    if [[ "$name" == broker-* ]] && ! grep -q "stopped cleanly" "$LOG_DIR/$name.log" 2>/dev/null; then
        printf '%-10s pid %s stopped, but its log has no clean-stop line (see %s)\n' \
            "$name" "$pid" "$LOG_DIR/$name.log"
        return 1
    fi
    printf '%-10s pid %s stopped\n' "$name" "$pid"
    return 0
}

cmd_stop() {
    local name status=0 found=0
    while IFS= read -r name; do
        [[ -z "$name" ]] && continue
        found=1
        stop_one "$name" || status=1
    done < <(pid_names)
    ((found)) || printf 'no local cluster under %s\n' "$CLUSTER_DIR"
    return "$status"
}

# Fails the start: shows the log of what died, stops whatever was started.
abort_start() {
    printf 'local-cluster.sh: %s\n' "$1" >&2
    if [[ -n "${2:-}" && -r "$LOG_DIR/$2.log" ]]; then
        printf -- '--- last lines of %s ---\n' "$LOG_DIR/$2.log" >&2
        tail -n 20 -- "$LOG_DIR/$2.log" >&2
        printf -- '---\n' >&2
    fi
    cmd_stop >&2
    exit 1
}

# Starts "$@" in the background, detached from this shell, with its output in logs/$name.log.
spawn() {
    local name=$1
    shift
    nohup "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
    printf '%s\n' "$!" >"$RUN_DIR/$name.pid"
}

write_broker_config() {
    local index=$1 name port data
    name=$(broker_name "$index")
    port=$((BASE_PORT + 4 * SHARDS * index))
    data=$(cd -- "$CLUSTER_DIR" && pwd)/data/$name
    cat >"$CLUSTER_DIR/conf/$name.toml" <<EOF
# Generated by deploy/local-cluster.sh start; rewritten at every start.
[broker]
cluster_name = "DefaultCluster"
broker_name = "$name"
namesrv_addrs = ["127.0.0.1:$NAMESRV_PORT"]
listen_addr = "127.0.0.1"
base_port = $port
shards = $SHARDS
register_period_ms = 10000

[store]
path = "$data"
flush_mode = "$FLUSH_MODE"

[topics]
auto_create_topic = true
EOF
}

# Every broker shard name that must appear in clusterList.
expected_shards() {
    local b s
    for ((b = 0; b < BROKERS; b++)); do
        for ((s = 0; s < SHARDS; s++)); do
            printf '%s-s%s\n' "$(broker_name "$b")" "$s"
        done
    done
}

# Whether every shard is registered (prints what is missing otherwise).
cluster_ready() {
    local listing shard missing=""
    listing=$("$BIN_DIR/ringmq-broker" admin clusterList -n "127.0.0.1:$NAMESRV_PORT" 2>/dev/null) || {
        printf 'clusterList failed'
        return 1
    }
    while IFS= read -r shard; do
        grep -Eq "(^|[[:space:]])$shard([[:space:]]|$)" <<<"$listing" || missing+="$shard "
    done < <(expected_shards)
    [[ -z "$missing" ]] && return 0
    printf 'not registered yet: %s' "$missing"
    return 1
}

check_start_options() {
    uint_in "$BROKERS" 1 26 || die_usage "--brokers must be 1-26, not '$BROKERS'"
    uint_in "$SHARDS" 1 64 || die_usage "--shards must be 1-64, not '$SHARDS'"
    uint_in "$NAMESRV_PORT" 1 65535 || die_usage "--namesrv-port must be 1-65535"
    uint_in "$BASE_PORT" 1026 65535 || die_usage "--base-port must be at least 1026"
    ((BASE_PORT + 4 * SHARDS * BROKERS <= 65535)) || die_usage "--base-port too high for $BROKERS broker(s) of $SHARDS shard(s)"
    case "$FLUSH_MODE" in async | sync | memory) ;; *) die_usage "--flush-mode must be async, sync or memory" ;; esac
    local bin
    for bin in ringmq-namesrv ringmq-broker; do
        [[ -x "$BIN_DIR/$bin" ]] || die_usage "no $BIN_DIR/$bin: build it (cargo build --release -p ringmq-broker -p ringmq-namesrv) or pass --bin"
    done
}

cmd_start() {
    check_start_options
    mkdir -p -- "$RUN_DIR" "$LOG_DIR" "$CLUSTER_DIR/conf" "$CLUSTER_DIR/data" "$CLUSTER_DIR/namesrv" ||
        die_usage "cannot create $CLUSTER_DIR"
    local name
    while IFS= read -r name; do
        [[ -n "$name" && -n "$(live_pid "$RUN_DIR/$name.pid")" ]] &&
            die_usage "$name is already running (pid $(live_pid "$RUN_DIR/$name.pid")): run 'stop --dir $CLUSTER_DIR' first"
    done < <(pid_names)

    local b s port ports=("$NAMESRV_PORT")
    for ((b = 0; b < BROKERS; b++)); do
        for ((s = 0; s < SHARDS; s++)); do
            port=$((BASE_PORT + 4 * SHARDS * b + 4 * s))
            ports+=($((port - 2)) "$port" $((port + 1)))
        done
    done
    for port in "${ports[@]}"; do
        port_in_use "$port" && die_usage "port $port on 127.0.0.1 is in use: pick others with --namesrv-port / --base-port"
    done

    BIN_DIR=$(cd -- "$BIN_DIR" && pwd)
    cat >"$ENV_FILE" <<EOF
BROKERS=$BROKERS
SHARDS=$SHARDS
NAMESRV_PORT=$NAMESRV_PORT
BASE_PORT=$BASE_PORT
BIN_DIR=$BIN_DIR
EOF

    spawn namesrv env "RUST_LOG=${RUST_LOG:-info}" "$BIN_DIR/ringmq-namesrv" \
        --listen "127.0.0.1:$NAMESRV_PORT" \
        --kv-config-path "$(cd -- "$CLUSTER_DIR" && pwd)/namesrv/kvConfig.json"
    local deadline=$((SECONDS + TIMEOUT))
    until grep -q "listening on" "$LOG_DIR/namesrv.log" 2>/dev/null; do
        [[ -n "$(live_pid "$RUN_DIR/namesrv.pid")" ]] || abort_start "the NameServer exited during startup" namesrv
        ((SECONDS < deadline)) || abort_start "the NameServer did not listen within $TIMEOUT s" namesrv
        sleep 0.2
    done

    for ((b = 0; b < BROKERS; b++)); do
        name=$(broker_name "$b")
        write_broker_config "$b"
        spawn "$name" env "RUST_LOG=${RUST_LOG:-info}" "$BIN_DIR/ringmq-broker" start -c "$CLUSTER_DIR/conf/$name.toml"
    done

    local waiting
    while ! waiting=$(cluster_ready); do
        for ((b = 0; b < BROKERS; b++)); do
            name=$(broker_name "$b")
            [[ -n "$(live_pid "$RUN_DIR/$name.pid")" ]] || abort_start "$name exited during startup" "$name"
        done
        [[ -n "$(live_pid "$RUN_DIR/namesrv.pid")" ]] || abort_start "the NameServer exited" namesrv
        ((SECONDS < deadline)) || abort_start "not ready within $TIMEOUT s ($waiting)"
        sleep 0.5
    done

    printf 'local cluster ready under %s: NameServer 127.0.0.1:%s, %s broker(s) of %s shard(s)\n' \
        "$CLUSTER_DIR" "$NAMESRV_PORT" "$BROKERS" "$SHARDS"
    for ((b = 0; b < BROKERS; b++)); do
        port=$((BASE_PORT + 4 * SHARDS * b))
        printf '  %s  pid %s  127.0.0.1:%s (+4 per shard)  log %s\n' "$(broker_name "$b")" \
            "$(live_pid "$RUN_DIR/$(broker_name "$b").pid")" "$port" "$LOG_DIR/$(broker_name "$b").log"
    done
    printf 'export NAMESRV_ADDR=127.0.0.1:%s   # then: %s/ringmq-broker admin clusterList\n' "$NAMESRV_PORT" "$BIN_DIR"
}

cmd_status() {
    load_env
    local name pid running=0 total=0
    while IFS= read -r name; do
        [[ -z "$name" ]] && continue
        total=$((total + 1))
        pid=$(live_pid "$RUN_DIR/$name.pid")
        if [[ -n "$pid" ]]; then
            running=$((running + 1))
            printf '%-10s running  pid %s\n' "$name" "$pid"
        else
            printf '%-10s stopped\n' "$name"
        fi
    done < <(pid_names)
    if ((total == 0)); then
        printf 'no local cluster under %s\n' "$CLUSTER_DIR"
        return 3
    fi
    if [[ -n "$(live_pid "$RUN_DIR/namesrv.pid")" && -x "${BIN_DIR:-}/ringmq-broker" ]]; then
        printf '\n'
        "$BIN_DIR/ringmq-broker" admin clusterList -n "127.0.0.1:${NAMESRV_PORT:-9876}" || true
    fi
    ((running == total)) && return 0
    ((running == 0)) && return 3
    return 1
}

case "$COMMAND" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
-h | --help | help) usage ;;
*) usage >&2; exit 64 ;;
esac

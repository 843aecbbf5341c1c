#!/usr/bin/env bash
# ringmq host audit: checks every OS setting we recommend for a broker host and prints
#   check | current | recommended | status
# (or one JSON document with --json). Read-only: it changes nothing and writes no file.
# Exit code: 0 every check OK, 1 at least one WARN, 2 at least one FAIL, 64 usage error.
# docs/tuning.md explains every check; tuning/apply.sh applies the recommendations.
set -u -o pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$SCRIPT_DIR/common.sh"

usage() {
    cat <<'EOF'
usage: tuning/audit.sh [options]

Checks the host's kernel, limits, disk and filesystem settings for a ringmq broker.
Read-only. Exit code: 0 all OK, 1 warnings, 2 failures.

  --json               print one JSON document instead of the table
  --profile P          ringmq (default) or rocketmq: compare the sysctls with RocketMQ's
                       os.sh values instead of ours (docs/tuning.md has both)
  --data-dir DIR       the broker's store.path (default /var/lib/ringmq; the nearest
                       existing parent is checked if DIR does not exist yet)
  --disk DEV           the data disk (e.g. /dev/nvme0n1) instead of the one under --data-dir
  --pid PID            audit the limits and capabilities of this process (default: a running
                       ringmq-broker, else this shell)
  --base-port P        broker base_port (default 10911), for the ephemeral-port check
  --shards N           shards per broker (default: CPUs online), for the same check
  -h, --help           this help

Environment: RINGMQ_TUNING_ROOT=DIR reads proc/, sys/ and etc/ under DIR instead of / (tests).
EOF
}

JSON=0
PROFILE=ringmq
DATA_DIR=/var/lib/ringmq
DISK=""
PID=""
BASE_PORT=$BROKER_BASE_PORT_DEFAULT
SHARDS=""

while (($# > 0)); do
    case "$1" in
    --json) JSON=1 ;;
    --profile) PROFILE=${2:-}; shift ;;
    --data-dir) DATA_DIR=${2:-}; shift ;;
    --disk) DISK=${2:-}; shift ;;
    --pid) PID=${2:-}; shift ;;
    --base-port) BASE_PORT=${2:-}; shift ;;
    --shards) SHARDS=${2:-}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'audit.sh: unknown option %s (see --help)\n' "$1" >&2; exit 64 ;;
    esac
    shift || true
done

case "$PROFILE" in
ringmq | rocketmq) ;;
*) printf 'audit.sh: --profile must be ringmq or rocketmq, not %q\n' "$PROFILE" >&2; exit 64 ;;
esac
if [[ -z "$DATA_DIR" ]]; then
    printf 'audit.sh: --data-dir needs a directory\n' >&2
    exit 64
fi
if ! is_uint "$BASE_PORT" || ((BASE_PORT < 1026 || BASE_PORT > 65535)); then
    printf 'audit.sh: --base-port must be 1026-65535, not %q\n' "$BASE_PORT" >&2
    exit 64
fi
if [[ -z "$SHARDS" ]]; then
    SHARDS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || printf 1)
fi
if ! is_uint "$SHARDS" || ((SHARDS < 1 || SHARDS > 256)); then
    printf 'audit.sh: --shards must be 1-256, not %q\n' "$SHARDS" >&2
    exit 64
fi
if [[ -n "$PID" ]] && ! is_uint "$PID"; then
    printf 'audit.sh: --pid needs a process id, not %q\n' "$PID" >&2
    exit 64
fi

# Results, in order: parallel arrays.
NAMES=()
CURRENTS=()
RECOMMENDEDS=()
STATUSES=()
DETAILS=()

add_check() {
    NAMES+=("$1")
    CURRENTS+=("$2")
    RECOMMENDEDS+=("$3")
    STATUSES+=("$4")
    DETAILS+=("$5")
}

# --- sysctls ---------------------------------------------------------------------------

check_sysctls() {
    local key op value fix rop rvalue current
    while IFS='|' read -r key op value fix rop rvalue; do
        [[ -z "$key" ]] && continue
        resolve_row "$PROFILE" "$key" "$op" "$value" "$fix" "$rop" "$rvalue"
        current=$(sysctl_read "$key")
        if [[ -z "$current" ]]; then
            add_check "$key" "absent" "$(describe_op "$ROW_OP" "$ROW_VALUE")" OK \
                "not present in this kernel: nothing to tune"
        elif value_passes "$current" "$ROW_OP" "$ROW_VALUE"; then
            add_check "$key" "$current" "$(describe_op "$ROW_OP" "$ROW_VALUE")" OK ""
        else
            add_check "$key" "$current" "$(describe_op "$ROW_OP" "$ROW_VALUE")" WARN \
                "apply.sh sets $(fix_value "$current" "$ROW_OP" "$ROW_VALUE" "$ROW_FIX")"
        fi
    done <<<"$SYSCTL_TABLE"
}

# The ephemeral port range must not cover the broker's ports, or an outgoing connection can
# hold a broker port across a restart (the broker then cannot bind it).
check_port_range() {
    local range lo hi port last missing=""
    range=$(sysctl_read net.ipv4.ip_local_port_range)
    last=$((BASE_PORT + 4 * (SHARDS - 1) + 1))
    if [[ -z "$range" ]]; then
        add_check net.ipv4.ip_local_port_range absent "above $last" WARN "cannot be checked"
        return
    fi
    read -r lo hi <<<"$range"
    for port in "$NAMESRV_PORT_DEFAULT" $(seq $((BASE_PORT - 2)) "$last"); do
        if ((port >= lo && port <= hi)) && ! port_reserved "$port"; then
            missing=$port
            break
        fi
    done
    if [[ -z "$missing" ]]; then
        add_check net.ipv4.ip_local_port_range "$lo-$hi" "not covering $NAMESRV_PORT_DEFAULT,$((BASE_PORT - 2))-$last" OK ""
    else
        add_check net.ipv4.ip_local_port_range "$lo-$hi" "not covering $NAMESRV_PORT_DEFAULT,$((BASE_PORT - 2))-$last" WARN \
            "port $missing is ephemeral and not in ip_local_reserved_ports; apply.sh reserves the ports"
    fi
}

# --- io_uring --------------------------------------------------------------------------

kernel_version_check() {
    local release major minor
    release=$(head -n 1 "$PROC_DIR/sys/kernel/osrelease" 2>/dev/null)
    if [[ -z "$release" ]]; then
        add_check kernel.version unknown ">= 6.1" WARN "cannot read proc/sys/kernel/osrelease"
        return
    fi
    major=${release%%.*}
    minor=${release#*.}
    minor=${minor%%[!0-9]*}
    if ! is_uint "$major" || ! is_uint "$minor"; then
        add_check kernel.version "$release" ">= 6.1" WARN "unparsable kernel release"
    elif ((major < 5 || (major == 5 && minor < 7))); then
        add_check kernel.version "$release" ">= 6.1" FAIL \
            "io_uring on this kernel lacks SPLICE (5.7); the broker's runtime needs it"
    elif ((major < 6 || (major == 6 && minor < 1))); then
        add_check kernel.version "$release" ">= 6.1" WARN \
            "no SINGLE_ISSUER|DEFER_TASKRUN before 6.1: the runtime falls back to COOP_TASKRUN or plain rings"
    else
        add_check kernel.version "$release" ">= 6.1" OK ""
    fi
}

check_io_uring() {
    local disabled group
    disabled=$(sysctl_read kernel.io_uring_disabled)
    group=$(sysctl_read kernel.io_uring_group)
    case "$disabled" in
    "") add_check kernel.io_uring_disabled "absent" 0 OK "kernel before 6.6: io_uring always enabled" ;;
    0) add_check kernel.io_uring_disabled 0 0 OK "" ;;
    1)
        if [[ -n "$group" && "$group" != "-1" ]]; then
            add_check kernel.io_uring_disabled 1 0 WARN \
                "io_uring only for CAP_SYS_ADMIN or group $group: put the broker's user in that group"
        else
            add_check kernel.io_uring_disabled 1 0 FAIL \
                "io_uring only for CAP_SYS_ADMIN: the broker cannot create its rings (apply.sh --enable-io-uring)"
        fi
        ;;
    *) add_check kernel.io_uring_disabled "$disabled" 0 FAIL \
        "io_uring disabled for everyone: the broker cannot start (apply.sh --enable-io-uring)" ;;
    esac
}

# --- the audited process: limits, capabilities, seccomp ----------------------------------

find_pid() {
    if [[ -n "$PID" ]]; then
        printf '%s' "$PID"
        return
    fi
    local found=""
    if [[ -z "$TUNING_ROOT" ]] && command -v pgrep >/dev/null 2>&1; then
        found=$(pgrep -x ringmq-broker 2>/dev/null | head -n 1)
    fi
    printf '%s' "${found:-self}"
}

# Soft limit ($2 = "Max open files" …) of process $1 from proc/<pid>/limits.
read_limit() {
    awk -v name="$2" 'index($0, name) == 1 {
        rest = substr($0, length(name) + 1); split(rest, f, " "); print f[1]; exit }' \
        "$PROC_DIR/$1/limits" 2>/dev/null
}

check_limit() {
    local pid=$1 name=$2 label=$3 recommended=$4 minimum=$5 who=$6 value
    value=$(read_limit "$pid" "$label")
    if [[ -z "$value" ]]; then
        add_check "$name" unknown ">= $recommended" WARN "cannot read limits of $who"
    elif [[ "$value" == unlimited ]] || { is_uint "$value" && ((value >= recommended)); }; then
        add_check "$name" "$value" ">= $recommended" OK "$who"
    elif is_uint "$value" && ((value < minimum)); then
        add_check "$name" "$value" ">= $recommended" FAIL "$who; below $minimum the broker runs out under load"
    else
        add_check "$name" "$value" ">= $recommended" WARN "$who; apply.sh writes limits.d, systemd units set Limit*"
    fi
}

# Whether CAP_IPC_LOCK (bit 14) is in the effective set of process $1.
has_ipc_lock() {
    local hex
    hex=$(awk '/^CapEff:/ { print $2; exit }' "$PROC_DIR/$1/status" 2>/dev/null)
    [[ -n "$hex" ]] || return 2
    (((16#$hex >> 14) & 1))
}

check_process() {
    local pid who memlock cap seccomp
    pid=$(find_pid)
    if [[ "$pid" == self ]]; then
        who="this shell (pass --pid to audit the broker's)"
        pid=$$
    else
        who="pid $pid"
    fi
    check_limit "$pid" limits.nofile "Max open files" "$NOFILE_RECOMMENDED" "$NOFILE_MIN" "$who"
    check_limit "$pid" limits.nproc "Max processes" "$NPROC_RECOMMENDED" "$NPROC_MIN" "$who"

    # Registered (fixed) buffers: charged to RLIMIT_MEMLOCK unless CAP_IPC_LOCK is held.
    memlock=$(read_limit "$pid" "Max locked memory")
    has_ipc_lock "$pid"
    case $? in
    0) cap=yes ;;
    1) cap=no ;;
    *) cap=unknown ;;
    esac
    local shown="${memlock:-unknown}"
    is_uint "$shown" && shown="$((shown / 1024 / 1024)) MiB"
    if [[ "$memlock" == unlimited || "$cap" == yes ]]; then
        add_check limits.memlock "$shown, CAP_IPC_LOCK $cap" "unlimited or CAP_IPC_LOCK" OK "$who"
    else
        add_check limits.memlock "$shown, CAP_IPC_LOCK $cap" "unlimited or CAP_IPC_LOCK" WARN \
            "$who; registered buffers limited to (memlock - 1 MiB)/shards, the rest use plain writes"
    fi

    # A seccomp filter (containers) commonly blocks io_uring_setup with EPERM.
    seccomp=$(awk '/^Seccomp:/ { print $2; exit }' "$PROC_DIR/$pid/status" 2>/dev/null)
    case "$seccomp" in
    0) add_check process.seccomp "off" "off" OK "$who" ;;
    "") add_check process.seccomp unknown "off" WARN "cannot read the status of $who" ;;
    *) add_check process.seccomp "filter" "off" WARN \
        "$who; a seccomp filter (Docker's default profile) may block io_uring_setup with EPERM" ;;
    esac
}

# --- memory: transparent huge pages -------------------------------------------------------

check_thp() {
    local base="$SYS_DIR/kernel/mm/transparent_hugepage" enabled defrag
    enabled=$(sysfs_choice "$base/enabled")
    defrag=$(sysfs_choice "$base/defrag")
    case "$enabled" in
    "") add_check thp.enabled absent "madvise or never" OK "no transparent huge pages in this kernel" ;;
    always) add_check thp.enabled always "madvise or never" WARN \
        "khugepaged and huge-page faults add latency spikes; ringmq does not use huge pages" ;;
    *) add_check thp.enabled "$enabled" "madvise or never" OK "" ;;
    esac
    case "$defrag" in
    "") ;;
    always) add_check thp.defrag always "madvise, defer or never" WARN \
        "direct compaction stalls allocating threads" ;;
    *) add_check thp.defrag "$defrag" "madvise, defer or never" OK "" ;;
    esac
}

# --- the data disk and filesystem --------------------------------------------------------

# The existing directory nearest to $1 (itself or a parent).
existing_dir() {
    local dir=$1
    while [[ ! -d "$dir" && "$dir" != / && -n "$dir" ]]; do
        dir=$(dirname -- "$dir")
    done
    printf '%s' "${dir:-/}"
}

# The whole-disk block device name (e.g. nvme0n1, vda) holding directory $1, or "".
disk_of_dir() {
    local source name parent
    source=$(df -P -- "$1" 2>/dev/null | awk 'NR == 2 { print $1 }')
    [[ "$source" == /dev/* ]] || return 0
    source=$(readlink -f -- "$source")
    name=$(basename -- "$source")
    if [[ -e "$SYS_DIR/class/block/$name/partition" ]]; then
        parent=$(readlink -f -- "$SYS_DIR/class/block/$name/..")
        name=$(basename -- "$parent")
    fi
    printf '%s' "$name"
}

check_scheduler() {
    local name scheduler rotational recommended
    if [[ -n "$DISK" ]]; then
        name=$(basename -- "$DISK")
    else
        name=$(disk_of_dir "$(existing_dir "$DATA_DIR")")
    fi
    if [[ -z "$name" || ! -r "$SYS_DIR/block/$name/queue/scheduler" ]]; then
        add_check disk.scheduler unknown "none or mq-deadline" WARN \
            "no block device found for ${DISK:-$DATA_DIR} (pass --disk /dev/X)"
        return
    fi
    scheduler=$(sysfs_choice "$SYS_DIR/block/$name/queue/scheduler")
    rotational=$(head -n 1 "$SYS_DIR/block/$name/queue/rotational" 2>/dev/null)
    if [[ "$rotational" == 1 ]]; then
        recommended="mq-deadline"
        case "$scheduler" in
        mq-deadline | deadline) add_check disk.scheduler "$name: $scheduler (rotational)" "$recommended" OK "" ;;
        *) add_check disk.scheduler "$name: $scheduler (rotational)" "$recommended" WARN \
            "deadline bounds read latency behind the CommitLog's sequential writes" ;;
        esac
    else
        recommended="none or mq-deadline"
        case "$scheduler" in
        none | noop | mq-deadline | deadline) add_check disk.scheduler "$name: $scheduler" "$recommended" OK "" ;;
        *) add_check disk.scheduler "$name: $scheduler" "$recommended" WARN \
            "$scheduler adds per-request CPU cost on flash; apply.sh --disk /dev/$name" ;;
        esac
    fi
}

# O_DIRECT: judged from the filesystem type, and confirmed by one O_DIRECT read of an
# existing store file when there is one (a read: the audit writes nothing).
check_filesystem() {
    local dir fstype probe
    dir=$(existing_dir "$DATA_DIR")
    fstype=$(stat -f -c %T -- "$dir" 2>/dev/null)
    # statfs cannot tell ext2, ext3 and ext4 apart (one magic number).
    [[ "$fstype" == ext2/ext3 ]] && fstype=ext4
    case "$fstype" in
    ext4 | xfs | btrfs)
        probe=$(find "$dir" -xdev -maxdepth 4 -type f -size +4k -print -quit 2>/dev/null)
        if [[ -n "$probe" ]] && ! dd if="$probe" of=/dev/null bs=4096 count=1 iflag=direct status=none 2>/dev/null; then
            add_check fs.o_direct "$fstype at $dir" "O_DIRECT supported" WARN \
                "an O_DIRECT read of $probe failed: the store falls back to buffered writes"
        else
            add_check fs.o_direct "$fstype at $dir" "O_DIRECT supported" OK ""
        fi
        ;;
    tmpfs | ramfs)
        add_check fs.o_direct "$fstype at $dir" "O_DIRECT supported" FAIL \
            "$fstype loses every message on reboot; put store.path on a disk"
        ;;
    "")
        add_check fs.o_direct "unknown at $dir" "O_DIRECT supported" WARN "cannot stat the filesystem"
        ;;
    *)
        add_check fs.o_direct "$fstype at $dir" "O_DIRECT supported" WARN \
            "$fstype is not a tested local filesystem (ext4, xfs): O_DIRECT may be refused and writes buffered"
        ;;
    esac
}

# Disk usage against the broker's retention thresholds (deploy/broker.toml defaults):
# above disk_max_used_space_ratio (75 %) segments are deleted at any hour, above
# disk_space_warning_level_ratio (90 %) sends are refused.
check_disk_usage() {
    local dir used
    dir=$(existing_dir "$DATA_DIR")
    used=$(df -P -- "$dir" 2>/dev/null | awk 'NR == 2 { sub("%", "", $5); print $5 }')
    if ! is_uint "$used"; then
        add_check disk.usage unknown "< 75 %" WARN "cannot read the usage of $dir"
    elif ((used >= 90)); then
        add_check disk.usage "$used % at $dir" "< 75 %" FAIL \
            "at 90 % (disk_space_warning_level_ratio) the broker refuses sends"
    elif ((used >= 75)); then
        add_check disk.usage "$used % at $dir" "< 75 %" WARN \
            "above 75 % (disk_max_used_space_ratio) segments are deleted at any hour, unexpired ones from 85 %"
    else
        add_check disk.usage "$used % at $dir" "< 75 %" OK ""
    fi
}

# --- clock ---------------------------------------------------------------------------------

check_clocksource() {
    local current
    current=$(head -n 1 "$SYS_DIR/devices/system/clocksource/clocksource0/current_clocksource" 2>/dev/null)
    case "$current" in
    tsc | kvm-clock | arch_sys_counter) add_check clocksource "$current" "tsc (kvm-clock on KVM)" OK "" ;;
    "") add_check clocksource unknown "tsc (kvm-clock on KVM)" WARN "cannot read the clocksource" ;;
    *) add_check clocksource "$current" "tsc (kvm-clock on KVM)" WARN \
        "$current makes clock reads slow (every message is timestamped); check the BIOS/hypervisor TSC" ;;
    esac
}

# --- output --------------------------------------------------------------------------------

json_escape() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '%s' "$s"
}

print_json() {
    local i n=${#NAMES[@]} sep=""
    printf '{"profile":"%s","root":"%s","data_dir":"%s","checks":[' \
        "$PROFILE" "$(json_escape "${TUNING_ROOT:-/}")" "$(json_escape "$DATA_DIR")"
    for ((i = 0; i < n; i++)); do
        printf '%s\n{"name":"%s","current":"%s","recommended":"%s","status":"%s","detail":"%s"}' \
            "$sep" "$(json_escape "${NAMES[i]}")" "$(json_escape "${CURRENTS[i]}")" \
            "$(json_escape "${RECOMMENDEDS[i]}")" "${STATUSES[i]}" "$(json_escape "${DETAILS[i]}")"
        sep=","
    done
    printf '\n],"summary":{"ok":%d,"warn":%d,"fail":%d}}\n' "$OK_COUNT" "$WARN_COUNT" "$FAIL_COUNT"
}

print_table() {
    local i n=${#NAMES[@]} w1=5 w2=7 w3=11
    for ((i = 0; i < n; i++)); do
        ((${#NAMES[i]} > w1)) && w1=${#NAMES[i]}
        ((${#CURRENTS[i]} > w2)) && w2=${#CURRENTS[i]}
        ((${#RECOMMENDEDS[i]} > w3)) && w3=${#RECOMMENDEDS[i]}
    done
    printf "%-${w1}s | %-${w2}s | %-${w3}s | %s\n" check current recommended status
    printf '%s\n' "$(printf '%*s' $((w1 + w2 + w3 + 15)) '' | tr ' ' '-')"
    for ((i = 0; i < n; i++)); do
        printf "%-${w1}s | %-${w2}s | %-${w3}s | %s\n" "${NAMES[i]}" "${CURRENTS[i]}" "${RECOMMENDEDS[i]}" "${STATUSES[i]}"
    done
    local printed_header=0
    for ((i = 0; i < n; i++)); do
        [[ "${STATUSES[i]}" == OK || -z "${DETAILS[i]}" ]] && continue
        if ((printed_header == 0)); then
            printf '\nwhy:\n'
            printed_header=1
        fi
        printf '  %s (%s): %s\n' "${NAMES[i]}" "${STATUSES[i]}" "${DETAILS[i]}"
    done
    printf '\n%d OK, %d WARN, %d FAIL (profile %s; docs/tuning.md explains each check)\n' \
        "$OK_COUNT" "$WARN_COUNT" "$FAIL_COUNT" "$PROFILE"
}

check_sysctls
check_port_range
kernel_version_check
check_io_uring
check_process
check_thp
check_scheduler
check_filesystem
check_disk_usage
check_clocksource

OK_COUNT=0
WARN_COUNT=0
FAIL_COUNT=0
for status in "${STATUSES[@]}"; do
    case "$status" in
    OK) OK_COUNT=$((OK_COUNT + 1)) ;;
    WARN) WARN_COUNT=$((WARN_COUNT + 1)) ;;
    FAIL) FAIL_COUNT=$((FAIL_COUNT + 1)) ;;
    esac
done

if ((JSON)); then
    print_json
else
    print_table
fi

if ((FAIL_COUNT > 0)); then
    exit 2
elif ((WARN_COUNT > 0)); then
    exit 1
fi
exit 0

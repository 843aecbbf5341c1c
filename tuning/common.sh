# shellcheck shell=bash
# ringmq host tuning: what audit.sh and apply.sh share.
#
# Sourced, never run. Defines where the host's files are (so that tests can point both
# scripts at a fake tree with RINGMQ_TUNING_ROOT) and the table of recommended sysctls.
# docs/tuning.md explains every value and compares it with RocketMQ's os.sh.
# shellcheck disable=SC2034 # the variables are used by the scripts that source this file

# Root of the tree the scripts read and write. Empty = the real host. Tests set it to a
# temporary directory holding proc/sys/..., sys/... and etc/... so that nothing on the host
# is ever read for those values or touched.
TUNING_ROOT="${RINGMQ_TUNING_ROOT:-}"
TUNING_ROOT="${TUNING_ROOT%/}"
PROC_DIR="$TUNING_ROOT/proc"
SYS_DIR="$TUNING_ROOT/sys"
ETC_DIR="$TUNING_ROOT/etc"

# Files apply.sh writes (never /etc/sysctl.conf or /etc/security/limits.conf themselves).
# 90-: later files in /etc/sysctl.d win over distribution defaults (10-*, 50-*).
SYSCTL_FILE="$ETC_DIR/sysctl.d/90-ringmq.conf"
LIMITS_FILE="$ETC_DIR/security/limits.d/90-ringmq.conf"
TMPFILES_FILE="$ETC_DIR/tmpfiles.d/90-ringmq.conf"
UDEV_FILE="$ETC_DIR/udev/rules.d/90-ringmq-scheduler.rules"

# Resource limits we recommend for the broker's user (RocketMQ's os.sh: nofile 655350,
# memlock unlimited; nproc is ours: shard threads plus tools, far below this).
NOFILE_RECOMMENDED=655350
NOFILE_MIN=4096
NPROC_RECOMMENDED=65535
NPROC_MIN=1024

# First client port of a broker and the NameServer port (the defaults in deploy/*.toml).
BROKER_BASE_PORT_DEFAULT=10911
NAMESRV_PORT_DEFAULT=9876

# Recommended sysctls, one per line:
#   key | op | value | fix | rocketmq op | rocketmq value
# op: eq (must equal value), ge (at least), le (at most), range (lo..hi inclusive).
# fix: what apply.sh sets when the current value does not pass ("clamp" = nearest bound).
# rocketmq op/value: os.sh's setting for --profile rocketmq ("-" = os.sh does not set it,
# ours is used). "@minfree" is computed from the host's memory (min_free_target_kb).
SYSCTL_TABLE='vm.overcommit_memory|eq|1|1|eq|1
vm.min_free_kbytes|ge|@minfree|@minfree|ge|1000000
vm.swappiness|le|10|1|eq|1
vm.zone_reclaim_mode|eq|0|0|eq|0
vm.max_map_count|ge|655360|655360|ge|655360
vm.dirty_background_ratio|range|5..10|clamp|eq|50
vm.dirty_ratio|range|20..50|clamp|eq|50
vm.dirty_writeback_centisecs|range|100..500|clamp|eq|360000
vm.page-cluster|eq|3|3|eq|3
net.core.somaxconn|ge|4096|4096|-|-
net.ipv4.tcp_max_syn_backlog|ge|8192|8192|-|-
net.ipv4.tcp_slow_start_after_idle|eq|0|0|-|-'

# Path of a sysctl key under proc/sys ("vm.page-cluster" -> .../vm/page-cluster).
sysctl_path() {
    printf '%s/sys/%s' "$PROC_DIR" "${1//.//}"
}

# Current value of a sysctl with runs of whitespace collapsed, or "" if the key is absent.
sysctl_read() {
    local path
    path=$(sysctl_path "$1")
    [[ -r "$path" ]] || return 0
    tr -s ' \t' ' ' <"$path" | head -n 1
}

# Total memory in KiB (0 if unknown).
mem_total_kb() {
    local kb
    kb=$(awk '/^MemTotal:/ { print $2; exit }' "$PROC_DIR/meminfo" 2>/dev/null)
    printf '%s' "${kb:-0}"
}

# Our vm.min_free_kbytes target: 1 % of RAM, at least 65536 (64 MiB), at most 1000000 (the
# value os.sh carries commented out). More only wastes memory the page cache could use.
min_free_target_kb() {
    local total target
    total=$(mem_total_kb)
    target=$((total / 100))
    ((target < 65536)) && target=65536
    ((target > 1000000)) && target=1000000
    printf '%s' "$target"
}

# Resolves one SYSCTL_TABLE row for profile $1 (ringmq or rocketmq); the row's fields
# follow. Sets ROW_OP, ROW_VALUE (with @minfree computed) and ROW_FIX.
resolve_row() {
    local profile=$1 op=$3 value=$4 fix=$5 rop=$6 rvalue=$7
    if [[ "$profile" == rocketmq && "$rop" != "-" ]]; then
        op=$rop
        value=$rvalue
        fix=$rvalue
    fi
    [[ "$value" == "@minfree" ]] && value=$(min_free_target_kb)
    [[ "$fix" == "@minfree" ]] && fix=$(min_free_target_kb)
    ROW_OP=$op
    ROW_VALUE=$value
    ROW_FIX=$fix
}

# Whether $1 is a non-negative integer.
is_uint() {
    [[ "$1" =~ ^[0-9]+$ ]]
}

# Whether integer $1 passes "op value" ($2, $3). Non-integers never pass.
value_passes() {
    local current=$1 op=$2 value=$3
    is_uint "$current" || return 1
    case "$op" in
    eq) ((current == value)) ;;
    ge) ((current >= value)) ;;
    le) ((current <= value)) ;;
    range) ((current >= ${value%%..*} && current <= ${value##*..})) ;;
    *) return 1 ;;
    esac
}

# Human form of "op value": "= 1", ">= 4096", "<= 10", "5..10".
describe_op() {
    case "$1" in
    eq) printf '%s' "$2" ;;
    ge) printf '>= %s' "$2" ;;
    le) printf '<= %s' "$2" ;;
    range) printf '%s' "$2" ;;
    *) printf '%s %s' "$1" "$2" ;;
    esac
}

# The value apply.sh sets for a failing sysctl: fix ($4) or, for "clamp", the nearest bound.
fix_value() {
    local current=$1 op=$2 value=$3 fix=$4
    if [[ "$fix" != clamp ]]; then
        printf '%s' "$fix"
        return
    fi
    local lo=${value%%..*} hi=${value##*..}
    if is_uint "$current" && ((current > hi)); then
        printf '%s' "$hi"
    else
        printf '%s' "$lo"
    fi
}

# Whether port $1 is listed in net.ipv4.ip_local_reserved_ports (comma list of N and A-B).
port_reserved() {
    local port=$1 list item lo hi
    list=$(sysctl_read net.ipv4.ip_local_reserved_ports)
    IFS=',' read -r -a items <<<"${list// /}"
    for item in "${items[@]}"; do
        [[ -z "$item" ]] && continue
        lo=${item%%-*}
        hi=${item##*-}
        if ! is_uint "$lo" || ! is_uint "$hi"; then
            continue
        fi
        ((port >= lo && port <= hi)) && return 0
    done
    return 1
}

# The selected value of a sysfs choice file ("always [madvise] never" -> madvise); a file
# holding a single word (no brackets) yields that word.
sysfs_choice() {
    local line
    line=$(head -n 1 -- "$1" 2>/dev/null) || return 0
    if [[ "$line" =~ \[([^]]*)\] ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
    elif [[ "$line" =~ ^[[:space:]]*([^[:space:]]+)[[:space:]]*$ ]]; then
        printf '%s' "${BASH_REMATCH[1]}"
    fi
}

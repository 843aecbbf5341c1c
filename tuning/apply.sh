#!/usr/bin/env bash
# ringmq host tuning: applies what tuning/audit.sh checks.
#
# Writes drop-in files (never /etc/sysctl.conf or /etc/security/limits.conf):
#   /etc/sysctl.d/90-ringmq.conf                   sysctls, also applied at once
#   /etc/security/limits.d/90-ringmq.conf          nofile / memlock for PAM sessions
#   /etc/tmpfiles.d/90-ringmq.conf                 transparent huge pages at boot
#   /etc/udev/rules.d/90-ringmq-scheduler.rules    the data disk's IO scheduler (--disk)
# Idempotent: a second run changes nothing. --dry-run prints what it would change and
# changes nothing. Needs root unless --dry-run.
# Exit code: 0 done (or nothing to do), 1 some change failed, 2 refused, 64 usage error.
set -u -o pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
. "$SCRIPT_DIR/common.sh"

usage() {
    cat <<'EOF'
usage: tuning/apply.sh [options]

Applies ringmq's recommended host settings (docs/tuning.md). Run as root.

  --dry-run            print every change it would make; change nothing (no root needed)
  --disk DEV           the data disk (e.g. /dev/nvme0n1): set its IO scheduler now and at boot
  --profile P          ringmq (default) or rocketmq: RocketMQ os.sh's sysctl values instead
  --user NAME          limits.d domain (default '*': every user; e.g. ringmq)
  --enable-io-uring    set kernel.io_uring_disabled=0 if io_uring is disabled (a security
                       choice of the host's owner: never done without this flag)
  --base-port P        broker base_port (default 10911), for the reserved-ports setting
  --shards N           shards per broker (default: CPUs online), for the same
  -h, --help           this help

Environment: RINGMQ_TUNING_ROOT=DIR reads and writes proc/, sys/ and etc/ under DIR
instead of / (tests; then root is not required).
EOF
}

DRY_RUN=0
DISK=""
PROFILE=ringmq
LIMITS_USER='*'
ENABLE_IO_URING=0
BASE_PORT=$BROKER_BASE_PORT_DEFAULT
SHARDS=""

while (($# > 0)); do
    case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --disk) DISK=${2:-}; shift ;;
    --profile) PROFILE=${2:-}; shift ;;
    --user) LIMITS_USER=${2:-}; shift ;;
    --enable-io-uring) ENABLE_IO_URING=1 ;;
    --base-port) BASE_PORT=${2:-}; shift ;;
    --shards) SHARDS=${2:-}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) printf 'apply.sh: unknown option %s (see --help)\n' "$1" >&2; exit 64 ;;
    esac
    shift || true
done

case "$PROFILE" in
ringmq | rocketmq) ;;
*) printf 'apply.sh: --profile must be ringmq or rocketmq, not %q\n' "$PROFILE" >&2; exit 64 ;;
esac
if [[ ! "$LIMITS_USER" =~ ^(\*|@?[a-z_][a-z0-9_.-]*)$ ]]; then
    printf 'apply.sh: --user must be *, a user name or @group, not %q\n' "$LIMITS_USER" >&2
    exit 64
fi
if ! is_uint "$BASE_PORT" || ((BASE_PORT < 1026 || BASE_PORT > 65535)); then
    printf 'apply.sh: --base-port must be 1026-65535, not %q\n' "$BASE_PORT" >&2
    exit 64
fi
if [[ -z "$SHARDS" ]]; then
    SHARDS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || printf 1)
fi
if ! is_uint "$SHARDS" || ((SHARDS < 1 || SHARDS > 256)); then
    printf 'apply.sh: --shards must be 1-256, not %q\n' "$SHARDS" >&2
    exit 64
fi
DISK_NAME=""
if [[ -n "$DISK" ]]; then
    DISK_NAME=$(basename -- "$DISK")
    if [[ ! "$DISK_NAME" =~ ^[A-Za-z0-9!._-]+$ || ! -r "$SYS_DIR/block/$DISK_NAME/queue/scheduler" ]]; then
        printf 'apply.sh: --disk %s: no %s (give a whole disk such as /dev/sda or /dev/nvme0n1, not a partition)\n' \
            "$DISK" "$SYS_DIR/block/$DISK_NAME/queue/scheduler" >&2
        exit 64
    fi
fi

if ((DRY_RUN == 0)) && [[ -z "$TUNING_ROOT" ]] && ((EUID != 0)); then
    printf 'apply.sh: must run as root: it writes /etc/sysctl.d, /etc/security/limits.d and /proc/sys.\n' >&2
    printf 'Run it with sudo, or with --dry-run to see what it would change.\n' >&2
    exit 2
fi

FAILED=0
CHANGES=0

say() {
    printf '%s\n' "$*"
}

# Writes $2 to file $1 (atomically, via a temporary file in the same directory) unless it
# already holds exactly that.
install_file() {
    local path=$1 content=$2 tmp
    if [[ -f "$path" && "$(cat -- "$path")" == "$content" ]]; then
        say "unchanged   $path"
        return
    fi
    CHANGES=$((CHANGES + 1))
    if ((DRY_RUN)); then
        say "would write $path:"
        printf '%s\n' "$content" | sed 's/^/    | /'
        return
    fi
    if ! mkdir -p -- "$(dirname -- "$path")" ||
        ! tmp=$(mktemp -- "$path.XXXXXX") ||
        ! printf '%s\n' "$content" >"$tmp" ||
        ! chmod 0644 -- "$tmp" ||
        ! mv -f -- "$tmp" "$path"; then
        say "FAILED      cannot write $path"
        [[ -n "${tmp:-}" ]] && rm -f -- "$tmp"
        FAILED=1
        return
    fi
    say "wrote       $path"
}

# Sets a live kernel value (a proc/sys or sys file) unless it already holds it.
set_live() {
    local label=$1 path=$2 current=$3 wanted=$4
    if [[ "$current" == "$wanted" ]]; then
        return
    fi
    CHANGES=$((CHANGES + 1))
    if ((DRY_RUN)); then
        say "would set   $label: $current -> $wanted"
        return
    fi
    if { printf '%s\n' "$wanted" >"$path"; } 2>/dev/null; then
        say "set         $label: $current -> $wanted"
    else
        say "FAILED      $label: cannot write $wanted to $path"
        FAILED=1
    fi
}

HEADER="# Written by ringmq tuning/apply.sh (profile $PROFILE); docs/tuning.md explains each value.
# Edit with care: apply.sh rewrites this file. Remove it to return to the distribution's defaults."

# --- sysctls -------------------------------------------------------------------------------

# Reserved ports: the NameServer's and every broker port inside the ephemeral range, so no
# outgoing connection can take them. Prints the new list, or nothing if none is needed.
reserved_ports_wanted() {
    local range lo hi last port missing=0 list
    range=$(sysctl_read net.ipv4.ip_local_port_range)
    [[ -n "$range" ]] || return 0
    read -r lo hi <<<"$range"
    last=$((BASE_PORT + 4 * (SHARDS - 1) + 1))
    for port in "$NAMESRV_PORT_DEFAULT" $(seq $((BASE_PORT - 2)) "$last"); do
        if ((port >= lo && port <= hi)) && ! port_reserved "$port"; then
            missing=1
            break
        fi
    done
    list=$(sysctl_read net.ipv4.ip_local_reserved_ports)
    list=${list// /}
    if ((missing)); then
        list="${list:+$list,}$NAMESRV_PORT_DEFAULT,$((BASE_PORT - 2))-$last"
    fi
    printf '%s' "$list"
}

apply_sysctls() {
    local key op value fix rop rvalue current wanted lines=""
    local -a keys=() currents=() wanteds=()
    while IFS='|' read -r key op value fix rop rvalue; do
        [[ -z "$key" ]] && continue
        resolve_row "$PROFILE" "$key" "$op" "$value" "$fix" "$rop" "$rvalue"
        current=$(sysctl_read "$key")
        if [[ -z "$current" ]]; then
            say "skipped     $key: not present in this kernel"
            continue
        fi
        # Values that already pass are pinned as they are, so that a second run (and a
        # reboot) sees exactly the audited state.
        if value_passes "$current" "$ROW_OP" "$ROW_VALUE"; then
            wanted=$current
        else
            wanted=$(fix_value "$current" "$ROW_OP" "$ROW_VALUE" "$ROW_FIX")
        fi
        keys+=("$key")
        currents+=("$current")
        wanteds+=("$wanted")
    done <<<"$SYSCTL_TABLE"

    wanted=$(reserved_ports_wanted)
    if [[ -n "$wanted" ]]; then
        keys+=(net.ipv4.ip_local_reserved_ports)
        currents+=("$(sysctl_read net.ipv4.ip_local_reserved_ports)")
        wanteds+=("$wanted")
    fi

    current=$(sysctl_read kernel.io_uring_disabled)
    if [[ -n "$current" ]] && ((ENABLE_IO_URING)); then
        keys+=(kernel.io_uring_disabled)
        currents+=("$current")
        wanteds+=(0)
    elif [[ -n "$current" && "$current" != 0 ]]; then
        say "left        kernel.io_uring_disabled = $current (the broker needs io_uring: pass --enable-io-uring to set 0)"
    fi

    local i
    for i in "${!keys[@]}"; do
        lines+="${keys[i]} = ${wanteds[i]}"$'\n'
    done
    install_file "$SYSCTL_FILE" "$HEADER"$'\n'"${lines%$'\n'}"
    for i in "${!keys[@]}"; do
        set_live "${keys[i]}" "$(sysctl_path "${keys[i]}")" "${currents[i]}" "${wanteds[i]}"
    done

    # /etc/sysctl.conf is read after /etc/sysctl.d: a key set there overrides ours at boot.
    if [[ -r "$ETC_DIR/sysctl.conf" ]]; then
        for key in "${keys[@]}"; do
            if grep -Eq "^[[:space:]]*${key//./[./]}[[:space:]]*=" "$ETC_DIR/sysctl.conf"; then
                say "warning     $key is also set in $ETC_DIR/sysctl.conf, which overrides $SYSCTL_FILE at boot: remove it there"
            fi
        done
    fi
}

# --- limits --------------------------------------------------------------------------------

apply_limits() {
    local u=$LIMITS_USER
    install_file "$LIMITS_FILE" "$HEADER
# Applies to new login sessions (PAM); systemd services use the Limit* lines of their unit.
$u soft nofile $NOFILE_RECOMMENDED
$u hard nofile $NOFILE_RECOMMENDED
$u soft memlock unlimited
$u hard memlock unlimited"
}

# --- transparent huge pages ----------------------------------------------------------------


apply_thp() {
    local base="$SYS_DIR/kernel/mm/transparent_hugepage" enabled defrag want_enabled want_defrag
    enabled=$(sysfs_choice "$base/enabled")
    defrag=$(sysfs_choice "$base/defrag")
    if [[ -z "$enabled" ]]; then
        say "skipped     transparent huge pages: not in this kernel"
        return
    fi
    want_enabled=$enabled
    [[ "$enabled" == always ]] && want_enabled=madvise
    want_defrag=$defrag
    [[ "$defrag" == always ]] && want_defrag=madvise
    local content="$HEADER
w /sys/kernel/mm/transparent_hugepage/enabled - - - - $want_enabled"
    [[ -n "$defrag" ]] && content+="
w /sys/kernel/mm/transparent_hugepage/defrag - - - - $want_defrag"
    install_file "$TMPFILES_FILE" "$content"
    set_live "transparent_hugepage/enabled" "$base/enabled" "$enabled" "$want_enabled"
    [[ -n "$defrag" ]] && set_live "transparent_hugepage/defrag" "$base/defrag" "$defrag" "$want_defrag"
}

# --- IO scheduler --------------------------------------------------------------------------

apply_scheduler() {
    if [[ -z "$DISK_NAME" ]]; then
        say "skipped     IO scheduler: pass --disk /dev/X (the disk holding store.path) to set it"
        return
    fi
    local file="$SYS_DIR/block/$DISK_NAME/queue/scheduler" available current rotational wanted
    available=$(head -n 1 -- "$file")
    current=$(sysfs_choice "$file")
    rotational=$(head -n 1 "$SYS_DIR/block/$DISK_NAME/queue/rotational" 2>/dev/null)
    wanted=$current
    if [[ "$rotational" == 1 ]]; then
        case "$current" in mq-deadline | deadline) ;; *) wanted=mq-deadline ;; esac
    else
        case "$current" in
        none | noop | mq-deadline | deadline) ;;
        *) if [[ " ${available//[\[\]]/} " == *" none "* ]]; then wanted=none; else wanted=mq-deadline; fi ;;
        esac
    fi
    if [[ " ${available//[\[\]]/} " != *" $wanted "* ]]; then
        say "FAILED      $DISK_NAME: scheduler $wanted is not offered by the kernel ($available)"
        FAILED=1
        return
    fi
    install_file "$UDEV_FILE" "$HEADER
ACTION==\"add|change\", KERNEL==\"$DISK_NAME\", ATTR{queue/scheduler}=\"$wanted\""
    set_live "$DISK_NAME scheduler" "$file" "$current" "$wanted"
}

if ((DRY_RUN)); then
    say "dry run: nothing is changed"
fi
apply_sysctls
apply_limits
apply_thp
apply_scheduler

if ((DRY_RUN)); then
    say "dry run: $CHANGES change(s) would be made"
else
    say "$CHANGES change(s) made; limits apply to new sessions; run tuning/audit.sh to check"
fi
exit "$FAILED"

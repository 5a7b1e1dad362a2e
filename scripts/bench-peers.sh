#!/usr/bin/env bash
# make bench-peers: Dafka next to what users would pick instead, in one run
# on this machine, rounds alternating between them: the C Dafka it
# replaces (built once from ../shared/peers into a cache outside the
# clone), Redis Streams with `appendfsync always` and `everysec`, and NATS
# JetStream's file store. For 100 B, 1 KiB and 64 KiB records: the rate
# until every record is acknowledged as durable, a live consumer's rate
# while a producer runs, and a replay from the start; then end-to-end
# latency at 10,000 msg/s, next to bare ZeroMQ at the same pacing (the
# machine's floor). Each number is a median over the rounds with
# the range beside it, and each peer's durability is stated next to it.
#
# Not a test: nothing here asserts a time. Everything binds 127.0.0.1,
# stops what it started by pid, and removes its files. A peer that cannot
# be had (no package, no build) gets a row saying so; the rest runs.
#
#   make bench-peers                       # 3 rounds, full counts
#   ROUNDS=1 BENCH_QUICK=1 make bench-peers
#   ONLY="dafka redis-always" make bench-peers
#   PEERS_SRC=DIR (the source snapshots)   PEERS_CACHE=DIR (builds kept between runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash scripts/setup.sh
need=()
for p in redis-server redis-tools nats-server; do dpkg -s "$p" >/dev/null 2>&1 || need+=("$p"); done
if [ ${#need[@]} -gt 0 ]; then
    apt-get install -y "${need[@]}" >/dev/null 2>&1 || echo "== cannot install ${need[*]}" >&2
fi
cargo build --locked --workspace --all-targets
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target/debug"
export PEERS_SRC=${PEERS_SRC:-$root/../shared/peers}
export PEERS_CACHE=${PEERS_CACHE:-/var/cache/dafka-peers}
mkdir -p "$PEERS_CACHE"

say() { echo "== $*" >&2; }
missing=()
cbin=$(bash scripts/peers/build-c-dafka.sh) || { cbin=""; missing+=("c-dafka: could not be built from $PEERS_SRC"); }
# The NATS and Redis clients (bench/peers): their own workspace and
# target directory, built in release like any client a user would run.
pb="$PEERS_CACHE/target/release/peer_bench"
(cd bench/peers && CARGO_TARGET_DIR="$PEERS_CACHE/target" cargo build --locked --release -q) ||
    { pb=""; missing+=("nats, redis live/replay/latency: bench/peers did not build"); }
command -v redis-server >/dev/null || missing+=("redis: no redis-server")
command -v nats-server >/dev/null || missing+=("nats: no nats-server")

rounds=${ROUNDS:-3}
if [ "${BENCH_QUICK:-0}" = 1 ]; then
    counts=(100:300000 1024:100000 65536:2000)
    lat_count=20000
else
    counts=(100:300000 1024:300000 65536:5000)
    lat_count=50000
fi
# Every client call is bounded: a peer that stalls gets an `x` in its cell
# ("stalled") instead of hanging the run.
limit=300

work=$(mktemp -d)
pids=()
cleanup() {
    kill -INT "${pids[@]}" 2>/dev/null || true
    sleep 0.2
    kill -KILL "${pids[@]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
jget() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { for _ in $(seq 400); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done; return 1; }
bounded() { timeout -k 5 "$limit" "$@"; }
# Stops what a run started: SIGINT, then SIGKILL for what ignores it.
stop() {
    kill -INT "$@" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$@" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$@" 2>/dev/null || true
    wait "$@" 2>/dev/null || true
    pids=()
}
# Before each run: write back what earlier runs left in the page cache and
# wait for the disk to go quiet, so no peer's syncs queue behind another's
# write-back.
source scripts/quiet-io.sh
settle() {
    sync
    quiet_io
}
# The value of a JSON field, or x when the tool failed or printed nothing.
val() { local v; v=$(jget "$1" "$2"); echo "${v:-x}"; }

# Each throughput run prints "ACKED LIVE REPLAY" in msg/s, each latency
# run "P50 P99 P999" in µs ("-" not measured, "x" stalled or failed).

dafka_cluster() {
    "$bin/dafka_towerd" --sub 'tcp://127.0.0.1:*' --pub 'tcp://127.0.0.1:*' --metrics off 2>"$work/tower.log" &
    pids+=($!)
    wait_for "$work/tower.log" "beacons in on"
    read -r sub pub < <(sed -n 's/.*beacons in on \([^,]*\), out on \(.*\)/\1 \2/p' "$work/tower.log")
    towers=(--sub "$sub" --pub "$pub")
    rm -rf "$work/db"
    "$bin/dafka_stored" "${towers[@]}" --metrics off --db "$work/db" 2>"$work/store.log" &
    pids+=($!)
    wait_for "$work/store.log" serving
}

dafka_run() {
    local size=$1 count=$2 a l r
    dafka_cluster
    a=$(val "$(bounded "$bin/dafka_perf_store" "${towers[@]}" --topic acked --json "$count" "$size" 2>/dev/null)" msg_per_s)
    bounded "$bin/dafka_perf_consumer" "${towers[@]}" --topic live --json "$count" "$size" >"$work/live.json" 2>/dev/null &
    local lp=$!
    # The producer starts once the store and the consumer are connected,
    # so the consumer reads the run live (C's tool pauses 1 s instead).
    bounded "$bin/dafka_perf_store" "${towers[@]}" --peers 2 --topic live --json "$count" "$size" >/dev/null 2>&1 || true
    wait "$lp" || true
    l=$(val "$(cat "$work/live.json")" msg_per_s)
    r=$(val "$(bounded "$bin/dafka_perf_consumer" "${towers[@]}" --topic acked --json "$count" "$size" 2>/dev/null)" msg_per_s)
    stop "${pids[@]}"
    echo "$a $l $r"
}

# The C original through its own tools and zconfig format. Its tools print
# nothing when ready: one beacon interval is what its own console
# consumer waits, so that is what we wait too.
c_cluster() {
    local p1 p2
    p1=$(free_port); p2=$(free_port)
    rm -rf "$work/cdb"
    printf 'beacon\n    sub_address = "tcp://127.0.0.1:%s"\n    pub_address = "tcp://127.0.0.1:%s"\ntower\n    sub_address = "tcp://127.0.0.1:%s"\n    pub_address = "tcp://127.0.0.1:%s"\nstore\n    db = "%s"\n' \
        "$p1" "$p2" "$p1" "$p2" "$work/cdb" >"$work/c.cfg"
    sed 's/^store$/consumer\n    offset\n        reset = "earliest"\nstore/' "$work/c.cfg" >"$work/c-replay.cfg"
    "$cbin/dafka_towerd" -c "$work/c.cfg" >"$work/ctower.log" 2>&1 &
    pids+=($!)
    "$cbin/dafka_stored" -c "$work/c.cfg" >"$work/cstore.log" 2>&1 &
    pids+=($!)
    sleep 1
}

c_dafka_run() {
    local size=$1 count=$2 a l r
    local rate='s/.*mean throughput: \([0-9]*\) \[msg\/s\].*/\1/p'
    c_cluster
    a=$(bounded "$cbin/dafka_perf_store" -c "$work/c.cfg" "$count" "$size" 2>/dev/null | sed -n "$rate" || true)
    bounded "$cbin/dafka_perf_consumer" -c "$work/c.cfg" "$count" "$size" >"$work/clive.txt" 2>/dev/null &
    local lp=$!
    sleep 1 # its consumer, too, waits a beacon interval before it subscribes
    bounded "$cbin/dafka_perf_store" -c "$work/c.cfg" "$count" "$size" >/dev/null 2>&1 || true
    wait "$lp" || true
    l=$(sed -n "$rate" "$work/clive.txt")
    # Its replay can stall for good (a fetched range it drops and never
    # asks for again): 60 s without finishing counts as stalled.
    r=$(limit=60 bounded "$cbin/dafka_perf_consumer" -c "$work/c-replay.cfg" "$count" "$size" 2>/dev/null | sed -n "$rate" || true)
    stop "${pids[@]}"
    echo "${a:-x} ${l:-x} ${r:-x}"
}

redis_server() {
    port=$(free_port)
    rm -rf "$work/redis"; mkdir -p "$work/redis"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$work/redis" --appendonly yes --appendfsync "$1" \
        --save '' --daemonize no >"$work/redis.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
}

# XADDs $count entries of $payload to key $1 on $port; prints the rate.
xadd() {
    bounded redis-benchmark -p "$port" -n "$count" -P 64 -c 4 --csv XADD "$1" '*' v "$payload" 2>/dev/null |
        awk -F'","' 'NR == 2 { print int($2) }'
}

# Writes: redis-benchmark's pipelined XADD (-P 64 over 4 connections); with
# `appendfsync always` each reply waits for the AOF fsync.
redis_run() {
    local size=$1 count=$2 fsync=$3 a l r payload
    redis_server "$fsync"
    payload=$(head -c "$size" /dev/zero | tr '\0' x)
    a=$(xadd acked); a=${a:-x}
    if [ -n "$pb" ]; then
        bounded "$pb" redis-live "127.0.0.1:$port" live "$count" "$size" >"$work/rlive.json" 2>/dev/null &
        local lp=$!
        xadd live >/dev/null || true
        wait "$lp" || true
        l=$(val "$(cat "$work/rlive.json")" msg_per_s)
        r=$(val "$(bounded "$pb" redis-replay "127.0.0.1:$port" acked "$count" "$size" 2>/dev/null)" msg_per_s)
    fi
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    stop "${pids[@]}"
    echo "$a ${l:--} ${r:--}"
}

nats_server() {
    port=$(free_port)
    rm -rf "$work/nats"
    nats-server -a 127.0.0.1 -p "$port" -js -sd "$work/nats" >"$work/nats.log" 2>&1 &
    pids+=($!)
    wait_for "$work/nats.log" "Server is ready"
    url="nats://127.0.0.1:$port"
}

# Publishes with async acks (8192 in flight), ordered pull consumers.
nats_run() {
    local size=$1 count=$2 a l r
    nats_server
    a=$(val "$(bounded "$pb" nats-acked "$url" acked "$count" "$size" 2>/dev/null)" msg_per_s)
    bounded "$pb" nats-live "$url" live "$count" "$size" >"$work/nlive.json" 2>"$work/nlive.err" &
    local lp=$!
    wait_for "$work/nlive.err" ready || true
    bounded "$pb" nats-acked "$url" live "$count" "$size" >/dev/null 2>&1 || true
    wait "$lp" || true
    l=$(val "$(cat "$work/nlive.json")" msg_per_s)
    r=$(val "$(bounded "$pb" nats-replay "$url" acked "$count" "$size" 2>/dev/null)" msg_per_s)
    stop "${pids[@]}"
    echo "$a $l $r"
}

lat_of() { echo "$(val "$1" p50_us) $(val "$1" p99_us) $(val "$1" p999_us)"; }

# Latency at 10,000 msg/s of 100 B records, each peer with its native
# client; the two Dafkas also through their console tools (stdin to
# stdout, pipes included), the only way to time the C one.
latency_run() {
    local peer=$1 n=$lat_count out=""
    case $peer in
        dafka)
            dafka_cluster
            out=$(bounded "$bin/dafka_perf_latency" "${towers[@]}" --json --rate 10000 "$n" 100 2>/dev/null || true) ;;
        dafka-console)
            dafka_cluster
            out=$(bounded "$pb" pipe-latency "$n" 100 10000 -- "$bin/dafka_console_producer" "${towers[@]}" lat \
                -- "$bin/dafka_console_consumer" "${towers[@]}" lat 2>/dev/null || true) ;;
        c-dafka-console)
            c_cluster
            out=$(bounded "$pb" pipe-latency "$n" 100 10000 -- "$cbin/dafka_console_producer" -c "$work/c.cfg" lat \
                -- stdbuf -oL "$cbin/dafka_console_consumer" -c "$work/c.cfg" lat 2>/dev/null || true) ;;
        redis-always | redis-everysec)
            redis_server "${peer#redis-}"
            out=$(bounded "$pb" redis-latency "127.0.0.1:$port" lat "$n" 100 10000 2>/dev/null || true)
            redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true ;;
        nats)
            nats_server
            out=$(bounded "$pb" nats-latency "$url" lat "$n" 100 10000 2>/dev/null || true) ;;
        zmq)
            out=$(bounded "$bin/dafka_perf_zmq" --json --rate 10000 "$n" 100 2>/dev/null || true) ;;
    esac
    # (No server for bare ZeroMQ: `stop` with no pid would wait for any.)
    [ ${#pids[@]} -eq 0 ] || stop "${pids[@]}"
    lat_of "$out"
}

# Synced write bandwidth of the disk under $work, in MB/s, with blocks of
# $1 (O_DSYNC: each write waits for the device): 64k as a small batch, 1M
# as the multi-megabyte batches a store writes under load.
disk_mb_s() {
    dd if=/dev/zero of="$work/dd" bs="$1" count="$2" oflag=dsync 2>&1 |
        awk '/copied/ { for (i = 1; i < NF; i++) if ($(i+1) ~ /^[kMG]B\/s$/) { v = $i; if ($(i+1) == "GB/s") v *= 1000; if ($(i+1) == "kB/s") v /= 1000; print v } }'
    rm -f "$work/dd"
}

peers=(dafka)
lpeers=(dafka)
[ -n "$cbin" ] && peers+=(c-dafka)
[ -n "$pb" ] && lpeers+=(dafka-console)
[ -n "$cbin" ] && [ -n "$pb" ] && lpeers+=(c-dafka-console)
command -v redis-server >/dev/null && peers+=(redis-always redis-everysec)
command -v redis-server >/dev/null && [ -n "$pb" ] && lpeers+=(redis-always redis-everysec)
command -v nats-server >/dev/null && [ -n "$pb" ] && peers+=(nats) && lpeers+=(nats)

# ONLY="dafka nats" keeps just those peers (and their latency rows).
if [ -n "${ONLY:-}" ]; then
    keep() { local p o; for p in "$@"; do for o in $ONLY; do [ "$p" = "$o" ] || [ "$p" = "$o-console" ] && echo "$p"; done; done; }
    mapfile -t peers < <(keep "${peers[@]}")
    mapfile -t lpeers < <(keep "${lpeers[@]}")
fi
# Bare ZeroMQ at the same pacing, always: the floor this machine's
# scheduling sets under every latency row.
lpeers+=(zmq)

declare -A runs
disks=()
disks64=()
for round in $(seq "$rounds"); do
    disks+=("$(disk_mb_s 1M 300)")
    disks64+=("$(disk_mb_s 64k 2000)")
    for cs in "${counts[@]}"; do
        size=${cs%%:*}; count=${cs##*:}
        for peer in "${peers[@]}"; do
            say "round $round/$rounds: $peer, $count records of $size B"
            settle
            case $peer in
                dafka) r=$(dafka_run "$size" "$count") ;;
                c-dafka) r=$(c_dafka_run "$size" "$count") ;;
                redis-*) r=$(redis_run "$size" "$count" "${peer#redis-}") ;;
                nats) r=$(nats_run "$size" "$count") ;;
            esac
            say "  $r"
            runs[$peer/$size]+="$r;"
        done
    done
    for peer in "${lpeers[@]}"; do
        say "round $round/$rounds: $peer latency, $lat_count records of 100 B at 10,000/s"
        settle
        r=$(latency_run "$peer")
        say "  $r"
        runs[$peer/lat]+="$r;"
    done
done

source scripts/peers/table.sh

#!/usr/bin/env bash
# make bench: Dafka's benchmark table, every role a separate process on
# loopback. BENCH_QUICK=1 runs smaller counts (a few minutes in all).
#
# For each record size (100 B, 1 KiB, 64 KiB): a tower and a store on a
# fresh RocksDB directory; dafka_perf_store alone (throughput until every
# record is ACKed); a live dafka_perf_consumer while a second producer run
# goes by; a replay of the first partition from the store; and the raw
# ZeroMQ PUB/SUB ceiling, with one frame per message (the C baseline) and
# with three (a RECORD's key, header and content). Then latency at
# 10,000 msg/s, the time a new consumer takes to its first record, and
# how long a store takes to find a time (--from-time) in one long partition.
# The 100 B and 1 KiB runs and the latency run are repeated with CURVE on
# every socket (rows marked --secure); as root, 100 B ACKed is measured
# again with the producer on another network namespace than the store.
# Peak RSS is each process's high-water mark (VmHWM / time -f %M).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if ! command -v /usr/bin/time >/dev/null; then apt-get install -y time >/dev/null; fi
# The same build as the tests (one RocksDB build): dependencies at -O3.
cargo build --locked --workspace --all-targets
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target/debug"

work=$(mktemp -d)
pids=()
cleanup() {
    kill -INT "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
    rm -rf "$work"
    # What across_hosts made, if it was interrupted.
    ip netns del "dkbn$$1" 2>/dev/null || true
    ip netns del "dkbn$$2" 2>/dev/null || true
    ip link del "dkbn$$b" 2>/dev/null || true
}
trap cleanup EXIT

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    counts=(100:300000 1024:100000 65536:3000)
    lat_count=20000
    spool_counts=(never:300000 interval:300000 always:2000)
    index_count=1000000
    group_count=300000
else
    counts=(100:2000000 1024:500000 65536:10000)
    lat_count=100000
    spool_counts=(never:1000000 interval:1000000 always:10000)
    index_count=10000000
    group_count=1000000
fi

# A JSON field of a tool's one-line result.
jget() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" <<<"$1"; }
peak_kb() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mb() { awk -v k="$1" 'BEGIN { printf "%.0f", k / 1024 }'; }
say() { echo "== $*" >&2; }

start_cluster() {
    "$bin/dafka_towerd" --sub 'tcp://127.0.0.1:*' --pub 'tcp://127.0.0.1:*' 2>"$work/tower.log" &
    tower=$!; pids+=($tower)
    for _ in $(seq 100); do grep -q "beacons in on" "$work/tower.log" && break; sleep 0.1; done
    read -r sub pub < <(sed -n 's/.*beacons in on \([^,]*\), out on \(.*\)/\1 \2/p' "$work/tower.log")
    towers=(--sub "$sub" --pub "$pub")
    rm -rf "$work/db"
    "$bin/dafka_stored" "${towers[@]}" --db "$work/db" 2>"$work/store.log" &
    store=$!; pids+=($store)
    for _ in $(seq 100); do grep -q "serving" "$work/store.log" && break; sleep 0.1; done
}

stop_cluster() {
    store_kb=$(peak_kb "$store"); tower_kb=$(peak_kb "$tower")
    kill -INT "$store" "$tower"; wait "$store" "$tower" 2>/dev/null || true
    pids=()
}

source scripts/quiet-io.sh

# Runs a tool under /usr/bin/time: `timed NAME tool args...`; its JSON
# result goes to stdout, its peak RSS in KiB to the file $work/rss.NAME.
timed() { local name=$1; shift; /usr/bin/time -f %M -o "$work/rss.$name" "$@"; }

# ACKed, live and replay rates of COUNT records of SIZE bytes on a fresh
# cluster, into $work/{store,live,replay}.json and the peak RSS variables;
# extra arguments go to the producers (--key-bytes, --headers).
trio() {
    local size=$1 count=$2; shift 2
    start_cluster
    say "producer -> store ACKs"
    timed producer "$bin/dafka_perf_store" "${towers[@]}" "$@" --topic acked --json "$count" "$size" >"$work/store.json"
    producer_kb=$(cat "$work/rss.producer")
    say "live consumer (with a second producer run)"
    timed live "$bin/dafka_perf_consumer" "${towers[@]}" --topic live --json "$count" "$size" >"$work/live.json" &
    live=$!
    # Once the store and the consumer are connected: the run is read live.
    "$bin/dafka_perf_store" "${towers[@]}" "$@" --peers 2 --topic live --json "$count" "$size" >/dev/null
    wait "$live"
    live_kb=$(cat "$work/rss.live")
    say "replay from the store"
    timed replay "$bin/dafka_perf_consumer" "${towers[@]}" --topic acked --json "$count" "$size" >"$work/replay.json"
    replay_kb=$(cat "$work/rss.replay")
    rm -f "$work/named.json"
    if [ "${TRIO_NAMED:-0}" = 1 ]; then
        say "replay under a consumer name, auto-committing"
        "$bin/dafka_perf_consumer" "${towers[@]}" --topic acked --name bench --json "$count" "$size" >"$work/named.json"
    fi
    stop_cluster
}

# CURVE on every socket for what starts next (the --secure rows): one key
# pair for every process, enough to measure what encryption costs.
secure_on() {
    [ -f "$work/keys/node.secret" ] || { mkdir -p "$work/keys"; "$bin/dafka_keygen" "$work/keys/node" >/dev/null 2>&1; }
    export DAFKA_SECURITY__ENABLED=true DAFKA_SECURITY__SECRET_KEY_FILE="$work/keys/node.secret" \
        DAFKA_SECURITY__AUTHORIZED_KEYS="$work/keys/node.public" DAFKA_SECURITY__TOWER_KEYS="$(cat "$work/keys/node.public")"
}
secure_off() {
    unset DAFKA_SECURITY__ENABLED DAFKA_SECURITY__SECRET_KEY_FILE DAFKA_SECURITY__AUTHORIZED_KEYS DAFKA_SECURITY__TOWER_KEYS
}

# ACKed 100 B records with the tower and store on one test host (a network
# namespace) and the producer on another, through veth pairs and a bridge:
# what the kernel's network path costs against loopback. Needs root and
# `ip`; prints nothing otherwise. Addresses exist only in the namespaces.
across_hosts() {
    local count=$1 ns=dkbn$$ r
    [ "$(id -u)" = 0 ] && command -v ip >/dev/null || return 0
    ip link add "${ns}b" type bridge && ip link set "${ns}b" up || return 0
    for h in 1 2; do
        ip netns add "$ns$h" && ip -n "$ns$h" link set lo up
        ip link add "${ns}v$h" type veth peer name eth0 netns "$ns$h"
        ip link set "${ns}v$h" master "${ns}b" && ip link set "${ns}v$h" up
        ip -n "$ns$h" addr add "10.213.251.$h/24" dev eth0 && ip -n "$ns$h" link set eth0 up
    done
    ip netns exec "${ns}1" "$bin/dafka_towerd" --sub 'tcp://10.213.251.1:*' --pub 'tcp://10.213.251.1:*' --metrics off 2>"$work/ntower.log" &
    local tw=$!
    pids+=("$tw")
    for _ in $(seq 100); do grep -q "beacons in on" "$work/ntower.log" && break; sleep 0.1; done
    local nsub npub
    read -r nsub npub < <(sed -n 's/.*beacons in on \([^,]*\), out on \(.*\)/\1 \2/p' "$work/ntower.log")
    DAFKA_BEACON__BIND='tcp://10.213.251.1:*' ip netns exec "${ns}1" "$bin/dafka_stored" --sub "$nsub" --pub "$npub" \
        --metrics off --db "$work/ndb" 2>"$work/nstore.log" &
    local st=$!
    pids+=("$st")
    for _ in $(seq 100); do grep -q "serving" "$work/nstore.log" && break; sleep 0.1; done
    r=$(DAFKA_BEACON__BIND='tcp://10.213.251.2:*' ip netns exec "${ns}2" "$bin/dafka_perf_store" --sub "$nsub" --pub "$npub" \
        --topic acked --json "$count" 100)
    kill -INT "$st" "$tw"; wait "$st" "$tw" 2>/dev/null || true
    rm -rf "$work/ndb"
    ip netns del "${ns}1"; ip netns del "${ns}2"; ip link del "${ns}b"
    rows+=("$(printf '%-6s %-22s %12.0f %9.1f %7.2f' 100 "store, across 2 hosts" "$(jget "$r" msg_per_s)" \
        "$(jget "$r" mb_per_s)" "$(awk -v a="$(jget "$r" msg_per_s)" -v b="${ceilings[100]}" 'BEGIN { print a / b }')")")
}

# Table rows for what `trio` measured: `trio_rows SIZE LABEL CEILING`.
trio_rows() {
    local size=$1 label=$2 ceiling=$3 kind r rate
    for kind in store live replay named; do
        [ -s "$work/$kind.json" ] || continue
        r=$(cat "$work/$kind.json")
        rate=$(jget "$r" msg_per_s)
        local shown=$kind
        [ "$kind" = named ] && shown="replay, auto-commit"
        rows+=("$(printf '%-6s %-22s %12.0f %9.1f %7.2f' "$size" "$shown$label" "$rate" "$(jget "$r" mb_per_s)" \
            "$(awk -v a="$rate" -v b="$ceiling" 'BEGIN { print a / b }')")")
    done
}

rows=()
declare -A ceilings
for cs in "${counts[@]}"; do
    size=${cs%%:*}; count=${cs##*:}
    say "$size B: $count records"
    TRIO_NAMED=$([ "$size" = 100 ] && echo 1 || echo 0) trio "$size" "$count"
    say "raw ZeroMQ PUB/SUB"
    zmq=$("$bin/dafka_perf_zmq" --json "$count" "$size")
    ceiling=$(jget "$zmq" msg_per_s)
    ceilings[$size]=$ceiling
    trio_rows "$size" "" "$ceiling"
    rows+=("$(printf '%-6s %-22s %12.0f %9.1f %7.2f' "$size" "raw zmq pub/sub" "$ceiling" "$(jget "$zmq" mb_per_s)" 1)")
    zmq3=$("$bin/dafka_perf_zmq" --frames 3 --json "$count" "$size")
    rate3=$(jget "$zmq3" msg_per_s)
    rows+=("$(printf '%-6s %-22s %12.0f %9.1f %7.2f' "$size" "raw zmq, 3 frames" "$rate3" "$(jget "$zmq3" mb_per_s)" \
        "$(awk -v a="$rate3" -v b="$ceiling" 'BEGIN { print a / b }')")")
    rows+=("$(printf '%-6s peak RSS MB: producer %s, live consumer %s, replay consumer %s, store %s, tower %s' \
        "$size" "$(mb "$producer_kb")" "$(mb "$live_kb")" "$(mb "$replay_kb")" "$(mb "$store_kb")" "$(mb "$tower_kb")")")
    if [ "$size" = 100 ]; then
        say "$size B with a 16 B key and two headers: $count records"
        trio "$size" "$count" --key-bytes 16 --headers 2
        trio_rows "$size" ", key+2 headers" "$ceiling"
        # Retention deleting while the producer writes: a limit of a
        # quarter of the run, checked every second.
        limit=$((count * size / 4))
        say "$size B, ACKed while retention deletes (retention_bytes=$limit)"
        export DAFKA_STORE__RETENTION_BYTES=$limit DAFKA_STORE__RETENTION_CHECK=1s
        start_cluster
        unset DAFKA_STORE__RETENTION_BYTES DAFKA_STORE__RETENTION_CHECK
        r=$("$bin/dafka_perf_store" "${towers[@]}" --topic acked --json "$count" "$size")
        stop_cluster
        cuts=$(grep -c "retention deleted" "$work/store.log" || true)
        rate=$(jget "$r" msg_per_s)
        rows+=("$(printf '%-6s %-22s %12.0f %9.1f %7.2f  (%s cuts)' "$size" "store, retention on" "$rate" \
            "$(jget "$r" mb_per_s)" "$(awk -v a="$rate" -v b="$ceiling" 'BEGIN { print a / b }')" "$cuts")")
    fi
done

say "100 B ACKed across two network namespaces (veth and a bridge)"
across_hosts "${counts[0]##*:}"

# The same runs with [security] on: what CURVE costs (100 B and 1 KiB).
for cs in "${counts[@]}"; do
    size=${cs%%:*}; count=${cs##*:}
    [ "$size" = 65536 ] && continue
    say "$size B with CURVE on every socket: $count records"
    secure_on
    TRIO_NAMED=0 trio "$size" "$count"
    secure_off
    trio_rows "$size" ", --secure" "${ceilings[$size]}"
done

say "latency: $lat_count records of 100 B at 10,000/s"
# Delete the runs' databases and write back what they left in the page
# cache first: the kernel's flusher threads (and the file system freeing
# gigabytes) would otherwise compete for the two cores while we time.
rm -rf "$work/db"
sync
quiet_io
start_cluster
lat=$("$bin/dafka_perf_latency" "${towers[@]}" --json --rate 10000 "$lat_count" 100)
stop_cluster
secure_on
start_cluster
lat_secure=$("$bin/dafka_perf_latency" "${towers[@]}" --json --rate 10000 "$lat_count" 100)
stop_cluster
secure_off
# The same pacing over bare ZeroMQ (one PUB, one SUB, no Dafka): the
# machine's own floor.
lat_zmq=$("$bin/dafka_perf_zmq" --json --rate 10000 "$lat_count" 100)
start_cluster
say "join: first record of a new consumer"
join=$("$bin/dafka_perf_join" "${towers[@]}" --json)
# The producer spool (--state-dir): what each producer.spool_fsync costs.
spool_rows=()
for mc in "${spool_counts[@]}"; do
    mode=${mc%%:*}; n=${mc##*:}
    say "spooling producer, spool_fsync=$mode: $n records of 100 B"
    r=$(DAFKA_PRODUCER__STATE_DIR="$work/spool-$mode" DAFKA_PRODUCER__SPOOL_FSYNC="$mode" \
        "$bin/dafka_perf_store" "${towers[@]}" --topic "spool-$mode" --json "$n" 100)
    spool_rows+=("$(printf '100    %-22s %12.0f' "spool_fsync=$mode" "$(jget "$r" msg_per_s)")")
done
# A consumer group: 3 members over a producer of 8 partitions, reading a
# stored backlog; then one member killed (defaults: beacon.timeout 4 s).
say "group: 3 members, 8 partitions, $group_count records of 100 B; a member killed"
group=$("$bin/dafka_perf_group" "${towers[@]}" --json "$group_count" 100)
stop_cluster
# --from-time: a store finding a time in one long partition.
say "time index: $index_count records in one partition"
index=$("$bin/dafka_perf_time_index" --db "$work/index-db" --json "$index_count")
rm -rf "$work/index-db"
say "metrics: a store's /metrics with 10,000 partitions"
metrics=$(RUST_LOG=error "$bin/dafka_perf_metrics" --json 10000)

echo
echo "Dafka benchmarks ($(nproc) cores, $(uname -m), quick=${BENCH_QUICK:-0}); fsync=always"
printf '%-6s %-22s %12s %9s %7s\n' size path msg/s MB/s of-zmq
for r in "${rows[@]}"; do echo "$r"; done
for l in "dafka:$lat" "--secure:$lat_secure" "raw zmq:$lat_zmq"; do
    printf 'latency 100 B @ 10k/s, %-8s (us): p50 %s  p99 %s  p99.9 %s  max %s\n' "${l%%:*}" \
        "$(jget "${l#*:}" p50_us)" "$(jget "${l#*:}" p99_us)" "$(jget "${l#*:}" p999_us)" "$(jget "${l#*:}" max_us)"
done
echo "producer with a state directory, ACKed msg/s:"
for r in "${spool_rows[@]}"; do echo "$r"; done
printf 'time lookup in %s records (ms): first after open %.1f, p50 %.2f, p99 %.2f, max %.1f\n' \
    "$index_count" "$(jget "$index" first_ms)" "$(jget "$index" p50_ms)" "$(jget "$index" p99_ms)" "$(jget "$index" max_ms)"
printf '/metrics with 10,000 partitions (ms): p50 %.1f, max %.1f (%s bytes)\n' \
    "$(jget "$metrics" p50_ms)" "$(jget "$metrics" max_ms)" "$(jget "$metrics" body_bytes)"
printf 'group of 3 over 8 partitions, 100 B: %.0f msg/s from the stores (start included); a killed member'"'"'s partitions read again after %.1f s\n' \
    "$(jget "$group" msg_per_s)" "$(jget "$group" failover_s)"
printf 'join (ms): live median %.1f max %.1f; from store median %.1f max %.1f\n' \
    "$(jget "$join" live_ms_median)" "$(jget "$join" live_ms_max)" \
    "$(jget "$join" store_ms_median)" "$(jget "$join" store_ms_max)"

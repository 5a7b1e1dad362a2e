# Sourced by bench-peers.sh once every round has run: prints the table,
# the targets of issue 20 as measured, and writes the JSON beside it.
# Reads: runs[PEER/SIZE] and runs[PEER/lat] ("a b c;" per round), peers,
# lpeers, counts, disks, rounds, missing, target, lat_count.

durability() {
    case $1 in
        dafka | dafka-console) echo "RocksDB, fsync before every ACK; min_acks 1" ;;
        c-dafka | c-dafka-console) echo "LevelDB, never syncs; released at the first store's ACK" ;;
        redis-always) echo "AOF, appendfsync always" ;;
        redis-everysec) echo "AOF, appendfsync everysec (up to 1 s of writes at risk)" ;;
        nats) echo "file store; nats-server 2.9 syncs every 2 min (no sync_interval before 2.10)" ;;
        zmq) echo "nothing stored: one PUB to one SUB, no Dafka (this machine's floor)" ;;
    esac
}

# "median min max stalled finished" of column $2 over the rounds in $1:
# numbers only; x (stalled) counted apart; "-" when nothing was measured.
stat() {
    tr ';' '\n' <<<"$1" | awk -v c="$2" 'NF { print $c }' | sort -n |
        awk '$1 == "x" { x++; next } $1 != "-" { a[++n] = $1 }
             END { if (!n && !x) { print "- - - 0 0"; exit }
                   if (!n) { print "stalled - - " x " 0"; exit }
                   m = (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
                   printf "%d %d %d %d %d\n", m, a[1], a[n], x, n }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a ~ /^[0-9.]+$/ && b ~ /^[0-9.]+$/ && b > 0) printf "%.2f", a / b; else print "-" }'; }
median() { printf '%s\n' "$@" | sort -n | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR+1)/2)] }'; }

disk=$(median "${disks[@]}")
disk64=$(median "${disks64[@]}")
json="$target/bench-peers.json"
tbl="$work/table"
cpu=$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)
{
    echo "Dafka and its peers, $(date -u '+%Y-%m-%d %H:%M UTC'), $rounds round(s), quick=${BENCH_QUICK:-0}"
    echo "machine: $(nproc) cores ($cpu), $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), Linux $(uname -r)"
    echo "versions: dafka $(git rev-parse --short HEAD); C dafka c2dc88d with libzmq 4.3.5, czmq 4.2.1;" \
        "$(redis-server --version 2>/dev/null | awk '{ sub("v=", "", $3); print "redis " $3 }');" \
        "$(nats-server --version 2>/dev/null | sed 's/: v/ /')"
    echo "disk, synced writes (dd oflag=dsync): ${disk:-?} MB/s in 1 MiB blocks (rounds: ${disks[*]}), ${disk64:-?} MB/s in 64 KiB blocks"
    for m in "${missing[@]}"; do echo "not measured: $m"; done
    echo
    printf '%-6s %-8s %-15s %10s %21s %11s  %s\n' size path peer msg/s "range (rounds)" dafka/peer durability
} >"$tbl"

declare -A med
rows=()
row_json() { rows+=("$(printf '{"size":%s,"path":"%s","peer":"%s","msg_per_s":%s,"min":%s,"max":%s,"stalled_rounds":%s,"dafka_over_peer":%s,"durability":"%s"}' "$@")"); }
num_or_null() { [[ $1 =~ ^[0-9.]+$ ]] && echo "$1" || echo null; }
for cs in "${counts[@]}"; do
    size=${cs%%:*}
    for col in 1 2 3; do
        path=$(cut -d' ' -f"$col" <<<"ACKed live replay")
        read -r base _ <<<"$(stat "${runs[dafka/$size]:-}" "$col")"
        for peer in "${peers[@]}"; do
            read -r m lo hi x n <<<"$(stat "${runs[$peer/$size]:-}" "$col")"
            [ "$m" = "-" ] && continue
            med[$peer/$size/$path]=$m
            note=""
            [ "$x" -gt 0 ] && note=" [$x of $((x + n)) rounds stalled]"
            r=$(ratio "$base" "$m")
            [ "$peer" = dafka ] && r=""
            printf '%-6s %-8s %-15s %10s %21s %11s  %s\n' "$size" "$path" "$peer" "$m" "($lo-$hi)" "$r" "$(durability "$peer")$note" >>"$tbl"
            row_json "$size" "$path" "$peer" "$(num_or_null "$m")" "$(num_or_null "$lo")" "$(num_or_null "$hi")" "$x" "$(num_or_null "$r")" "$(durability "$peer")"
        done
    done
done
{
    echo
    echo "latency, $lat_count records of 100 B at 10,000 msg/s, µs (median over rounds of each percentile)"
    printf '%-16s %8s %8s %8s %14s  %s\n' peer p50 p99 p99.9 "p99 peer/dafka" durability
} >>"$tbl"
read -r _ dafka_p99 _ <<<"$(stat "${runs[dafka/lat]:-}" 2)"
for peer in "${lpeers[@]}"; do
    read -r p50 _ <<<"$(stat "${runs[$peer/lat]:-}" 1)"
    read -r p99 _ <<<"$(stat "${runs[$peer/lat]:-}" 2)"
    read -r p999 _ <<<"$(stat "${runs[$peer/lat]:-}" 3)"
    r=$(ratio "$p99" "$dafka_p99")
    [ "$peer" = dafka ] && r=""
    printf '%-16s %8s %8s %8s %14s  %s\n' "$peer" "$p50" "$p99" "$p999" "$r" "$(durability "$peer")" >>"$tbl"
    rows+=("$(printf '{"path":"latency","peer":"%s","p50_us":%s,"p99_us":%s,"p999_us":%s,"durability":"%s"}' \
        "$peer" "$(num_or_null "$p50")" "$(num_or_null "$p99")" "$(num_or_null "$p999")" "$(durability "$peer")")")
done

# The targets of issue 20, as measured in this run (a report, not a test).
target_line() { # name, measured ratio, goal
    local verdict=missed
    awk -v a="$2" -v b="$3" 'BEGIN { exit !(a ~ /^[0-9.]+$/ && a >= b) }' && verdict=met
    [ "$2" = "-" ] && verdict="not measured"
    printf '  %-58s %6s  (goal >= %s)  %s\n' "$1" "$2" "$3" "$verdict"
}
full=${counts[0]##*:}
{
    echo
    echo "targets (dafka / peer, this run)"
    target_line "100 B ACKed vs C Dafka" "$(ratio "${med[dafka/100/ACKed]:-}" "${med[c-dafka/100/ACKed]:-}")" 5
    target_line "100 B ACKed vs Redis, appendfsync always" "$(ratio "${med[dafka/100/ACKed]:-}" "${med[redis-always/100/ACKed]:-}")" 3
    target_line "100 B ACKed vs NATS JetStream" "$(ratio "${med[dafka/100/ACKed]:-}" "${med[nats/100/ACKed]:-}")" 1
    target_line "1 KiB ACKed vs C Dafka" "$(ratio "${med[dafka/1024/ACKed]:-}" "${med[c-dafka/1024/ACKed]:-}")" 3
    target_line "100 B live, $full-record burst, vs C Dafka" "$(ratio "${med[dafka/100/live]:-}" "${med[c-dafka/100/live]:-}")" 3
    target_line "64 KiB live vs C Dafka" "$(ratio "${med[dafka/65536/live]:-}" "${med[c-dafka/65536/live]:-}")" 1
    mbs=$(awk -v m="${med[dafka/65536/ACKed]:-0}" 'BEGIN { printf "%.0f", m * 65536 / 1e6 }')
    target_line "64 KiB ACKed, $mbs MB/s, vs the disk's synced ${disk:-?} MB/s" "$(ratio "$mbs" "${disk:-}")" 0.9
} >>"$tbl"

{
    echo "{\"date\":\"$(date -u +%FT%TZ)\",\"rounds\":$rounds,\"disk_dsync_mb_s\":$(num_or_null "${disk:-}"),\"disk_dsync_64k_mb_s\":$(num_or_null "${disk64:-}"),\"rows\":["
    printf '%s\n' "${rows[@]}" | sed '$!s/$/,/'
    echo "]}"
} >"$json"
echo
cat "$tbl"
echo
echo "JSON: $json"

#!/usr/bin/env bash
# The main job: a local Dafka cluster on the embedded defaults.
#
# Starts a tower (tcp://*:5556 and :5557) and a store (data in ./dafka-data),
# pipes ten lines through dafka_console_producer, reads the topic back from
# the beginning with dafka_console_consumer, and shuts everything down.
# Safe to run twice: the store keeps earlier runs' records, and the consumer
# prints those too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The same flags as the tests, so both share one RocksDB build.
cargo build --locked --workspace --all-targets
# Wherever cargo puts its output (CARGO_TARGET_DIR, a config file, or ./target).
target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bin="$target/debug"
data=./dafka-data
mkdir -p "$data"

pids=()
cleanup() { kill -INT "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

"$bin/dafka_towerd" & pids+=($!)
"$bin/dafka_stored" --db "$data/storedb" & pids+=($!)

echo "== producing 10 records to topic 'hello'" >&2
for i in $(seq 1 10); do echo "hello dafka $i ($(date +%T))"; done | "$bin/dafka_console_producer" hello
echo "== every record of 'hello' the store holds, oldest first per partition" >&2
"$bin/dafka_console_consumer" hello --from-beginning --print-offset --timeout-ms 3000
echo "== done; data kept in $data" >&2

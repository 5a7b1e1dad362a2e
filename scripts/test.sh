#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit, protocol and end-to-end
# tests. Safe to run twice. Set CARGO_TARGET_DIR to reuse a build.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Every rebuild leaves the previous test executables (hundreds of MB each,
# RocksDB linked in) beside the new ones; a target directory reused across
# runs would fill the disk. Keep the newest of each name. (awk without
# interval expressions: Debian's mawk has none, and `{16}` silently
# matched nothing, so nothing was ever deleted.)
prune_stale() {
    local dir
    for dir in deps examples; do
        dir="${CARGO_TARGET_DIR:-target}/debug/$dir"
        [ -d "$dir" ] || continue
        find "$dir" -maxdepth 1 -type f -perm -u+x -regextype posix-extended \
            -regex '.*-[0-9a-f]{16}' -printf '%T@ %f\n' |
            sort -rn |
            awk '{ n = $2; sub(/-[0-9a-f]+$/, "", n); if (seen[n]++) print $2 }' |
            while read -r f; do rm -f "$dir/$f"; done
    done
}
trap prune_stale EXIT
echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
# `cargo test` builds the examples but leaves them under hashed names; the
# end-to-end tests run them as target/debug/examples/NAME, which only a
# build puts there (a fresh machine has no earlier build that did).
echo "== cargo build" >&2
cargo build --locked --workspace --all-targets
echo "== cargo test" >&2
cargo test --locked --workspace --all-targets
# The fault, group and position tests once more with CURVE on every socket:
# every process gets keys and an allowlist (tests/support, secure_env).
echo "== end-to-end tests again with [security] on (DAFKA_TEST_SECURE)" >&2
DAFKA_TEST_SECURE=1 cargo test --locked --workspace --test faults --test groups --test positions

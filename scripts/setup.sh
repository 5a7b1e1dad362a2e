#!/usr/bin/env bash
# Installs what building Dafka needs on Debian, as root. Safe to run twice:
# it only calls apt-get when a package is missing.
#   libclang-dev       bindgen, for the RocksDB bindings
#   protobuf-compiler  protoc, for prost-build
#   g++ make           the C++ build of RocksDB
#   libzmq3-dev        ZeroMQ with libsodium (CURVE), linked through the
#                      override in .cargo/config.toml
set -euo pipefail
need=()
for pkg in libclang-dev protobuf-compiler g++ make libzmq3-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found: install Rust 1.89 or newer (https://rustup.rs) and run again" >&2
  exit 1
fi
for comp in rustfmt clippy; do
  cargo "${comp/rustfmt/fmt}" --version >/dev/null 2>&1 || rustup component add "$comp" >/dev/null 2>&1 || true
done

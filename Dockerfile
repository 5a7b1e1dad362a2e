# Builds the Dafka tools, then ships them in a slim runtime image.
#   docker build -t dafka .
#   docker run --rm -p 5556:5556 -p 5557:5557 dafka dafka_towerd
FROM rust:1.89-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends libclang-dev protobuf-compiler libzmq3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p dafka-cli --bins \
 && mkdir /out \
 && cp target/release/dafka_towerd target/release/dafka_stored \
       target/release/dafka_console_producer target/release/dafka_console_consumer \
       target/release/dafka_admin target/release/dafka_keygen /out/

FROM debian:bookworm-slim
# RocksDB is linked statically; libzmq (with libsodium, for CURVE) is
# Debian's, as in the build.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libstdc++6 libzmq5 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/dafka --create-home dafka
COPY --from=build /out/ /usr/local/bin/
USER dafka
WORKDIR /var/lib/dafka
EXPOSE 5556 5557
CMD ["dafka_towerd"]

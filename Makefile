# Convenience targets; each is a script under scripts/.
.PHONY: run test bench bench-quick bench-peers fuzz
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
bench:
	bash scripts/bench.sh
bench-quick:
	BENCH_QUICK=1 bash scripts/bench.sh
# Dafka next to C Dafka, Redis Streams and NATS JetStream (see the README).
bench-peers:
	bash scripts/bench-peers.sh
fuzz:
	cd crates/dafka-proto && cargo +nightly fuzz run decode -- -max_total_time=600

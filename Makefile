# Convenience targets; each is a script under scripts/.
.PHONY: run test fuzz
run:
	bash scripts/run.sh
test:
	bash scripts/test.sh
fuzz:
	cd crates/dafka-proto && cargo +nightly fuzz run decode -- -max_total_time=600

//! Runs `features/consumer.feature` against the real components.

mod steps;

fn main() {
    steps::run("consumer");
}

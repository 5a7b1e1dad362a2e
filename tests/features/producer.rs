//! Runs `features/producer.feature` against the real components.

mod steps;

fn main() {
    steps::run("producer");
}

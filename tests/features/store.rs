//! Runs `features/store.feature` against the real components.

mod steps;

fn main() {
    steps::run("store");
}

//! Runs `features/tower.feature` against the real components.

mod steps;

fn main() {
    steps::run("tower");
}

//! The protocol under a hostile simulated network: many seeds per run, each
//! a different mix of drops, duplicates, delays and restarts, all ending
//! with every record stored, ACKed and delivered once, in order.
//!
//! `DAFKA_SIM_SEEDS=N` runs more seeds; `DAFKA_SIM_SEED=S` replays one.

use dafka_testkit::sim::Sim;

fn seeds() -> Vec<u64> {
    let var = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    match (var("DAFKA_SIM_SEED"), var("DAFKA_SIM_SEEDS")) {
        (Some(s), _) => vec![s],
        (None, n) => (1..=n.unwrap_or(300)).collect(),
    }
}

fn run(stores: u8, consumers: u8, min_acks: usize, records: u64) {
    let mut totals = std::collections::BTreeMap::new();
    for seed in seeds() {
        let mut sim = Sim::new(seed, stores, consumers, min_acks);
        sim.run(records, 20_000);
        if let Err(e) = sim.check() {
            panic!("{e}");
        }
        for (k, v) in sim.summary() {
            *totals.entry(k).or_insert(0) += v;
        }
    }
    eprintln!("{stores} stores, {consumers} consumers, min_acks {min_acks}: {totals:?}");
}

#[test]
fn one_store_two_consumers() {
    run(1, 2, 1, 200);
}

#[test]
fn two_stores_quorum_of_two() {
    run(2, 1, 2, 200);
}

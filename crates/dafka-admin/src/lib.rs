//! The questions an operator asks of a running cluster, and the answers:
//! who is out there (from the towers), what each store holds of every
//! partition (log start, head, bytes), and how far a named consumer is.
//!
//! [`ask`] joins the mesh as a node of role `Admin` for one question, and
//! returns a [`Report`] once every tower and store it knows of answered,
//! or when the time given is up (the report then says who was silent).
//! The views in [`view`] turn a report into rows for people and scripts;
//! `dafka_admin` prints them.
//!
//! ```no_run
//! use dafka_admin::{ask, view, Question};
//! use std::time::Duration;
//!
//! let mesh = dafka_protocol::MeshConfig::default();
//! let report = ask(&mesh, Question::Partitions { topic: None }, Duration::from_secs(5))?;
//! for t in view::topics(&report) {
//!     println!("{}: {} partitions, {} records", t.topic, t.partitions, t.records);
//! }
//! # Ok::<(), dafka_admin::AdminError>(())
//! ```

mod handle;
mod machine;
mod report;
pub mod view;

pub use handle::{ask, AdminError};
pub use machine::{AdminCommand, AdminMachine};
pub use report::{Peer, Question, Report, StoreReport};

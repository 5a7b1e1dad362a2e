//! Asking a running cluster one question: a node of role `Admin` joins the
//! mesh for as long as the question takes, then leaves.

use crate::machine::{AdminCommand, AdminMachine};
use crate::report::{Question, Report};
use crossbeam_channel::{Receiver, Sender};
use dafka_proto::Role;
use dafka_protocol::MeshConfig;
use dafka_transport::{start, Mesh, MeshError, Port, StartError};
use std::time::{Duration, Instant};
use thiserror::Error;

/// Why a question could not be asked.
#[derive(Debug, Error)]
pub enum AdminError {
    /// The node could not join the mesh (a bad endpoint, no socket).
    #[error(transparent)]
    Start(#[from] StartError),
    /// Its sockets failed on the way.
    #[error("the admin node stopped before it had an answer")]
    Stopped,
}

impl From<MeshError> for AdminError {
    fn from(e: MeshError) -> Self {
        AdminError::Start(StartError::Mesh(e))
    }
}

struct AdminPort {
    command: Option<AdminCommand>,
    reports: Sender<Report>,
}

impl Port<AdminMachine> for AdminPort {
    fn command(&mut self, _accepts: bool) -> Option<AdminCommand> {
        self.command.take()
    }

    fn deliver(&mut self, report: Report) {
        let _ = self.reports.send(report);
    }

    fn persist(&mut self, never: std::convert::Infallible) -> Option<std::convert::Infallible> {
        match never {}
    }
}

/// Asks the cluster `mesh` describes one question and waits for the
/// answers, at most `timeout` (the report says who did not answer).
pub fn ask(mesh: &MeshConfig, question: Question, timeout: Duration) -> Result<Report, AdminError> {
    let ctx = zmq::Context::new();
    let id = dafka_protocol::new_node_id();
    // An admin node needs connections to stores only; it learns of the
    // others from the towers' lists.
    let mut node = Mesh::new(&ctx, id, Role::Admin, mesh, |r| r == Role::Store)?;
    node.show_discovery();
    let machine = AdminMachine::new(id, mesh.tower_outputs().len(), Instant::now());
    let (tx, rx): (Sender<Report>, Receiver<Report>) = crossbeam_channel::bounded(1);
    let port = AdminPort {
        command: Some(AdminCommand { question, timeout }),
        reports: tx,
    };
    let mut running = start("dafka-admin", ctx, node, machine, port)?;
    running.wake();
    // The machine answers by its deadline; the margin covers a driver
    // that is slow to take its command.
    let report = rx.recv_timeout(timeout + Duration::from_secs(2));
    running.join();
    report.map_err(|_| AdminError::Stopped)
}

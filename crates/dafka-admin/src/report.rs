//! What an admin question found.

use dafka_proto::{NodeId, PartitionState, Position, Role};

/// What to ask the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Question {
    /// Who the towers know.
    Peers,
    /// What every store holds, of one topic or of all.
    Partitions {
        /// Only this topic; every topic when `None`.
        topic: Option<String>,
    },
    /// What every store holds, and the positions a named consumer
    /// committed in its topics.
    Positions {
        /// The consumer's name.
        name: String,
    },
}

/// A node a tower knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its id.
    pub id: NodeId,
    /// What it is.
    pub role: Role,
    /// Where its publisher listens.
    pub endpoint: String,
    /// Milliseconds since a tower last heard it, when the report was made.
    pub age_ms: u64,
    /// A consumer's group (empty: none).
    pub group: String,
}

/// One store's answers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// The store.
    pub id: NodeId,
    /// Every partition it holds (of the topic asked), or `None` if it did
    /// not answer in time.
    pub partitions: Option<Vec<PartitionState>>,
    /// The named consumer's positions it keeps, or `None` if it did not
    /// answer in time (or the question was not about positions).
    pub positions: Option<Vec<Position>>,
}

/// Everything one question found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The question.
    pub question: Question,
    /// How many towers are configured.
    pub towers_expected: usize,
    /// The towers that answered.
    pub towers: Vec<NodeId>,
    /// Every node the towers know (this tool excluded), by role then id.
    pub peers: Vec<Peer>,
    /// Every store known or that answered, by id.
    pub stores: Vec<StoreReport>,
    /// The time ran out before every tower and store answered.
    pub timed_out: bool,
}

impl Report {
    /// Stores known that did not answer everything asked (none when only
    /// the towers were asked).
    pub fn silent_stores(&self) -> Vec<NodeId> {
        if self.question == Question::Peers {
            return Vec::new();
        }
        let positions = matches!(self.question, Question::Positions { .. });
        self.stores
            .iter()
            .filter(|s| s.partitions.is_none() || (positions && s.positions.is_none()))
            .map(|s| s.id)
            .collect()
    }

    /// Whether every configured tower and every store known answered.
    pub fn is_complete(&self) -> bool {
        !self.timed_out && self.towers.len() >= self.towers_expected
    }
}

//! The one interface every role's protocol logic implements.
//!
//! A [`Machine`] is fed [`Input`]s with the current time and hands back
//! [`Output`]s; it never touches a socket, a file or the clock. The same
//! machine runs under the ZeroMQ driver (`dafka-transport`) in production
//! and under the seeded simulator (`dafka-testkit`) in tests, so what the
//! simulator checks is what production runs.

use dafka_proto::{Beacon, Frames, FromMessage, Message};
use std::time::Instant;

/// What a machine is fed.
#[derive(Debug)]
pub enum Input<C, D> {
    /// A valid message from a peer.
    Message(Message),
    /// A peer subscribed to this prefix of our messages.
    Subscribed(Vec<u8>),
    /// A beacon that reached a tower, with the address of the connection it
    /// came in on (towers only).
    Beacon(Beacon, Option<String>),
    /// A command from the application.
    Command(C),
    /// Persistence the machine asked for has finished.
    Done(D),
}

/// A driver decodes what it reads straight into its queue of inputs.
impl<C, D> FromMessage for Input<C, D> {
    fn from_message(msg: Message) -> Self {
        Input::Message(msg)
    }

    fn message(&self) -> Option<&Message> {
        match self {
            Input::Message(m) => Some(m),
            _ => None,
        }
    }
}

/// What a machine asks its driver to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output<D, W> {
    /// Publish a message.
    Send(Message),
    /// Publish a run of `records` records the machine encoded itself, from
    /// where it keeps them: a producer holds every record until it is
    /// ACKed, and encoding from there spares a copy of each one.
    SendRun {
        /// The encoded RECORD or DIRECT-RECORD.
        frames: Frames,
        /// How many records it carries (for the counters).
        records: u64,
    },
    /// Start receiving messages under a routing prefix.
    Subscribe(Vec<u8>),
    /// Stop receiving messages under a routing prefix.
    Unsubscribe(Vec<u8>),
    /// Hand something to the application (records, delivery reports).
    Deliver(D),
    /// Make something durable; the driver answers with [`Input::Done`].
    Persist(W),
    /// Say this in the node's beacon from now on (and beacon at once): a
    /// consumer's group and its topic set, hashed.
    Announce {
        /// The group (empty: none).
        group: String,
        /// The topic set, hashed.
        topics: u64,
    },
}

/// A role's protocol logic.
pub trait Machine {
    /// What the application asks of it.
    type Command;
    /// What it hands to the application.
    type Delivery;
    /// What it asks to be made durable.
    type Work;
    /// The answer to a [`Machine::Work`].
    type Done;

    /// Takes one input.
    fn handle(&mut self, input: Input<Self::Command, Self::Done>, now: Instant);

    /// Everything that arrived in one turn has been handled: the moment to
    /// act on a batch (a store asks for its records to be written).
    fn end_of_turn(&mut self, _now: Instant) {}

    /// Timers: called on every turn, and at [`Machine::next_timeout`].
    fn on_timeout(&mut self, now: Instant);

    /// The next time [`Machine::on_timeout`] must run even if nothing
    /// arrives.
    fn next_timeout(&self) -> Option<Instant>;

    /// Moves pending outputs into `out`.
    fn drain(&mut self, out: &mut Vec<Output<Self::Delivery, Self::Work>>);

    /// A delivery the application's side handed back, emptied (a buffer of
    /// records), for the machine to fill again. Kept, two buffers take
    /// turns, their pages mapped once; a fresh one every turn had the
    /// kernel zero new pages as it grew.
    fn reuse(&mut self, _emptied: Self::Delivery) {}

    /// It has finished; the driver stops.
    fn is_done(&self) -> bool;

    /// Whether it takes more commands now (a producer over its memory bound
    /// does not: the application's publish waits).
    fn accepts_commands(&self) -> bool {
        true
    }
}

/// The type of a machine's outputs.
pub type OutputOf<M> = Output<<M as Machine>::Delivery, <M as Machine>::Work>;
/// The type of a machine's inputs.
pub type InputOf<M> = Input<<M as Machine>::Command, <M as Machine>::Done>;

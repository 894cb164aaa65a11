//! The checker's actions: the model's one list of spec actions, [`Step`],
//! taken by a server, plus the network's own `DuplicateMessage` and
//! `DropMessage`. A server's step
//! is carried out by [`raft_model::Server::step`], the dispatcher the node
//! and the trace validator call too; nothing here lists the actions again.

use std::fmt;

use raft_model::{NodeId, Step};

use crate::describe;
use crate::state::{Command, Image, Msg, SharedMsg};

/// A spec action of one server, its message held as the network holds it.
pub type ServerStep = Step<Command, Image, SharedMsg>;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `server` takes `step` (for a handler, `server` is the addressee).
    Server { server: NodeId, step: ServerStep },
    /// The network makes one more copy of a message in flight (spec
    /// `DuplicateMessage`, while `duplicates < MaxDuplicates`).
    DuplicateMessage(SharedMsg),
    /// The network loses one copy of a message in flight (spec `DropMessage`,
    /// while `drops < MaxDrops`).
    DropMessage(SharedMsg),
}

impl Action {
    /// `server` takes `step`.
    pub fn step(server: NodeId, step: ServerStep) -> Action {
        Action::Server { server, step }
    }

    /// The action that delivers `message` to its addressee: the handler for
    /// its kind.
    pub fn deliver(message: SharedMsg) -> Action {
        Action::Server {
            server: message.to,
            step: Step::receive(message),
        }
    }

    /// The spec's name of the action.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Server { step, .. } => step.action().name(),
            Action::DuplicateMessage(_) => "DuplicateMessage",
            Action::DropMessage(_) => "DropMessage",
        }
    }

    /// The server whose state the action changes (none for the network's).
    pub fn server(&self) -> Option<NodeId> {
        match self {
            Action::Server { server, .. } => Some(*server),
            Action::DuplicateMessage(_) | Action::DropMessage(_) => None,
        }
    }

    /// The server's step (none for the network's actions).
    pub fn server_step(&self) -> Option<&ServerStep> {
        match self {
            Action::Server { step, .. } => Some(step),
            Action::DuplicateMessage(_) | Action::DropMessage(_) => None,
        }
    }

    /// The message the action delivers or drops.
    pub fn message(&self) -> Option<&Msg> {
        match self {
            Action::Server { step, .. } => step.message().map(|m| &**m),
            Action::DuplicateMessage(m) | Action::DropMessage(m) => Some(m),
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Action::Server {
            server,
            step: raft_model::Step::ChangeConfig(members),
        } = self
        {
            let config = raft_model::Config::new(members.iter().copied());
            return write!(
                f,
                "{}({}, {})",
                self.name(),
                describe::server_name(*server),
                describe::config(&config)
            );
        }
        match (self.message(), self.server()) {
            (Some(message), _) => write!(f, "{}({})", self.name(), describe::message(message)),
            (None, Some(id)) => write!(f, "{}({})", self.name(), describe::server_name(id)),
            (None, None) => write!(f, "{}", self.name()),
        }
    }
}

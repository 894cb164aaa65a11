//! What the chaos clients record: one [`Operation`] per client call, with the
//! times it was invoked and answered (microseconds since the run began, all
//! from one clock in the harness process).
//!
//! An operation whose outcome is unknown (it timed out, or every node it
//! tried failed in a way that does not rule out that it applied) is
//! *indeterminate*: `ret` is `None` and `output` is [`Output::Unknown`]. It
//! may have taken effect at any moment after its invocation, or never. A
//! failed read has no effect and is not recorded at all.

use serde::{Deserialize, Serialize};

/// Microseconds since the start of the run.
pub type Micros = u64;

/// A key-value operation as the client asked for it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    Get,
    Put {
        value: String,
    },
    Delete,
    /// Set the key to `new_value` (None: delete it) if it is `expected`
    /// (None: the key is absent).
    Cas {
        expected: Option<String>,
        new_value: Option<String>,
    },
}

/// What the cluster answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Output {
    /// A read's value.
    Value(Option<String>),
    /// A put's or delete's previous value.
    Previous(Option<String>),
    /// A compare-and-swap's outcome and the value before it.
    Cas {
        succeeded: bool,
        previous: Option<String>,
    },
    /// No answer: the operation may or may not have taken effect.
    Unknown,
}

/// One client operation on one key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// Unique within a history (the order of recording).
    pub id: usize,
    pub client: u64,
    pub key: String,
    pub input: Input,
    pub output: Output,
    pub invoke: Micros,
    /// None: indeterminate (see the module docs).
    pub ret: Option<Micros>,
}

impl Operation {
    pub fn is_indeterminate(&self) -> bool {
        self.ret.is_none()
    }

    /// The return time, with an indeterminate operation returning "never".
    pub fn ret_or_never(&self) -> Micros {
        self.ret.unwrap_or(Micros::MAX)
    }

    /// The value this operation would leave in the key if it took effect
    /// (None for reads and failed compare-and-swaps, which write nothing).
    pub fn written(&self) -> Option<Option<&String>> {
        match (&self.input, &self.output) {
            (Input::Get, _) => None,
            (Input::Put { value }, _) => Some(Some(value)),
            (Input::Delete, _) => Some(None),
            (
                Input::Cas { .. },
                Output::Cas {
                    succeeded: false, ..
                },
            ) => None,
            (Input::Cas { new_value, .. }, _) => Some(new_value.as_ref()),
        }
    }

    /// The value this operation saw in the key, if its answer shows one.
    pub fn observed(&self) -> Option<Option<&String>> {
        match &self.output {
            Output::Value(value) | Output::Previous(value) => Some(value.as_ref()),
            Output::Cas { previous, .. } => Some(previous.as_ref()),
            Output::Unknown => None,
        }
    }

    /// Whether the answer says the operation changed the key (an
    /// acknowledged put, delete or successful compare-and-swap).
    pub fn acknowledged_write(&self) -> bool {
        match (&self.input, &self.output) {
            (Input::Put { .. } | Input::Delete, Output::Previous(_)) => true,
            (Input::Cas { .. }, Output::Cas { succeeded, .. }) => *succeeded,
            _ => false,
        }
    }
}

/// Operations grouped per key, each group in invocation order. A key-value
/// store is linearizable iff each key's history is (linearizability is
/// compositional), so the checker works one key at a time.
pub fn by_key(history: &[Operation]) -> std::collections::BTreeMap<String, Vec<Operation>> {
    let mut keys: std::collections::BTreeMap<String, Vec<Operation>> = Default::default();
    for op in history {
        keys.entry(op.key.clone()).or_default().push(op.clone());
    }
    for ops in keys.values_mut() {
        ops.sort_by_key(|op| (op.invoke, op.id));
    }
    keys
}

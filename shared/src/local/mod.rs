//! Embedded adapters for running without AWS: one SQLite file holds the store, idempotency
//! and audit records, the local queues, dead letters and published events; secrets come from
//! the environment or a JSON file.
//!
//! Only the CLI and the tests enable this module (feature `local`): deployed functions carry
//! the AWS adapters alone.

mod db;
pub mod faults;
mod objects;
mod queue;
mod runtime;
mod secrets;
mod store;

pub use db::LocalDb;
pub use objects::{FileObjects, local_objects};
pub use queue::{LocalBus, LocalMessage, LocalQueues, StoredEvent};
pub use runtime::{
    DrainSummary, Invoke, LOCAL_TIMEOUT, LocalFunction, LocalRuntime, MAX_RECEIVE_COUNT, VISIBILITY,
};
pub use secrets::{EnvSecrets, FileSecrets};

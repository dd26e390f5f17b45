//! The ports: the capabilities tasks and the harness are written against.
//!
//! Each is a narrow async trait with one production adapter (AWS) and one embedded adapter
//! (SQLite / in-process, behind the `local` feature). Adapters implement storage primitives
//! only; the semantics (idempotency states, audit chaining, caching) live once above them.

pub mod audit;
pub mod events;
pub mod idempotency;
pub mod objects;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod text;
pub mod web;

pub use audit::{AppendOutcome, AuditRecord, AuditStore, ChainHead};
pub use events::{BusEvent, EventPublisher};
pub use idempotency::{IdempotencyRecord, IdempotencyStatus, IdempotencyStore, PutInProgressError};
pub use objects::{FetchedObject, ObjectLocation, ObjectSource, Spool};
pub use queue::{DeadLetter, OutgoingMessage, Queues};
pub use secrets::Secrets;
pub use store::{Item, ItemKey, Page, PutCondition, Query, SkRange, Store};
pub use text::{Generation, StopReason, TextError, TextGenerator, TextRequest};
pub use web::{WebApi, WebRequest, WebResponse};

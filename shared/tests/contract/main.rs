//! One contract suite per port: each scenario is written once, as an async fn over the port,
//! and run against the embedded adapter (SQLite, `backbone::local`) and the AWS adapter (on the
//! moto emulator named by `AWS_ENDPOINT_URL`), so the local default cannot drift from
//! production.
//!
//! The AWS tests need the emulator: `scripts/test.sh` starts it; by hand,
//! `infra/moto.sh start && source .local/moto.env`. Without `AWS_ENDPOINT_URL` they fail under
//! `CI` and are skipped, with a notice, elsewhere.
//!
//! Beside the per-port suites: `differential` replays seeded random `Store` operations on both
//! backends and compares every answer; `wiring` builds `AwsAdapters` from the environment;
//! `faults` covers what the emulator cannot produce (throttling, partial batch failures) with a
//! scripted loopback responder, and needs no emulator.

mod helpers;

mod audit;
mod differential;
mod events;
mod faults;
mod idempotency;
mod objects;
mod queues;
mod secrets;
mod store;
mod wiring;

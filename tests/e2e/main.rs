//! End-to-end tests of the whole set, in one binary with shared helpers.

mod cli;
mod harness;
mod helpers;
mod monitoring;
mod reliability;
mod sqs;

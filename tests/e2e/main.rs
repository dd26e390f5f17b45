//! End-to-end tests of the whole set, in one binary with shared helpers.

mod cli;
mod harness;
mod helpers;
mod reliability;
mod sqs;

//! End-to-end tests of the whole set, in one binary with shared helpers.

mod checker;
mod cli;
mod dashboard;
mod functions;
mod harness;
mod helpers;
mod monitoring;
mod otel;
mod playlist;
mod properties;
mod reliability;
mod serve;
mod social;
mod sqs;

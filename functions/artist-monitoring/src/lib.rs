//! artist-monitoring: snapshots the artists of a watchlist every day, computes their trends
//! and raises alerts with evidence.

pub mod alerts;
pub mod snapshots;
pub mod trend;

//! streaming-metrics (being written).
pub mod detector;
pub mod model;
pub mod nab;
pub mod report;
pub mod rollups;
pub mod signals;
pub mod anomaly;

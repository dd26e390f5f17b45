//! track-analysis
pub mod analysis;
pub mod decode;
pub mod features;

//! # podscale-metrics
#![forbid(unsafe_code)]

pub mod config;
pub mod exposition;
pub mod presets;
pub mod template;

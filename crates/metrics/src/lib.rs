//! # podscale-metrics
#![forbid(unsafe_code)]

pub mod exposition;

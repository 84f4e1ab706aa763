//! The limits a job must stay within before it is given to a GPU (defaults from DESIGN.md).

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobLimits {
    pub max_source_bytes: u64,
    pub max_buffers: usize,
    pub max_total_buffer_bytes: u64,
    pub max_passes: usize,
    pub max_workgroups_per_dimension: u32,
    /// Wall time from submission to the GPU to the outputs being read back.
    pub deadline: Duration,
    /// Memory one job may take on the device: its buffers plus the staging copies its outputs are read
    /// back through. The executor lowers it further to what the adapter has.
    pub memory_budget: u64,
}

impl Default for JobLimits {
    fn default() -> Self {
        JobLimits {
            max_source_bytes: 256 << 10,
            max_buffers: 16,
            max_total_buffer_bytes: 1 << 30,
            max_passes: 64,
            max_workgroups_per_dimension: 65_535,
            deadline: Duration::from_secs(60),
            memory_budget: 2 << 30,
        }
    }
}

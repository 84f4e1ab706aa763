//! The GPU watchdog policy as the executor applies it (Windows' by default there; set explicitly here so
//! it runs on every platform): passes grouped into submissions by the budget, and a single dispatch that
//! runs too long refused with its reason. The budgets are extremes (none, or everything), so what is
//! asserted does not depend on how fast this GPU is.

use crate::common;

use std::time::Duration;

use common::*;
use idlegrid::gpu::{RunControl, Watchdog};
use idlegrid::job::{Fault, JobError};

const PASSES: usize = 64;

/// Any pass fits: after the first submission (one pass, to measure), the rest go together.
const UNLIMITED: Watchdog = Watchdog {
    submission_budget: Duration::MAX,
    dispatch_limit: Duration::MAX,
};

#[test]
fn without_a_watchdog_each_pass_is_a_submission_as_before() {
    let mut executor = executor();
    // No watchdog is Linux's default; Windows has one over a GPU, none over a software adapter.
    let gpu = executor.adapter_info().device_type != wgpu::DeviceType::Cpu;
    assert_eq!(executor.watchdog().is_some(), cfg!(windows) && gpu);
    executor.set_watchdog(None);
    let output = executor.run(&hashchain(256)).unwrap();
    assert_hashchain(&output.outputs, PASSES);
    assert_eq!(executor.stats().submissions, PASSES as u64);
}

#[test]
fn a_generous_budget_puts_the_passes_after_the_first_into_one_submission() {
    let mut executor = executor();
    executor.set_watchdog(Some(UNLIMITED));
    let control = RunControl::default();
    let output = executor.run_with(&hashchain(256), &control).unwrap();
    assert_hashchain(&output.outputs, PASSES);
    assert_eq!(executor.stats().submissions, 2);
    assert_eq!(control.passes_done(), PASSES as u32);
}

#[test]
fn a_budget_no_pass_fits_still_submits_each_pass_once() {
    let mut executor = executor();
    executor.set_watchdog(Some(Watchdog {
        submission_budget: Duration::ZERO,
        dispatch_limit: Duration::MAX,
    }));
    let output = executor.run(&hashchain(256)).unwrap();
    assert_hashchain(&output.outputs, PASSES);
    assert_eq!(executor.stats().submissions, PASSES as u64);
}

#[test]
fn a_dispatch_over_the_limit_is_refused_with_the_reason_and_the_next_job_runs() {
    let mut executor = executor();
    executor.set_watchdog(Some(Watchdog {
        submission_budget: Duration::MAX,
        dispatch_limit: Duration::ZERO,
    }));
    let control = RunControl::default();
    let error = executor
        .run_with(&hashchain(256), &control)
        .expect_err("every dispatch takes longer than zero");
    assert!(
        matches!(&error, JobError::DispatchTooLong { pass, .. } if pass == "advance"),
        "{error:?}"
    );
    assert_eq!(error.fault(), Fault::Machine);
    let message = error.to_string();
    assert!(message.starts_with("pass \"advance\" took "), "{message}");
    assert!(message.contains("split it into more passes"), "{message}");
    // Refused after the first pass: the rest never reached the GPU.
    assert_eq!(control.passes_done(), 1);
    assert_eq!(executor.stats().submissions, 1);

    executor.set_watchdog(Some(UNLIMITED));
    let output = executor.run(&hashchain(256)).unwrap();
    assert_hashchain(&output.outputs, PASSES);
}

//! The GPU watchdog: how the executor groups a job's passes into submissions where the driver resets
//! a GPU that works too long on one piece of work.
//!
//! Windows resets a GPU that has not finished its work after about 2 s (TDR, Timeout Detection and
//! Recovery): the person's screen goes black for a moment and every program's device is lost. So on
//! Windows each submission is planned to take at most [`Watchdog::submission_budget`] (far below, as
//! it also bounds the time to yield), judged from
//! the time per pass the previous submission took (the first holds one pass), and a single dispatch
//! measured over [`Watchdog::dispatch_limit`] ends the job with a reason: the next could cross the
//! driver's limit, and no split of passes can shorten one dispatch. Elsewhere there is no watchdog
//! at these times, and the executor submits pass by pass (see `executor`).

use std::time::Duration;

/// The submission budget and the longest dispatch allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watchdog {
    /// What one submission is planned to take at most.
    pub submission_budget: Duration,
    /// A pass that alone takes longer is refused.
    pub dispatch_limit: Duration,
}

/// One submission as it ran: how many passes, and the wall time from submitting it to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measured {
    pub passes: usize,
    pub elapsed: Duration,
}

impl Watchdog {
    /// Windows' watchdog fires at 2 s. Submissions stay far below it, at 25 ms: a pass is stopped
    /// only between submissions, so this is also how long a person coming back may wait for the GPU
    /// (the goal for time to yield is 50 ms); grouping still saves a submission per short pass. Half
    /// the watchdog's time for one dispatch is the most that is still safe to have measured once.
    pub const WINDOWS: Watchdog = Watchdog {
        submission_budget: Duration::from_millis(25),
        dispatch_limit: Duration::from_secs(1),
    };

    /// The watchdog over an adapter of `device_type` on the platform this runs on.
    pub fn for_adapter(device_type: wgpu::DeviceType) -> Option<Watchdog> {
        Watchdog::on(cfg!(windows), device_type)
    }

    /// Windows' watchdog resets GPUs; a software adapter (llvmpipe, WARP) runs on the CPU's threads,
    /// which no driver resets, and a long dispatch there blanks no screen.
    fn on(windows: bool, device_type: wgpu::DeviceType) -> Option<Watchdog> {
        (windows && device_type != wgpu::DeviceType::Cpu).then_some(Watchdog::WINDOWS)
    }

    /// How many of the `remaining` passes go into the next submission: as many as fit the budget at
    /// the time per pass `last` took, at least one; one when nothing was measured yet.
    pub fn passes_in_next(&self, last: Option<Measured>, remaining: usize) -> usize {
        if remaining == 0 {
            return 0;
        }
        let Some(last) = last.filter(|m| m.passes > 0) else {
            return 1;
        };
        let per_pass = last.elapsed / u32::try_from(last.passes).unwrap_or(u32::MAX);
        let fit = if per_pass.is_zero() {
            remaining
        } else {
            usize::try_from(self.submission_budget.as_nanos() / per_pass.as_nanos())
                .unwrap_or(usize::MAX)
        };
        fit.clamp(1, remaining)
    }

    /// The dispatch that `measured` shows ran too long alone, if it did: only a submission of one
    /// pass tells a single dispatch's time.
    pub fn too_long(&self, measured: Measured) -> Option<Duration> {
        (measured.passes == 1 && measured.elapsed > self.dispatch_limit).then_some(measured.elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_gpu_on_windows_has_a_watchdog() {
        use wgpu::DeviceType::{Cpu, DiscreteGpu, IntegratedGpu};
        assert_eq!(Watchdog::on(true, DiscreteGpu), Some(Watchdog::WINDOWS));
        assert_eq!(Watchdog::on(true, IntegratedGpu), Some(Watchdog::WINDOWS));
        assert_eq!(Watchdog::on(true, Cpu), None);
        assert_eq!(Watchdog::on(false, DiscreteGpu), None);
    }

    const MS: Duration = Duration::from_millis(1);

    fn measured(passes: usize, elapsed: Duration) -> Option<Measured> {
        Some(Measured { passes, elapsed })
    }

    #[test]
    fn the_first_submission_holds_one_pass() {
        assert_eq!(Watchdog::WINDOWS.passes_in_next(None, 64), 1);
        assert_eq!(Watchdog::WINDOWS.passes_in_next(None, 0), 0);
    }

    #[test]
    fn passes_fill_the_budget_at_the_last_submissions_time_per_pass() {
        let watchdog = Watchdog::WINDOWS;
        // 5 ms a pass: 5 fit in 25 ms.
        assert_eq!(watchdog.passes_in_next(measured(1, 5 * MS), 100), 5);
        // The same time per pass, measured over four passes.
        assert_eq!(watchdog.passes_in_next(measured(4, 20 * MS), 100), 5);
        // Never more than are left.
        assert_eq!(watchdog.passes_in_next(measured(1, 5 * MS), 3), 3);
        // A pass over the budget goes alone.
        assert_eq!(watchdog.passes_in_next(measured(1, 700 * MS), 10), 1);
        // Passes that slowed down (10 ms each now): fewer fit in the next submission.
        assert_eq!(watchdog.passes_in_next(measured(5, 50 * MS), 100), 2);
        // Nothing measurable: the rest together.
        assert_eq!(watchdog.passes_in_next(measured(3, Duration::ZERO), 10), 10);
    }

    #[test]
    fn a_single_dispatch_over_the_limit_is_too_long() {
        let watchdog = Watchdog::WINDOWS;
        let one = |elapsed| Measured { passes: 1, elapsed };
        assert_eq!(watchdog.too_long(one(1_200 * MS)), Some(1_200 * MS));
        assert_eq!(watchdog.too_long(one(1_000 * MS)), None);
        assert_eq!(watchdog.too_long(one(10 * MS)), None);
        // Several passes together say nothing of one dispatch.
        let several = Measured {
            passes: 3,
            elapsed: 1_500 * MS,
        };
        assert_eq!(watchdog.too_long(several), None);
    }

    #[test]
    fn only_windows_has_the_watchdog() {
        assert_eq!(
            Watchdog::for_adapter(wgpu::DeviceType::DiscreteGpu).is_some(),
            cfg!(windows)
        );
    }
}

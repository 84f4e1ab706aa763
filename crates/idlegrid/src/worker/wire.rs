//! The worker's protocol on its stdin and stdout: the network's length-prefixed postcard frames,
//! read and written with blocking I/O. The parent sends jobs and steering; the child says it is ready,
//! then answers each job once.

use std::borrow::Cow;
use std::io::{Read, Write};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::gpu::{ExecutorStats, JobOutput, OutputBuffer, Timing};
use crate::job::{Job, JobError, JobLimits};
use crate::protocol::{Capabilities, ProtocolError, decode_body, encode_frame, frame_len};

/// Parent to child.
// Each message is built, encoded and dropped at once; boxing the job would only add a copy.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum ToWorker<'a> {
    /// Run one job within `limits`; the child answers with [`FromWorker::Done`]. Borrowed when sent, so
    /// a job's inputs are not copied once more than the frame itself copies them.
    Run {
        job: Cow<'a, Job>,
        limits: JobLimits,
    },
    /// The run in progress is to stop between passes, or to pace itself.
    Steer { cancel: bool, gentle: bool },
}

/// Child to parent.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum FromWorker {
    /// The device's adapter is open (or why it could not be).
    Ready(Result<Capabilities, String>),
    /// Passes of the job in hand finished so far.
    Progress { passes_done: u32 },
    /// A job's result, and the worker's counters since it started (cache hits show it is warm).
    Done {
        result: Result<RunOutput, Failure>,
        stats: ExecutorStats,
    },
}

/// A job's outputs as the child read them back; the parent hashes them itself.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct RunOutput {
    outputs: Vec<(String, Vec<u8>)>,
    gpu_micros: u64,
    timing: Timing,
    adapter: String,
}

/// Why a job failed in the child, keeping apart the kinds the provider treats differently.
#[derive(Debug, Serialize, Deserialize)]
pub(super) enum Failure {
    Cancelled(String),
    Deadline { millis: u64 },
    DeviceLost(String),
    Other(String),
}

impl From<JobOutput> for RunOutput {
    fn from(output: JobOutput) -> RunOutput {
        RunOutput {
            outputs: output
                .outputs
                .into_iter()
                .map(|o| (o.name, o.bytes))
                .collect(),
            gpu_micros: u64::try_from(output.gpu_time.as_micros()).unwrap_or(u64::MAX),
            timing: output.timing,
            adapter: output.adapter,
        }
    }
}

impl From<RunOutput> for JobOutput {
    fn from(output: RunOutput) -> JobOutput {
        JobOutput {
            outputs: output
                .outputs
                .into_iter()
                .map(|(name, bytes)| OutputBuffer {
                    name,
                    blake3: blake3::hash(&bytes),
                    bytes,
                })
                .collect(),
            gpu_time: Duration::from_micros(output.gpu_micros),
            timing: output.timing,
            adapter: output.adapter,
        }
    }
}

impl From<JobError> for Failure {
    fn from(error: JobError) -> Failure {
        match error {
            JobError::Cancelled(why) => Failure::Cancelled(why),
            JobError::Deadline(deadline) => Failure::Deadline {
                millis: u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX),
            },
            JobError::DeviceLost(why) => Failure::DeviceLost(why),
            other => Failure::Other(other.to_string()),
        }
    }
}

impl From<Failure> for JobError {
    fn from(failure: Failure) -> JobError {
        match failure {
            Failure::Cancelled(why) => JobError::Cancelled(why),
            Failure::Deadline { millis } => JobError::Deadline(Duration::from_millis(millis)),
            Failure::DeviceLost(why) => JobError::DeviceLost(why),
            Failure::Other(message) => JobError::Reported(message),
        }
    }
}

/// Writes one frame and flushes it: the other side is waiting for it.
pub(super) fn write<T: Serialize>(to: &mut impl Write, message: &T) -> Result<(), ProtocolError> {
    to.write_all(&encode_frame(message)?).map_err(io_error)?;
    to.flush().map_err(io_error)
}

/// Reads one frame of at most `cap` bytes; `Ok(None)` when the stream ended cleanly between frames.
pub(super) fn read<T: DeserializeOwned>(
    from: &mut impl Read,
    cap: usize,
) -> Result<Option<T>, ProtocolError> {
    let mut header = [0u8; 4];
    match from.read_exact(&mut header) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(io_error(e)),
    }
    let len = frame_len(header, cap)?;
    let mut body = vec![0u8; len];
    from.read_exact(&mut body).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => ProtocolError::Truncated,
        _ => io_error(e),
    })?;
    decode_body(&body).map(Some)
}

fn io_error(error: std::io::Error) -> ProtocolError {
    ProtocolError::Connection(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_through_a_pipe_and_end_cleanly() {
        let mut pipe = Vec::new();
        write(
            &mut pipe,
            &ToWorker::Steer {
                cancel: true,
                gentle: false,
            },
        )
        .unwrap();
        write(&mut pipe, &FromWorker::Ready(Err("no adapter".into()))).unwrap();
        let mut reading = &pipe[..];
        let steer: ToWorker = read(&mut reading, 1024).unwrap().unwrap();
        assert!(matches!(
            steer,
            ToWorker::Steer {
                cancel: true,
                gentle: false
            }
        ));
        let ready: FromWorker = read(&mut reading, 1024).unwrap().unwrap();
        assert!(matches!(ready, FromWorker::Ready(Err(m)) if m == "no adapter"));
        assert!(read::<ToWorker>(&mut reading, 1024).unwrap().is_none());
    }

    #[test]
    fn a_cut_frame_or_an_oversized_one_is_an_error() {
        let frame = encode_frame(&ToWorker::Steer {
            cancel: false,
            gentle: true,
        })
        .unwrap();
        let mut cut = &frame[..frame.len() - 1];
        assert!(matches!(
            read::<ToWorker>(&mut cut, 1024),
            Err(ProtocolError::Truncated)
        ));
        let mut whole = &frame[..];
        assert!(matches!(
            read::<ToWorker>(&mut whole, 1),
            Err(ProtocolError::TooLarge { .. })
        ));
    }

    #[test]
    fn failures_keep_their_kind_across_the_pipe() {
        let deadline: JobError = Failure::from(JobError::Deadline(Duration::from_secs(3))).into();
        assert!(matches!(deadline, JobError::Deadline(d) if d == Duration::from_secs(3)));
        let cancelled: JobError = Failure::from(JobError::Cancelled("pass 2".into())).into();
        assert!(matches!(cancelled, JobError::Cancelled(_)));
        let other: JobError = Failure::from(JobError::Gpu("out of memory".into())).into();
        assert_eq!(other.to_string(), "GPU error: out of memory");
    }
}

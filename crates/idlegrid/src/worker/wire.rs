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
    Ready(Result<Capabilities, JobError>),
    /// Passes of the job in hand finished so far.
    Progress { passes_done: u32 },
    /// A job's result, and the worker's counters since it started (cache hits show it is warm). A
    /// failure crosses as the same [`JobError`] variant, so its fault is the child's own verdict.
    Done {
        result: Result<RunOutput, JobError>,
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
    use crate::job::{Fault, WgslError};

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
        let no_adapter = JobError::NoAdapter(" named like \"zzz\"".into());
        write(&mut pipe, &FromWorker::Ready(Err(no_adapter))).unwrap();
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
        assert!(
            matches!(&ready, FromWorker::Ready(Err(e @ JobError::NoAdapter(_)))
                if e.to_string() == "no GPU adapter found named like \"zzz\""),
            "{ready:?}"
        );
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

    /// Sends `error` as a worker's answer to a job through a pipe and reads it back.
    fn across_the_pipe(error: JobError) -> JobError {
        let mut pipe = Vec::new();
        let done = FromWorker::Done {
            result: Err(error),
            stats: ExecutorStats::default(),
        };
        write(&mut pipe, &done).unwrap();
        match read::<FromWorker>(&mut &pipe[..], 1 << 20).unwrap() {
            Some(FromWorker::Done { result: Err(e), .. }) => e,
            other => panic!("not a failed job: {other:?}"),
        }
    }

    #[test]
    fn failures_keep_their_variant_fault_and_message_across_the_pipe() {
        let wgsl = JobError::Wgsl(WgslError {
            file: "k.wgsl".into(),
            location: Some((3, 11)),
            message: "no definition in scope for identifier: `nope`".into(),
            source_line: Some("let y = nope;".into()),
        });
        let cases = [
            (wgsl, Fault::Job),
            (
                JobError::Validation("a binding is too small".into()),
                Fault::Job,
            ),
            (
                JobError::OverBudget {
                    buffers: 3 << 30,
                    staging: 1 << 30,
                    budget: 2 << 30,
                },
                Fault::Machine,
            ),
            (
                JobError::OutOfMemory("Out of Memory".into()),
                Fault::Machine,
            ),
            (JobError::DeviceLost("reset".into()), Fault::Machine),
            (JobError::Deadline(Duration::from_secs(3)), Fault::Deadline),
            (
                JobError::Cancelled("stopped after pass 2 of 4".into()),
                Fault::Cancelled,
            ),
        ];
        for (error, fault) in cases {
            let sent = format!("{error:?}");
            let message = error.to_string();
            let received = across_the_pipe(error);
            assert_eq!(format!("{received:?}"), sent);
            assert_eq!(received.fault(), fault, "{message}");
            assert_eq!(received.to_string(), message);
        }
    }

    #[test]
    fn an_io_error_crosses_as_its_message() {
        let error = JobError::Io {
            path: "input.bin".into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let message = error.to_string();
        let received = across_the_pipe(error);
        assert!(matches!(received, JobError::Io { .. }), "{received:?}");
        assert_eq!(received.to_string(), message);
        assert_eq!(received.fault(), Fault::Job);
    }
}

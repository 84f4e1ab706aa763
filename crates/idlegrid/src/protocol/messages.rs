//! The messages of `idlegrid/work/3` (provider and pool) and `idlegrid/submit/3` (submitter and pool).
//! `idlegrid/submit/2` is the same minus the [`SubmitReply::Blocked`] frame, which its peers never get.

use serde::{Deserialize, Serialize};

use crate::job::{Fault, Job};
use crate::onchain::{PendingPayout, PoolChain};
use crate::statement::{AddressBinding, Check, Id, Payout, Receipt, Signed};

/// A lease's number, unique within its pool.
pub type LeaseId = u64;

/// What a provider's GPU can take, sent with every request for work so the pool leases only jobs
/// that fit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    pub adapter: String,
    /// "discrete", "integrated", "virtual", "cpu" or "other".
    pub device_type: String,
    pub max_buffer_size: u64,
    pub max_storage_buffer_binding_size: u64,
    pub max_workgroups_per_dimension: u32,
    /// Matrix-multiply score from `idlegrid bench`, 0 when not measured.
    pub gflops: f32,
}

/// The size of one output buffer; its bytes follow the frame, in the order listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputHeader {
    pub name: String,
    pub size: u64,
}

impl OutputHeader {
    /// The outputs a job must return, in order: fixed by its output buffers' sizes, so whoever reads
    /// them knows how many bytes to accept before any arrive.
    pub fn expected(job: &Job) -> Vec<OutputHeader> {
        job.outputs()
            .map(|b| OutputHeader {
                name: b.name.clone(),
                size: b.init.size(),
            })
            .collect()
    }
}

/// Provider to pool; each on its own stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WorkRequest {
    /// Asks for up to `slots` leases, and confirms the statements it has stored since it last asked.
    /// `binding` names where the provider wants to be paid on a chain (absent: it has not said).
    Ask {
        capabilities: Capabilities,
        slots: u32,
        stored: Vec<Id>,
        binding: Option<Signed<AddressBinding>>,
    },
    /// Asks for an input by its BLAKE3 hash.
    Blob { hash: [u8; 32] },
    /// Returns a lease's outputs; their bytes follow, in the order of `outputs`.
    Result {
        lease: LeaseId,
        gpu_micros: u64,
        outputs: Vec<OutputHeader>,
    },
    /// Could not run the job; `fault` says whose fault that was (the pool's rules on it are in
    /// `pool::tries`), and the reason is told to the submitter.
    Failed {
        lease: LeaseId,
        fault: Fault,
        reason: String,
    },
    /// Gives leases back unfinished (the person came back): the pool hands them out again at once.
    GiveBack {
        leases: Vec<LeaseId>,
        reason: String,
    },
}

/// A statement the pool delivers until the provider confirms it stored it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Delivery {
    Receipt(Signed<Receipt>),
    Payout(Signed<Payout>),
    Check(Signed<Check>),
}

impl Delivery {
    pub fn id(&self) -> Id {
        match self {
            Delivery::Receipt(receipt) => receipt.id(),
            Delivery::Payout(payout) => payout.id(),
            Delivery::Check(check) => check.id(),
        }
    }
}

/// One job lent to one provider until a deadline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LeaseOffer {
    pub lease: LeaseId,
    pub job: Id,
    /// The job with its large inputs as blob references.
    pub manifest: Job,
    /// The lease lapses this long after it was offered; the run itself must end well before.
    pub expires_in_ms: u64,
}

/// Pool to provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum WorkReply {
    /// Leases (possibly none: then ask again after `retry_after_ms`) and statements to store; the
    /// chain the pool pays on (absent: its payouts are IOUs it signs) and the provider's payouts now
    /// broadcast on it and not yet signed.
    Work {
        leases: Vec<LeaseOffer>,
        deliveries: Vec<Delivery>,
        retry_after_ms: u32,
        chain: Option<PoolChain>,
        pending: Vec<PendingPayout>,
    },
    /// A blob of `size` bytes follows.
    Blob {
        size: u64,
    },
    Ack,
    Error {
        message: String,
    },
}

/// Submitter to pool; each on its own stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SubmitRequest {
    /// A manifest; the pool answers with the blobs it lacks, which the submitter then sends raw, in
    /// that order. `nonce` tells two submissions of the same job apart, and lets a submitter that lost
    /// the reply submit again without queueing the job twice.
    Job { manifest: Job, nonce: u64 },
    /// Follows a job until it ends.
    Watch { job: Id },
}

/// Where a job stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub state: JobState,
    /// Providers holding a lease on it now.
    pub running: u32,
    /// Results returned so far.
    pub results: u32,
    /// Results that must agree before it is verified.
    pub needed: u32,
    /// Why it has no result yet, when something is amiss: "failed on 1 provider (…); waiting for a
    /// second provider (1 connected)".
    pub note: Option<String>,
    /// What keeps it from starting, as a reason a program can act on (the note says it for people).
    /// Not part of this struct's encoding, so a `Progress` frame reads the same in submit/2: submit/3
    /// sends it in a [`SubmitReply::Blocked`] frame just before the `Progress` it belongs to.
    #[serde(skip)]
    pub blocked: Option<Blocker>,
}

/// Why a queued job cannot start now. A new reason needs a new submit protocol version: a peer cannot
/// read a variant it does not know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Blocker {
    /// No provider has asked the pool for work lately: nothing will run the job until one connects.
    NoProviderConnected,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    Queued,
    Running,
    Verified,
    Failed,
}

/// Pool to submitter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SubmitReply {
    NeedBlobs {
        hashes: Vec<[u8; 32]>,
    },
    Accepted {
        job: Id,
    },
    Progress(JobProgress),
    /// The verified outputs follow, in this order.
    Verified {
        outputs: Vec<OutputHeader>,
    },
    Failed {
        reason: String,
    },
    Error {
        message: String,
    },
    /// submit/3 only: what blocks the job, for the `Progress` frame that follows (its `blocked`).
    Blocked(Blocker),
}

/// Longest reason a peer's message may carry into logs, databases and other people's screens.
pub const MAX_REASON_CHARS: usize = 500;

/// `text` as one line for people: control characters (newlines, escapes) become spaces, runs of
/// whitespace one space, and anything past [`MAX_REASON_CHARS`] is cut with an ellipsis. Reasons come
/// from strangers (a provider's failure, a job's name) and end up in terminals and the window.
pub fn one_line(text: &str) -> String {
    let mut line = String::with_capacity(text.len().min(MAX_REASON_CHARS + 3));
    for (count, word) in text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .enumerate()
    {
        if count > 0 {
            line.push(' ');
        }
        line.push_str(word);
        if line.chars().count() > MAX_REASON_CHARS {
            let cut: String = line.chars().take(MAX_REASON_CHARS).collect();
            return cut + "…";
        }
    }
    line
}

#[cfg(test)]
mod one_line_tests {
    use super::*;

    #[test]
    fn control_characters_and_length_are_tamed() {
        assert_eq!(
            one_line("  worker\n\tcrashed \x1b[31m red "),
            "worker crashed [31m red"
        );
        assert_eq!(one_line("plain reason"), "plain reason");
        let long = one_line(&"x ".repeat(1000));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(one_line(""), "");
    }
}

#[cfg(test)]
mod submit_2_tests {
    use super::*;
    use crate::protocol::encode_frame;

    /// submit/2's shapes, as they were before `blocked` and `Blocked`.
    #[derive(Serialize)]
    struct JobProgress2 {
        state: JobState,
        running: u32,
        results: u32,
        needed: u32,
        note: Option<String>,
    }

    #[derive(Serialize)]
    #[allow(dead_code)]
    enum SubmitReply2 {
        NeedBlobs { hashes: Vec<[u8; 32]> },
        Accepted { job: Id },
        Progress(JobProgress2),
    }

    /// A pool speaking submit/3 to a submit/2 submitter sends the very bytes a submit/2 pool would:
    /// the blocker stays out of the `Progress` frame.
    #[test]
    fn a_blocked_progress_frame_is_the_bytes_of_submit_2() {
        let note = Some("waiting for a provider (none connected)".to_owned());
        let now = SubmitReply::Progress(JobProgress {
            state: JobState::Queued,
            running: 0,
            results: 0,
            needed: 2,
            note: note.clone(),
            blocked: Some(Blocker::NoProviderConnected),
        });
        let then = SubmitReply2::Progress(JobProgress2 {
            state: JobState::Queued,
            running: 0,
            results: 0,
            needed: 2,
            note,
        });
        assert_eq!(encode_frame(&now).unwrap(), encode_frame(&then).unwrap());
    }
}

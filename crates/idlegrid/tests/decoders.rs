//! Property tests of the three decoders that take input from strangers: wire frames, the job wire form
//! and job files. Arbitrary bytes never panic and give a clear error; what is encoded decodes to itself;
//! a frame over its cap is refused before its body is allocated. The fuzz targets under `fuzz/` drive
//! the same decoders for longer (`scripts/fuzz`); inputs they found to crash are regression tests here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use idlegrid::amount::Amount;
use idlegrid::job::{
    self, Access, BufferInit, BufferSpec, Fault, Job, JobError, JobLimits, Pass, Verify,
};
use idlegrid::onchain::{ChainPayment, ChainTerms, PendingPayout, PoolChain};
use idlegrid::protocol::{
    Blocker, Capabilities, Delivery, ErrorCode, JobProgress, JobState, LeaseOffer, MAX_REPLY_FRAME,
    MAX_REQUEST_FRAME, OutputHeader, ProtocolError, SubmitReply, SubmitRequest, WorkReply,
    WorkRequest, decode_frame, encode_frame, frame_len,
};
use idlegrid::statement::{AddressBinding, Check, Id, Payout, Receipt, Signed};
use iroh::SecretKey;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---------------------------------------------------------------------------------------------------
// The largest allocation a piece of code makes, to show that a frame's length is checked first.

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|largest| largest.set(largest.get().max(size)));
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// `f`'s result, and the largest single allocation this thread made while it ran.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------------
// Strategies.

fn text() -> impl Strategy<Value = String> {
    "\\PC{0,12}"
}

fn id() -> impl Strategy<Value = Id> {
    any::<[u8; 32]>().prop_map(Id)
}

fn init() -> impl Strategy<Value = BufferInit> {
    prop_oneof![
        3 => vec(any::<u8>(), 0..48).prop_map(BufferInit::Bytes),
        1 => vec(any::<u8>(), 1024..1040).prop_map(BufferInit::Bytes),
        2 => any::<u64>().prop_map(BufferInit::Zeros),
        1 => (any::<[u8; 32]>(), any::<u64>()).prop_map(|(hash, size)| BufferInit::Blob { hash, size }),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::ReadWrite),
        Just(Access::Read),
        Just(Access::Uniform)
    ]
}

fn buffer() -> impl Strategy<Value = BufferSpec> {
    (text(), any::<u32>(), init(), access(), any::<bool>()).prop_map(
        |(name, binding, init, access, output)| BufferSpec {
            name,
            binding,
            init,
            access,
            output,
        },
    )
}

fn pass() -> impl Strategy<Value = Pass> {
    (text(), any::<[u32; 3]>()).prop_map(|(entry, workgroups)| Pass { entry, workgroups })
}

/// Any job value (finite tolerance, so that it equals itself).
fn any_job() -> impl Strategy<Value = Job> {
    (
        text(),
        text(),
        "\\PC{0,64}",
        vec(buffer(), 0..4),
        vec(pass(), 0..3),
        (any::<u32>(), -1e9..1e9f64),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(name, source_name, wgsl, buffers, passes, (replicas, tolerance), reward)| Job {
                name,
                source_name,
                wgsl,
                buffers,
                passes,
                verify: Verify {
                    replicas,
                    tolerance,
                    cosine: None,
                },
                reward: reward.map(Amount::from_micros),
            },
        )
}

fn key() -> impl Strategy<Value = SecretKey> {
    any::<[u8; 32]>().prop_map(|bytes| SecretKey::from_bytes(&bytes))
}

fn binding() -> impl Strategy<Value = Signed<AddressBinding>> {
    (key(), any::<[u8; 20]>(), any::<u64>(), any::<u64>()).prop_map(
        |(provider, address, seq, issued_at_ms)| {
            let body = AddressBinding {
                provider: provider.public(),
                address,
                seq,
                issued_at_ms,
            };
            Signed::sign(body, &provider)
        },
    )
}

fn pool_chain() -> impl Strategy<Value = PoolChain> {
    (
        text(),
        any::<u64>(),
        any::<[u8; 20]>(),
        text(),
        any::<u8>(),
        any::<u64>(),
        option::of(text()),
    )
        .prop_map(
            |(rpc, chain_id, token, symbol, decimals, confirmations, explorer)| PoolChain {
                rpc,
                terms: ChainTerms {
                    chain_id,
                    token: token.into(),
                    symbol,
                    decimals,
                    contract: [7; 20].into(),
                    confirmations,
                    explorer,
                },
            },
        )
}

fn pending_payout() -> impl Strategy<Value = PendingPayout> {
    (
        id(),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        option::of(any::<u64>()),
    )
        .prop_map(
            |(payout, micros, receipts, seq, hash, block)| PendingPayout {
                payout,
                amount: Amount::from_micros(micros),
                receipts,
                payment: chain_payment(seq, micros, hash, block),
            },
        )
}

/// A payment on the local test chain (id 31337) of `micros` units of a 6-decimal token.
fn chain_payment(seq: u64, micros: u64, tx_hash: [u8; 32], block: Option<u64>) -> ChainPayment {
    ChainPayment {
        chain_id: 31337,
        contract: [1; 20].into(),
        token: [2; 20].into(),
        symbol: "tUSD".into(),
        decimals: 6,
        to: [3; 20].into(),
        seq,
        units: idlegrid_chain::U256::from(micros),
        tx_hash: tx_hash.into(),
        block,
    }
}

fn delivery() -> impl Strategy<Value = Delivery> {
    let receipt = (key(), key(), id(), text(), any::<u64>(), id(), any::<u64>()).prop_map(
        |(pool, provider, job, job_name, micros, output_hash, issued_at_ms)| {
            let body = Receipt {
                pool: pool.public(),
                provider: provider.public(),
                job,
                job_name,
                amount: Amount::from_micros(micros),
                output_hash,
                issued_at_ms,
            };
            Delivery::Receipt(Signed::sign(body, &pool))
        },
    );
    let payout = (
        key(),
        key(),
        vec(id(), 0..3),
        any::<u64>(),
        text(),
        text(),
        any::<u64>(),
    )
        .prop_map(
            |(pool, provider, receipts, micros, rail, reference, issued_at_ms)| {
                let body = Payout {
                    pool: pool.public(),
                    provider: provider.public(),
                    receipts,
                    amount: Amount::from_micros(micros),
                    rail,
                    reference,
                    issued_at_ms,
                };
                Delivery::Payout(Signed::sign(body, &pool))
            },
        );
    let check = (key(), key(), id(), text(), any::<bool>(), any::<u64>()).prop_map(
        |(pool, provider, job, job_name, passed, issued_at_ms)| {
            let body = Check {
                pool: pool.public(),
                provider: provider.public(),
                job,
                job_name,
                passed,
                issued_at_ms,
            };
            Delivery::Check(Signed::sign(body, &pool))
        },
    );
    prop_oneof![receipt, payout, check]
}

fn fault() -> impl Strategy<Value = Fault> {
    prop_oneof![
        Just(Fault::Job),
        Just(Fault::Machine),
        Just(Fault::Deadline),
        Just(Fault::Cancelled)
    ]
}

fn output_header() -> impl Strategy<Value = OutputHeader> {
    (text(), any::<u64>()).prop_map(|(name, size)| OutputHeader { name, size })
}

fn work_request() -> impl Strategy<Value = WorkRequest> {
    let capabilities = (
        text(),
        text(),
        any::<u64>(),
        any::<u64>(),
        any::<u32>(),
        -1e9..1e9f32,
    )
        .prop_map(
            |(adapter, device_type, max_buffer_size, binding, workgroups, gflops)| Capabilities {
                adapter,
                device_type,
                max_buffer_size,
                max_storage_buffer_binding_size: binding,
                max_workgroups_per_dimension: workgroups,
                gflops,
            },
        );
    prop_oneof![
        (
            capabilities,
            any::<u32>(),
            vec(id(), 0..4),
            option::of(binding())
        )
            .prop_map(|(capabilities, slots, stored, binding)| WorkRequest::Ask {
                capabilities,
                slots,
                stored,
                binding,
            }),
        any::<[u8; 32]>().prop_map(|hash| WorkRequest::Blob { hash }),
        (any::<u64>(), any::<u64>(), vec(output_header(), 0..3)).prop_map(
            |(lease, gpu_micros, outputs)| WorkRequest::Result {
                lease,
                gpu_micros,
                outputs
            }
        ),
        (any::<u64>(), fault(), text()).prop_map(|(lease, fault, reason)| WorkRequest::Failed {
            lease,
            fault,
            reason
        }),
        (vec(any::<u64>(), 0..4), text())
            .prop_map(|(leases, reason)| WorkRequest::GiveBack { leases, reason }),
    ]
}

fn work_reply() -> impl Strategy<Value = WorkReply> {
    let lease = (any::<u64>(), id(), any_job(), any::<u64>()).prop_map(
        |(lease, job, manifest, expires_in_ms)| LeaseOffer {
            lease,
            job,
            manifest,
            expires_in_ms,
        },
    );
    prop_oneof![
        (
            vec(lease, 0..3),
            vec(delivery(), 0..3),
            any::<u32>(),
            option::of(pool_chain()),
            vec(pending_payout(), 0..2)
        )
            .prop_map(|(leases, deliveries, retry_after_ms, chain, pending)| {
                WorkReply::Work {
                    leases,
                    deliveries,
                    retry_after_ms,
                    chain,
                    pending,
                }
            }),
        any::<u64>().prop_map(|size| WorkReply::Blob { size }),
        Just(WorkReply::Ack),
        text().prop_map(|message| WorkReply::Error { message }),
    ]
}

fn submit_request() -> impl Strategy<Value = SubmitRequest> {
    prop_oneof![
        (any_job(), any::<u64>())
            .prop_map(|(manifest, nonce)| SubmitRequest::Job { manifest, nonce }),
        id().prop_map(|job| SubmitRequest::Watch { job }),
    ]
}

fn submit_reply() -> impl Strategy<Value = SubmitReply> {
    let state = prop_oneof![
        Just(JobState::Queued),
        Just(JobState::Running),
        Just(JobState::Verified),
        Just(JobState::Failed)
    ];
    prop_oneof![
        vec(any::<[u8; 32]>(), 0..4).prop_map(|hashes| SubmitReply::NeedBlobs { hashes }),
        id().prop_map(|job| SubmitReply::Accepted { job }),
        (
            state,
            any::<u32>(),
            any::<u32>(),
            any::<u32>(),
            proptest::option::of(text())
        )
            .prop_map(|(state, running, results, needed, note)| {
                SubmitReply::Progress(JobProgress {
                    state,
                    running,
                    results,
                    needed,
                    note,
                    // Not on the wire: a `Blocked` frame carries it.
                    blocked: None,
                })
            }),
        Just(SubmitReply::Blocked(Blocker::NoProviderConnected)),
        vec(output_header(), 0..3).prop_map(|outputs| SubmitReply::Verified { outputs }),
        text().prop_map(|reason| SubmitReply::Failed { reason }),
        text().prop_map(|message| SubmitReply::Error { message }),
    ]
}

/// Random bytes, and random bodies behind a plausible length, so that postcard is reached too.
fn frame_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        vec(any::<u8>(), 0..64),
        (0u32..96, vec(any::<u8>(), 0..128)).prop_map(|(len, body)| {
            let mut bytes = len.to_le_bytes().to_vec();
            bytes.extend(body);
            bytes
        }),
    ]
}

/// Up to four edits (overwrite, insert, remove) at random places.
fn edits() -> impl Strategy<Value = Vec<(u8, Index, u8)>> {
    vec((0u8..3, any::<Index>(), any::<u8>()), 1..5)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(u8, Index, u8)]) -> Vec<u8> {
    for (kind, at, byte) in edits {
        match kind {
            0 if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes[at] = *byte;
            }
            1 => {
                let at = at.index(bytes.len() + 1);
                bytes.insert(at, *byte);
            }
            _ if !bytes.is_empty() => {
                let at = at.index(bytes.len());
                bytes.remove(at);
            }
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------------------
// Frames.

/// Decodes `bytes` as a frame of `T`: a message that re-encodes to a frame decoding to itself, or the
/// error its header calls for.
fn decode_or_refuse<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    cap: usize,
) -> Result<(), TestCaseError> {
    match decode_frame::<T>(bytes, cap) {
        Ok((message, used)) => {
            prop_assert!(used >= 4 && used <= bytes.len() && used - 4 <= cap);
            let frame = encode_frame(&message).unwrap();
            let (again, used) = decode_frame::<T>(&frame, cap.max(frame.len())).unwrap();
            prop_assert_eq!(used, frame.len());
            prop_assert_eq!(encode_frame(&again).unwrap(), frame);
        }
        Err(error) => {
            prop_assert!(!error.to_string().is_empty());
            match bytes
                .first_chunk::<4>()
                .map(|h| u32::from_le_bytes(*h) as usize)
            {
                None => prop_assert_eq!(error, ProtocolError::Truncated),
                Some(len) if len > cap => {
                    prop_assert!(error.to_string().contains("too large"), "{}", error)
                }
                Some(len) if bytes.len() - 4 < len => {
                    prop_assert_eq!(error, ProtocolError::Truncated)
                }
                Some(_) => {
                    prop_assert!(matches!(error, ProtocolError::Malformed(_)), "{:?}", error);
                    prop_assert!(error.to_string().starts_with("malformed frame: "));
                    prop_assert_eq!(error.code(), ErrorCode::Malformed);
                }
            }
        }
    }
    Ok(())
}

fn decode_as_every_message(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_or_refuse::<WorkRequest>(bytes, MAX_REQUEST_FRAME)?;
    decode_or_refuse::<WorkReply>(bytes, MAX_REPLY_FRAME)?;
    decode_or_refuse::<SubmitRequest>(bytes, MAX_REQUEST_FRAME)?;
    decode_or_refuse::<SubmitReply>(bytes, MAX_REPLY_FRAME)?;
    // A tiny cap refuses what the real ones let through.
    decode_or_refuse::<SubmitReply>(bytes, 3)
}

/// Encodes `message` as a frame with bytes after it, and decodes it back.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    message: &T,
    cap: usize,
) -> Result<(), TestCaseError> {
    let mut frame = encode_frame(message).unwrap();
    let len = frame.len();
    prop_assert_eq!(
        u32::from_le_bytes(*frame.first_chunk::<4>().unwrap()) as usize,
        len - 4
    );
    prop_assert_eq!(&frame[4..], &postcard::to_allocvec(message).unwrap()[..]);
    frame.extend_from_slice(b"raw bytes after the frame");
    let (decoded, used) = decode_frame::<T>(&frame, cap).unwrap();
    prop_assert_eq!(&decoded, message);
    prop_assert_eq!(used, len);
    // Every cut short of the whole frame is truncated, not a panic or a wrong message.
    for cut in [0, 3, 4, len / 2, len - 1] {
        prop_assert!(decode_frame::<T>(&frame[..cut.min(len - 1)], cap).is_err());
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_as_a_frame(bytes in frame_bytes()) {
        decode_as_every_message(&bytes)?;
    }

    #[test]
    fn damaged_frames_never_panic(request in submit_request(), reply in work_reply(), edits in edits()) {
        decode_as_every_message(&mutate(encode_frame(&request).unwrap(), &edits))?;
        decode_as_every_message(&mutate(encode_frame(&reply).unwrap(), &edits))?;
    }

    #[test]
    fn work_requests_round_trip(message in work_request()) {
        round_trip(&message, MAX_REQUEST_FRAME)?;
    }

    #[test]
    fn work_replies_round_trip(message in work_reply()) {
        round_trip(&message, MAX_REPLY_FRAME)?;
    }

    #[test]
    fn submit_requests_round_trip(message in submit_request()) {
        round_trip(&message, MAX_REQUEST_FRAME)?;
    }

    #[test]
    fn submit_replies_round_trip(message in submit_reply()) {
        round_trip(&message, MAX_REPLY_FRAME)?;
    }

    #[test]
    fn a_frame_over_its_cap_is_refused_before_allocation(
        cap in 0usize..(16 << 20),
        over in 1u64..=u64::from(u32::MAX),
    ) {
        let len = (cap as u64).saturating_add(over).min(u64::from(u32::MAX));
        prop_assume!(len > cap as u64);
        // Only the header has arrived: the length alone refuses the frame.
        let header = (len as u32).to_le_bytes();
        let (result, largest) = largest_allocation(|| decode_frame::<SubmitRequest>(&header, cap));
        let error = result.unwrap_err();
        prop_assert_eq!(&error, &ProtocolError::TooLarge { len, cap: cap as u64 });
        prop_assert!(error.to_string().contains("too large"), "{}", error);
        prop_assert_eq!(error.code(), ErrorCode::TooLarge);
        prop_assert!(largest < 1024, "allocated {} bytes", largest);
        prop_assert_eq!(frame_len(header, cap), Err(error));
    }
}

#[test]
fn the_real_caps_refuse_a_huge_frame_without_allocating_it() {
    for (cap, len) in [
        (MAX_REQUEST_FRAME, MAX_REQUEST_FRAME as u32 + 1),
        (MAX_REPLY_FRAME, MAX_REPLY_FRAME as u32 + 1),
        (MAX_REPLY_FRAME, u32::MAX),
    ] {
        let mut bytes = len.to_le_bytes().to_vec();
        bytes.extend([0u8; 64]);
        let (result, largest) =
            largest_allocation(|| decode_frame::<WorkReply>(&bytes, cap).map(|_| ()));
        let error = result.unwrap_err();
        assert_eq!(
            error.to_string(),
            format!("a frame of {len} bytes is too large: the limit is {cap} bytes")
        );
        assert!(largest < 1024, "allocated {largest} bytes");
    }
    // The measure itself sees a large allocation.
    assert!(largest_allocation(|| vec![1u8; 1 << 20]).1 >= 1 << 20);
    // At the cap itself the length is accepted, and the missing body is what is wrong.
    let header = (MAX_REQUEST_FRAME as u32).to_le_bytes();
    assert_eq!(frame_len(header, MAX_REQUEST_FRAME), Ok(MAX_REQUEST_FRAME));
    assert_eq!(
        decode_frame::<WorkRequest>(&header, MAX_REQUEST_FRAME).unwrap_err(),
        ProtocolError::Truncated
    );
}

// ---------------------------------------------------------------------------------------------------
// The job wire form.

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/jobs")
}

const EXAMPLES: [&str; 4] = ["matmul", "nearest", "hashchain", "mandelbrot"];

fn example(name: &str) -> Job {
    let path = examples().join(name).join("job.toml");
    Job::load(&path, &JobLimits::default()).unwrap()
}

/// Blobs by hash, as `Job::into_manifest` gives them.
type Blobs = Vec<(blake3::Hash, Vec<u8>)>;

/// Each example job's manifest wire form and blobs, made once.
fn example_manifests() -> &'static [(Vec<u8>, Blobs)] {
    static MANIFESTS: OnceLock<Vec<(Vec<u8>, Blobs)>> = OnceLock::new();
    MANIFESTS.get_or_init(|| {
        EXAMPLES
            .iter()
            .map(|name| {
                let (manifest, blobs) = example(name).into_manifest();
                (manifest.to_wire(), blobs)
            })
            .collect()
    })
}

/// What a pool and a provider do with a decoded manifest: every step passes or fails, none panics, and
/// each failure says something.
fn use_manifest(manifest: Job, blobs: &[(blake3::Hash, Vec<u8>)]) {
    let limits = JobLimits::default();
    let said = |e: JobError| assert!(!e.to_string().is_empty());
    let _ = manifest.total_buffer_bytes();
    let _ = manifest.blob_refs();
    let _ = OutputHeader::expected(&manifest);
    let _ = job::check_manifest(&manifest, &limits).map_err(said);
    let full = manifest.with_blobs(|hash| {
        blobs
            .iter()
            .find(|(h, _)| h == hash)
            .map(|(_, bytes)| bytes.clone())
    });
    match full {
        Ok(full) => {
            let _ = job::check(&full, &limits).map_err(said);
        }
        Err(error) => said(error),
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_as_a_job(bytes in vec(any::<u8>(), 0..256)) {
        match Job::from_wire(&bytes) {
            Ok(job) => use_manifest(job, &[]),
            Err(error) => {
                prop_assert!(matches!(error, JobError::Wire(_)), "{:?}", error);
                prop_assert!(error.to_string().starts_with("malformed job on the wire: "), "{}", error);
            }
        }
    }

    #[test]
    fn damaged_manifests_never_panic(which in 0usize..4, edits in edits()) {
        let (manifest, blobs) = &example_manifests()[which];
        let damaged = mutate(manifest.clone(), &edits);
        if let Ok(job) = Job::from_wire(&damaged) {
            use_manifest(job, blobs);
        }
    }

    #[test]
    fn jobs_round_trip_on_the_wire(job in any_job()) {
        let wire = job.to_wire();
        prop_assert_eq!(Job::from_wire(&wire).unwrap(), job.clone());
        // Moving large inputs out as blobs and back gives the same job.
        let mut job = job;
        for buffer in &mut job.buffers {
            if let BufferInit::Blob { size, .. } = buffer.init {
                buffer.init = BufferInit::Zeros(size);
            }
        }
        let (manifest, blobs) = job.clone().into_manifest();
        prop_assert!(blobs.iter().all(|(_, b)| b.len() >= idlegrid::job::INLINE_INPUT_BYTES));
        let manifest = Job::from_wire(&manifest.to_wire()).unwrap();
        let back = manifest
            .with_blobs(|hash| blobs.iter().find(|(h, _)| h == hash).map(|(_, b)| b.clone()))
            .unwrap();
        prop_assert_eq!(back, job);
    }
}

#[test]
fn the_example_jobs_round_trip_as_manifests() {
    for name in EXAMPLES {
        let job = example(name);
        job::check(&job, &JobLimits::default()).unwrap();
        let (manifest, blobs) = job.clone().into_manifest();
        let manifest = Job::from_wire(&manifest.to_wire()).unwrap();
        job::check_manifest(&manifest, &JobLimits::default()).unwrap();
        let back = manifest
            .with_blobs(|hash| {
                blobs
                    .iter()
                    .find(|(h, _)| h == hash)
                    .map(|(_, b)| b.clone())
            })
            .unwrap();
        assert_eq!(back, job, "{name}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Job files.

fn from_toml(text: &str, dir: &Path) -> Result<Job, JobError> {
    Job::from_toml(text, dir, "job.toml", &JobLimits::default())
}

/// Loads `text`: a job that is then checked, or an error that names the file or the path it read.
fn load_or_refuse(text: &str, dir: &Path) -> Result<(), TestCaseError> {
    match from_toml(text, dir) {
        Ok(job) => {
            prop_assert_eq!(
                Job::from_wire(&job.to_wire()).unwrap().to_wire(),
                job.to_wire()
            );
            if let Err(error) = job::check(&job, &JobLimits::default()) {
                prop_assert!(!error.to_string().is_empty());
            }
        }
        Err(error) => {
            let message = error.to_string();
            prop_assert!(
                matches!(
                    error,
                    JobError::Toml { .. }
                        | JobError::Format { .. }
                        | JobError::Io { .. }
                        | JobError::Limit { .. }
                ),
                "{:?}",
                error
            );
            prop_assert!(
                message.starts_with("job.toml") || message.starts_with("cannot read "),
                "{}",
                message
            );
        }
    }
    Ok(())
}

fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// One buffer of a generated job file: its TOML, and the buffer it must load as.
fn toml_buffer() -> impl Strategy<Value = (String, BufferSpec)> {
    let contents = prop_oneof![
        vec(any::<u32>(), 0..8).prop_map(|values| {
            let list: Vec<String> = values.iter().map(u32::to_string).collect();
            (
                format!("u32 = [{}]", list.join(", ")),
                BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            )
        }),
        vec(any::<f32>().prop_filter("finite", |v| v.is_finite()), 0..8).prop_map(|values| {
            let list: Vec<String> = values
                .iter()
                .map(|v| format!("{:?}", f64::from(*v)))
                .collect();
            (
                format!("f32 = [{}]", list.join(", ")),
                BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
            )
        }),
        (0u64..1 << 20).prop_map(|size| (format!("zeros = {size}"), BufferInit::Zeros(size))),
        Just((
            "file = \"a.bin\"".to_owned(),
            BufferInit::Bytes(std::fs::read(examples().join("matmul/a.bin")).unwrap())
        )),
    ];
    (
        text(),
        any::<u32>(),
        contents,
        option::of(access()),
        option::of(any::<bool>()),
    )
        .prop_map(|(name, binding, (line, init), access, output)| {
            let mut toml = format!(
                "[[buffers]]\nname = {}\nbinding = {binding}\n{line}\n",
                toml_string(&name)
            );
            if let Some(access) = access {
                toml += &format!("access = \"{}\"\n", access.as_str());
            }
            if let Some(output) = output {
                toml += &format!("output = {output}\n");
            }
            let buffer = BufferSpec {
                name,
                binding,
                init,
                access: access.unwrap_or_default(),
                output: output.unwrap_or(false),
            };
            (toml, buffer)
        })
}

/// A whole job file in the matmul example's folder, and the job it must load as.
fn toml_job() -> impl Strategy<Value = (String, Job)> {
    let shader = prop_oneof![
        Just((
            "shader = \"matmul.wgsl\"".to_owned(),
            "matmul.wgsl".to_owned(),
            std::fs::read_to_string(examples().join("matmul/matmul.wgsl")).unwrap()
        )),
        "\\PC{0,40}".prop_map(|wgsl| (
            format!("wgsl = {}", toml_string(&wgsl)),
            "job.toml".to_owned(),
            wgsl
        )),
    ];
    let pass = (text(), vec(any::<u32>(), 1..=3));
    let verify = option::of((option::of(1u32..=u32::MAX), option::of(0.0..1e6f64)));
    (
        text(),
        shader,
        vec(toml_buffer(), 0..4),
        vec(pass, 0..3),
        verify,
        option::of(any::<u64>()),
    )
        .prop_map(
            |(name, (line, source_name, wgsl), buffers, passes, verify, reward)| {
                let mut toml = format!("name = {}\n{line}\n", toml_string(&name));
                let mut job = Job {
                    name,
                    source_name,
                    wgsl,
                    buffers: Vec::new(),
                    passes: Vec::new(),
                    verify: Verify::default(),
                    reward: reward.map(Amount::from_micros),
                };
                // Tables after the plain keys, as TOML requires.
                if let Some(reward) = job.reward {
                    toml += &format!("[reward]\namount = \"{reward}\"\n");
                }
                if let Some((replicas, tolerance)) = verify {
                    toml += "[verify]\n";
                    if let Some(replicas) = replicas {
                        toml += &format!("replicas = {replicas}\n");
                        job.verify.replicas = replicas;
                    }
                    if let Some(tolerance) = tolerance {
                        toml += &format!("tolerance = {tolerance:?}\n");
                        job.verify.tolerance = tolerance;
                    }
                }
                for (text, buffer) in buffers {
                    toml += &text;
                    job.buffers.push(buffer);
                }
                for (entry, counts) in passes {
                    let list: Vec<String> = counts.iter().map(u32::to_string).collect();
                    toml += &format!(
                        "[[passes]]\nentry = {}\nworkgroups = [{}]\n",
                        toml_string(&entry),
                        list.join(", ")
                    );
                    let mut workgroups = [1; 3];
                    workgroups[..counts.len()].copy_from_slice(&counts);
                    job.passes.push(Pass { entry, workgroups });
                }
                (toml, job)
            },
        )
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_as_a_job_file(text in "\\PC{0,200}") {
        load_or_refuse(&text, &examples().join("matmul"))?;
    }

    #[test]
    fn arbitrary_bytes_never_panic_as_a_job_file(bytes in vec(any::<u8>(), 0..200)) {
        load_or_refuse(&String::from_utf8_lossy(&bytes), &examples().join("matmul"))?;
    }

    #[test]
    fn damaged_example_job_files_never_panic(which in 0usize..4, edits in edits()) {
        let dir = examples().join(EXAMPLES[which]);
        let text = std::fs::read(dir.join("job.toml")).unwrap();
        let damaged = mutate(text, &edits);
        load_or_refuse(&String::from_utf8_lossy(&damaged), &dir)?;
    }

    #[test]
    fn job_files_load_as_what_they_say((text, job) in toml_job()) {
        let loaded = from_toml(&text, &examples().join("matmul"));
        prop_assert_eq!(loaded.map_err(|e| e.to_string()), Ok(job), "{}", text);
    }
}

// ---------------------------------------------------------------------------------------------------
// The fuzz targets' seed corpus: real frames, real job wire forms and the example job files.

/// Writes the seeds under `fuzz/corpus/<target>/` (named by content, so rewriting them changes nothing):
/// `cargo test -p idlegrid --test decoders -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes the fuzz targets' seed corpus"]
fn write_fuzz_seeds() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let write = |target: &str, bytes: &[u8]| {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let name = format!("seed-{}", &blake3::hash(bytes).to_hex()[..16]);
        std::fs::write(dir.join(name), bytes).unwrap();
    };
    let frame = |message: &dyn erased::Frame| write("frame", &message.frame());

    let jobs: Vec<Job> = EXAMPLES.iter().map(|name| example(name)).collect();
    let manifests: Vec<Job> = jobs
        .iter()
        .map(|job| job.clone().into_manifest().0)
        .collect();
    for (job, manifest) in jobs.iter().zip(&manifests) {
        write("job_wire", &manifest.to_wire());
        // Whole jobs too, where their inputs are small.
        if job.to_wire().len() < 16 << 10 {
            write("job_wire", &job.to_wire());
        }
        frame(&SubmitRequest::Job {
            manifest: manifest.clone(),
            nonce: 7,
        });
    }
    for name in EXAMPLES {
        write(
            "job_toml",
            &std::fs::read(examples().join(name).join("job.toml")).unwrap(),
        );
    }
    write(
        "job_toml",
        b"name = \"inline\"\nwgsl = \"\"\"\n@group(0) @binding(0) var<storage, read_write> d: array<u32>;\n\
          @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) i: vec3<u32>) { d[i.x] = i.x; }\n\"\"\"\n\
          [[buffers]]\nname = \"d\"\nbinding = 0\nu32 = [1, 2, 3, 4]\noutput = true\n\
          [[buffers]]\nname = \"f\"\nbinding = 1\nf32 = [1.5, -0.0]\naccess = \"read\"\n\
          [[buffers]]\nname = \"u\"\nbinding = 2\nzeros = 16\naccess = \"uniform\"\n\
          [[passes]]\nentry = \"main\"\nworkgroups = [1]\n[verify]\nreplicas = 3\ntolerance = 0.5\n\
          [reward]\namount = \"1.25\"\n",
    );

    let pool = SecretKey::from_bytes(&[1; 32]);
    let provider = SecretKey::from_bytes(&[2; 32]);
    let receipt = Receipt {
        pool: pool.public(),
        provider: provider.public(),
        job: Id([3; 32]),
        job_name: "matmul".into(),
        amount: Amount::from_micros(500),
        output_hash: Id([4; 32]),
        issued_at_ms: 1_700_000_000_000,
    };
    let payout = Payout {
        pool: pool.public(),
        provider: provider.public(),
        receipts: vec![Receipt::id_for(
            &receipt.pool,
            &receipt.job,
            &receipt.provider,
        )],
        amount: Amount::from_micros(500),
        rail: "ledger".into(),
        reference: "ref-1".into(),
        issued_at_ms: 1_700_000_000_001,
    };
    let header = OutputHeader {
        name: "c".into(),
        size: 30720,
    };
    frame(&WorkRequest::Ask {
        capabilities: Capabilities {
            adapter: "NVIDIA GeForce RTX 4090".into(),
            device_type: "discrete".into(),
            max_buffer_size: 1 << 30,
            max_storage_buffer_binding_size: 1 << 27,
            max_workgroups_per_dimension: 65535,
            gflops: 1234.5,
        },
        slots: 2,
        stored: vec![Id([5; 32])],
        binding: Some(Signed::sign(
            AddressBinding {
                provider: provider.public(),
                address: [8; 20],
                seq: 1,
                issued_at_ms: 1_700_000_000_002,
            },
            &provider,
        )),
    });
    frame(&WorkRequest::Blob { hash: [6; 32] });
    frame(&WorkRequest::Result {
        lease: 9,
        gpu_micros: 1500,
        outputs: vec![header.clone()],
    });
    frame(&WorkRequest::Failed {
        lease: 9,
        fault: Fault::Machine,
        reason: "device lost".into(),
    });
    frame(&WorkRequest::GiveBack {
        leases: vec![9, 10],
        reason: "the person came back".into(),
    });
    frame(&WorkReply::Work {
        leases: vec![LeaseOffer {
            lease: 9,
            job: Id([3; 32]),
            manifest: manifests[0].clone(),
            expires_in_ms: 60_000,
        }],
        deliveries: vec![
            Delivery::Receipt(Signed::sign(receipt, &pool)),
            Delivery::Payout(Signed::sign(payout, &pool)),
        ],
        retry_after_ms: 0,
        chain: None,
        pending: vec![],
    });
    frame(&WorkReply::Work {
        leases: vec![],
        deliveries: vec![],
        retry_after_ms: 5000,
        chain: Some(PoolChain {
            rpc: "http://127.0.0.1:8545".into(),
            terms: ChainTerms {
                chain_id: 31337,
                token: [2; 20].into(),
                symbol: "tUSD".into(),
                decimals: 6,
                contract: [1; 20].into(),
                confirmations: 2,
                explorer: None,
            },
        }),
        pending: vec![PendingPayout {
            payout: Id([9; 32]),
            amount: Amount::from_micros(1_200),
            receipts: 3,
            payment: crate::chain_payment(4, 1_200, [5; 32], Some(12)),
        }],
    });
    frame(&WorkReply::Blob { size: 24576 });
    frame(&WorkReply::Ack);
    frame(&WorkReply::Error {
        message: "not leased to you".into(),
    });
    frame(&SubmitRequest::Watch { job: Id([3; 32]) });
    frame(&SubmitReply::NeedBlobs {
        hashes: vec![[6; 32], [7; 32]],
    });
    frame(&SubmitReply::Accepted { job: Id([3; 32]) });
    frame(&SubmitReply::Progress(JobProgress {
        state: JobState::Running,
        running: 2,
        results: 1,
        needed: 2,
        note: Some("failed on 1 provider (device lost)".into()),
        blocked: None,
    }));
    frame(&SubmitReply::Blocked(Blocker::NoProviderConnected));
    frame(&SubmitReply::Verified {
        outputs: vec![header],
    });
    frame(&SubmitReply::Failed {
        reason: "every provider failed it".into(),
    });
    frame(&SubmitReply::Error {
        message: "bad manifest".into(),
    });
}

/// Frames of any message type, for the seed list above.
mod erased {
    pub trait Frame {
        fn frame(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Frame for T {
        fn frame(&self) -> Vec<u8> {
            idlegrid::protocol::encode_frame(self).unwrap()
        }
    }
}

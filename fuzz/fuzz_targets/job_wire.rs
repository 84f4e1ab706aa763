//! The job wire form (postcard), as a pool or provider decodes a stranger's manifest: decode, check the
//! manifest, put the blobs back, check the job. Each step passes or fails; none panics.

#![no_main]

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use idlegrid::job::{check, check_manifest, check_without_shader};
use idlegrid::protocol::OutputHeader;
use idlegrid::{Job, JobLimits};
use libfuzzer_sys::fuzz_target;

/// The blobs of the example jobs, by hash: a manifest naming one of them gets its bytes back.
fn blobs() -> &'static HashMap<blake3::Hash, Vec<u8>> {
    static BLOBS: OnceLock<HashMap<blake3::Hash, Vec<u8>>> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/jobs");
        let mut blobs = HashMap::new();
        for name in ["matmul", "nearest", "hashchain", "mandelbrot"] {
            let path = examples.join(name).join("job.toml");
            if let Ok(job) = Job::load(&path, &JobLimits::default()) {
                blobs.extend(job.into_manifest().1);
            }
        }
        let zeros = vec![0u8; 1024];
        blobs.insert(blake3::hash(&zeros), zeros);
        blobs
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(job) = Job::from_wire(data) else {
        return;
    };
    let wire = job.to_wire();
    let again = Job::from_wire(&wire).expect("a decoded job's wire form decodes");
    assert_eq!(again.to_wire(), wire, "the wire round trip changed the job");
    assert_eq!(again.content_hash(), job.content_hash());

    let limits = JobLimits::default();
    let _ = job.total_buffer_bytes();
    let _ = job.blob_refs();
    let _ = OutputHeader::expected(&job);
    let _ = check_manifest(&job, &limits).map_err(|e| e.to_string());
    let Ok(full) = job.with_blobs(|hash| blobs().get(hash).cloned()) else {
        return;
    };
    let _ = check_without_shader(&full, &limits).map_err(|e| e.to_string());
    let _ = check(&full, &limits).map_err(|e| e.to_string());
    // Moving the large inputs out and back gives the same job.
    let (manifest, moved) = full.clone().into_manifest();
    let moved: HashMap<_, _> = moved.into_iter().collect();
    let back = manifest
        .with_blobs(|hash| moved.get(hash).cloned())
        .expect("a job's own blobs fit its manifest");
    assert_eq!(back.to_wire(), full.to_wire());
});

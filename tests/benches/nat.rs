//! Home-network figures (BENCHMARKS.md, "Home networks"), through the NAT lab's namespaces, as root:
//!
//! 1. Dial to first lease: a job waits in the pool; the provider starts, and the time from its first
//!    dial ("dialing the pool") to its first lease ("Working") is read from its log. Behind a
//!    symmetric router (relayed throughout) and behind endpoint-independent routers (direct soon).
//! 2. A 256 MiB input (two 128 MiB blobs: wgpu's default binding limit) fetched by the provider, over
//!    the relay (symmetric) and over the direct path, read from its "fetched a large input" lines.
//! 3. Hole-punch successes over N provider starts per pairing of routers: a start succeeds when its
//!    path turns direct within PUNCH_WAIT.
//!
//! Run: `cargo build --release -p idlegrid && cargo bench -p idlegrid-system-tests --bench nat`
//! (`-- --runs N` for N starts per pairing, default 20; `--only dial,bulk,punch`). It uses the
//! `idlegrid` beside the bench binary (release with `cargo bench`). Without `--bench` (`cargo test
//! --all-targets`) or with IDLEGRID_BENCH_QUICK=1 it makes one start of each kind and no bulk run.

#[allow(dead_code)]
#[path = "../nat_lab.rs"]
mod nat_lab;
#[allow(dead_code)]
#[path = "../peers.rs"]
mod peers;
#[allow(dead_code, unused_imports)]
#[path = "../support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use nat_lab::{Lab, Nat, start_lab_pool, start_lab_provider};
use peers::{Relay, submit_job, text, wait_for_log};

/// A start whose path is not direct this long after connecting counts as a failed hole punch.
const PUNCH_WAIT: Duration = Duration::from_secs(6);
/// The provider's log filter: its dials (debug) and everything else it says at info.
const LOG: &str = "warn,idlegrid=info,idlegrid::provider=debug";
const PAIRINGS: [(Nat, Nat, &str); 3] = [
    (
        Nat::EndpointIndependent,
        Nat::EndpointIndependent,
        "EIM + EIM",
    ),
    (Nat::EndpointIndependent, Nat::Symmetric, "EIM + symmetric"),
    (Nat::Symmetric, Nat::Symmetric, "symmetric + symmetric"),
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
    };
    // Run without `--bench` (as `cargo test --all-targets` does, in CI) it only shows it still works:
    // one start of each kind, no 256 MiB transfers.
    let quick =
        !args.iter().any(|a| a == "--bench") || std::env::var_os("IDLEGRID_BENCH_QUICK").is_some();
    let runs: usize = value("--runs")
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1 } else { 20 });
    let default_sections = if quick {
        "dial,punch"
    } else {
        "dial,bulk,punch"
    };
    let only = value("--only").cloned().unwrap_or(default_sections.into());
    let dials = if quick { 1 } else { 5 };
    if only.contains("dial") {
        for (pool, provider, name) in &PAIRINGS[..2] {
            let times: Vec<f64> = (0..dials)
                .filter_map(|i| dial_to_lease(*pool, *provider, i))
                .collect();
            println!("dial to first lease, {name}: {}", describe(&times, "ms"));
        }
    }
    if only.contains("bulk") {
        for (pool, provider, name) in &PAIRINGS[..2] {
            let times: Vec<f64> = (0..3)
                .filter_map(|i| bulk_fetch(*pool, *provider, i))
                .collect();
            println!("256 MiB fetched, {name}: {}", describe(&times, "ms"));
        }
    }
    if only.contains("punch") {
        for (pool, provider, name) in PAIRINGS {
            let (direct, tried) = punches(pool, provider, runs);
            println!("hole punches, {name}: {direct} of {tried} direct");
        }
    }
}

fn describe(values: &[f64], unit: &str) -> String {
    if values.is_empty() {
        return "no run completed".into();
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let list: Vec<String> = values.iter().map(|v| format!("{v:.0}")).collect();
    format!("median {median:.0} {unit} (runs: {})", list.join(", "))
}

/// Milliseconds between two log lines' RFC 3339 timestamps (`2026-12-07T15:12:07.346029Z ...`).
fn between(from: &str, to: &str) -> Option<f64> {
    let seconds = |line: &str| -> Option<f64> {
        let time = line.split_whitespace().next()?;
        let clock = time.split('T').nth(1)?.trim_end_matches('Z');
        let mut parts = clock.split(':');
        let h: f64 = parts.next()?.parse().ok()?;
        let m: f64 = parts.next()?.parse().ok()?;
        let s: f64 = parts.next()?.parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    };
    Some((seconds(to)? - seconds(from)?) * 1000.0)
}

fn lab(pool: Nat, provider: Nat, tag: &str) -> Option<(Lab, tempfile::TempDir, Relay)> {
    let lab = Lab::build(tag, pool, provider)?;
    let dir = tempfile::tempdir().unwrap();
    let relay = lab.relay(&dir.path().join("relay"));
    Some((lab, dir, relay))
}

/// Submits `job` from beside the pool on a thread of its own (it returns once verified).
fn submit_in_background(
    lab: &Lab,
    job: &Path,
    ticket: &str,
    dir: &Path,
    relay: &Relay,
) -> std::thread::JoinHandle<serde_json::Value> {
    let prefix: Vec<String> = Lab::exec(&lab.pool_home.host)
        .iter()
        .map(ToString::to_string)
        .collect();
    let (job, ticket, data, ca) = (
        job.to_owned(),
        ticket.to_owned(),
        dir.join("submitter"),
        relay.ca.clone(),
    );
    std::thread::spawn(move || {
        let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
        submit_job(&prefix, &job, &ticket, &data, &["--relay-ca", text(&ca)])
    })
}

/// A pool with a job waiting, then a provider: the provider's dial-to-first-lease time.
fn dial_to_lease(pool: Nat, provider: Nat, run: usize) -> Option<f64> {
    let (lab, dir, relay) = lab(pool, provider, &format!("d{run}"))?;
    // The job waits in the pool before the provider dials.
    let (_pool, ticket) = start_lab_pool(&lab, dir.path(), &relay);
    let job = Path::new("examples/jobs/matmul/job.toml");
    let submitted = submit_in_background(&lab, job, &ticket, dir.path(), &relay);
    std::thread::sleep(Duration::from_secs(2));
    let provider_dir = dir.path().join("provider");
    let log = provider_dir.with_extension("log");
    let _provider = start_lab_provider(&lab, &ticket, &provider_dir, &relay, Some(LOG));
    let limit = Duration::from_secs(120);
    let dial = wait_for_log(&log, &["dialing the pool"], limit).ok()?;
    let lease = wait_for_log(&log, &["provider state changed", "Working"], limit).ok()?;
    let _ = submitted.join();
    between(&dial, &lease)
}

/// Writes a job of two 128 MiB incompressible inputs summed into one output.
fn bulk_job(dir: &Path) -> std::path::PathBuf {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for name in ["a.bin", "b.bin"] {
        let bytes: Vec<u8> = (0..(128usize << 20) / 8)
            .flat_map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed.to_le_bytes()
            })
            .collect();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(
        dir.join("sum.wgsl"),
        "@group(0) @binding(0) var<storage, read> a: array<u32>;\n\
         @group(0) @binding(1) var<storage, read> b: array<u32>;\n\
         @group(0) @binding(2) var<storage, read_write> out: array<u32>;\n\
         @compute @workgroup_size(1) fn main() { out[0] = a[0] + b[arrayLength(&b) - 1u]; }\n",
    )
    .unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        "name = \"bulk\"\nshader = \"sum.wgsl\"\n\
         [[buffers]]\nname = \"a\"\nbinding = 0\nfile = \"a.bin\"\naccess = \"read\"\n\
         [[buffers]]\nname = \"b\"\nbinding = 1\nfile = \"b.bin\"\naccess = \"read\"\n\
         [[buffers]]\nname = \"out\"\nbinding = 2\nzeros = 4\noutput = true\n\
         [[passes]]\nentry = \"main\"\nworkgroups = [1, 1, 1]\n",
    )
    .unwrap();
    job
}

/// Milliseconds the provider took to fetch 256 MiB of inputs from the pool.
fn bulk_fetch(pool: Nat, provider: Nat, run: usize) -> Option<f64> {
    let (lab, dir, relay) = lab(pool, provider, &format!("b{run}"))?;
    let job_dir = dir.path().join("job");
    std::fs::create_dir_all(&job_dir).unwrap();
    let job = bulk_job(&job_dir);
    let (_pool, ticket) = start_lab_pool(&lab, dir.path(), &relay);
    let _provider = start_lab_provider(
        &lab,
        &ticket,
        &dir.path().join("provider"),
        &relay,
        Some(LOG),
    );
    let summary = submit_in_background(&lab, &job, &ticket, dir.path(), &relay)
        .join()
        .ok()?;
    if summary["status"] != "verified" {
        eprintln!("bulk job not verified: {summary}");
        return None;
    }
    let log = std::fs::read_to_string(dir.path().join("provider.log")).ok()?;
    let fetched: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("fetched a large input"))
        .filter_map(|l| {
            l.split("ms=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .collect();
    let path = if log.contains("path=direct") {
        "direct"
    } else {
        "relayed"
    };
    eprintln!("bulk run {run}: {fetched:?} ms, path {path}");
    (fetched.len() == 2).then(|| fetched.iter().sum())
}

/// Starts a provider `runs` times against one pool; how many starts turned direct.
fn punches(pool: Nat, provider: Nat, runs: usize) -> (usize, usize) {
    let Some((lab, dir, relay)) = lab(pool, provider, "p") else {
        return (0, 0);
    };
    let (_pool, ticket) = start_lab_pool(&lab, dir.path(), &relay);
    let mut direct = 0;
    for run in 0..runs {
        // A new identity each start (the pool remembers none of its addresses); the device score
        // of the first, so no start waits for a benchmark of the GPU.
        let data = dir.path().join(format!("provider-{run}"));
        std::fs::create_dir_all(&data).unwrap();
        let _ = std::fs::copy(
            dir.path().join("provider-0/bench.json"),
            data.join("bench.json"),
        );
        let log = data.with_extension("log");
        let _provider = start_lab_provider(&lab, &ticket, &data, &relay, Some(LOG));
        if wait_for_log(&log, &["connected to the pool"], Duration::from_secs(60)).is_err() {
            continue;
        }
        if wait_for_log(&log, &["path=direct"], PUNCH_WAIT).is_ok() {
            direct += 1;
        }
    }
    (direct, runs)
}

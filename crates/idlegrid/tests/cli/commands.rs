//! The `idlegrid` command as a person or a script uses it: outputs on disk, JSON summaries, and errors
//! that are one line on stderr with a non-zero exit.

use crate::common;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::{ENDLESS, ENDLESS_GRID, STORE, idlegrid_command};
use serde_json::Value;

fn idlegrid(args: &[&str]) -> Output {
    idlegrid_command().args(args).output().unwrap()
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

/// The single line of stderr of a failed command.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    assert!(stderr.starts_with("error: "), "stderr: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    stderr.trim_end().to_owned()
}

#[test]
fn run_writes_each_output_and_summarises_it_as_json() {
    let out = tempfile::tempdir().unwrap();
    let output = idlegrid(&[
        "run",
        "examples/jobs/nearest/job.toml",
        "--out",
        out.path().to_str().unwrap(),
        "--json",
    ]);
    let summary = stdout_json(&output);
    let outputs = summary["outputs"].as_array().unwrap();
    let names: Vec<_> = outputs
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["nearest", "distance"]);
    for o in outputs {
        let written = std::fs::read(
            out.path()
                .join(format!("{}.bin", o["name"].as_str().unwrap())),
        )
        .unwrap();
        assert_eq!(o["bytes"].as_u64().unwrap(), written.len() as u64);
        assert_eq!(
            o["blake3"].as_str().unwrap(),
            blake3::hash(&written).to_hex().as_str()
        );
    }
    assert!(summary["gpu_ms"].as_f64().unwrap() > 0.0);
    assert!(!summary["adapter"].as_str().unwrap().is_empty());
    let leftovers: Vec<_> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "{leftovers:?}");
}

#[test]
fn run_without_json_says_what_it_wrote() {
    let out = tempfile::tempdir().unwrap();
    let output = idlegrid(&[
        "run",
        "examples/jobs/matmul/job.toml",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(text.starts_with("matmul ran on "), "{text}");
    assert!(text.contains("c  30720 bytes  blake3 "), "{text}");
    assert!(out.path().join("c.bin").exists());
}

#[test]
fn bad_wgsl_is_one_located_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"bad\"\nshader = \"k.wgsl\"\n[[buffers]]\nname = \"x\"\nbinding = 0\nzeros = 16\noutput = true\n\
         [[passes]]\nentry = \"main\"\nworkgroups = [1]\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("k.wgsl"),
        "@compute @workgroup_size(1)\nfn main() {\n  let y = nope;\n}\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = idlegrid(&[
        "run",
        dir.path().join("job.toml").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let line = error_line(&output);
    assert!(
        line.starts_with("error: k.wgsl:3:11: invalid WGSL: "),
        "{line}"
    );
    assert!(line.ends_with("(in `let y = nope;`)"), "{line}");
    assert!(
        !out.exists(),
        "a refused job must not create its output folder"
    );
}

#[test]
fn missing_job_file_and_unknown_adapter_are_one_line_each() {
    let line = error_line(&idlegrid(&[
        "run",
        "no/such/job.toml",
        "--out",
        "/tmp/unused",
    ]));
    assert!(
        line.starts_with("error: cannot read no/such/job.toml: "),
        "{line}"
    );
    let line = error_line(&idlegrid(&[
        "run",
        "examples/jobs/matmul/job.toml",
        "--out",
        "/tmp/unused",
        "--adapter",
        "zzz",
    ]));
    assert!(
        line.starts_with("error: no GPU adapter found named like \"zzz\""),
        "{line}"
    );
}

/// Writes a job whose shader never ends into `dir`; returns its job file.
fn endless_job(dir: &Path) -> std::path::PathBuf {
    let [x, y, z] = ENDLESS_GRID;
    std::fs::write(dir.join("endless.wgsl"), format!("{STORE}{ENDLESS}")).unwrap();
    let job = dir.join("job.toml");
    std::fs::write(
        &job,
        format!(
            "name = \"endless\"\nshader = \"endless.wgsl\"\n\
             [[buffers]]\nname = \"data\"\nbinding = 0\nzeros = 1024\noutput = true\n\
             [[passes]]\nentry = \"main\"\nworkgroups = [{x}, {y}, {z}]\n"
        ),
    )
    .unwrap();
    job
}

/// Processes (of this user) whose environment holds `marker`: a command's workers inherit it.
#[cfg(target_os = "linux")]
fn processes_marked(marker: &str) -> Vec<String> {
    let needle = format!("IDLEGRID_TEST_MARKER={marker}");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let environ = std::fs::read(entry.path().join("environ")).ok()?;
            environ
                .split(|&b| b == 0)
                .any(|var| var == needle.as_bytes())
                .then(|| entry.file_name().to_string_lossy().into_owned())
        })
        .collect()
}

#[test]
fn run_stops_a_job_past_its_deadline_and_leaves_no_worker_behind() {
    let dir = tempfile::tempdir().unwrap();
    let job = endless_job(dir.path());
    let out = dir.path().join("out");
    let marker = format!("{}-{}", std::process::id(), line!());
    let mut child = idlegrid_command()
        .args(["run", job.to_str().unwrap(), "--out", out.to_str().unwrap()])
        .args(["--deadline", "2"])
        .env("IDLEGRID_TEST_MARKER", &marker)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Generous: this is about ending at all, not about how fast.
    let until = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("`idlegrid run --deadline 2` was still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let line = error_line(&output);
    assert_eq!(line, "error: the job ran past its deadline of 2 s");
    assert!(
        !out.exists(),
        "a failed job must not create its output folder"
    );
    #[cfg(target_os = "linux")]
    assert_eq!(
        processes_marked(&marker),
        Vec::<String>::new(),
        "left behind"
    );
}

#[test]
fn a_successful_command_prints_nothing_on_stderr_without_a_desktop_session() {
    let out = tempfile::tempdir().unwrap();
    let headless = |args: &[&str]| {
        idlegrid_command()
            .args(args)
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DISPLAY")
            .output()
            .unwrap()
    };
    let runs = [
        headless(&[
            "run",
            "examples/jobs/matmul/job.toml",
            "--out",
            out.path().to_str().unwrap(),
        ]),
        headless(&["probe"]),
    ];
    for output in runs {
        assert!(output.status.success());
        assert_eq!(String::from_utf8_lossy(&output.stderr), "");
    }
    assert!(out.path().join("c.bin").exists());
}

#[test]
fn probe_describes_adapters_cpu_and_memory() {
    let report = stdout_json(&idlegrid(&["probe", "--json"]));
    let adapters = report["adapters"].as_array().unwrap();
    assert!(!adapters.is_empty());
    for a in adapters {
        for key in ["name", "vendor", "backend", "device_type", "driver"] {
            assert!(a[key].is_string(), "{key} in {a}");
        }
        assert!(a["limits"]["max_buffer_size"].as_u64().unwrap() > 0);
    }
    assert!(report["cpu"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(report["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(report["gpus"].is_array());
    let text = String::from_utf8(idlegrid(&["probe"]).stdout).unwrap();
    assert!(text.starts_with("GPU adapters:\n"), "{text}");
}

#[test]
fn bench_scores_the_adapter() {
    // Embeddings on the tiny model: the installed one is slow on llvmpipe in a debug build.
    let bench = |args: &[&str]| {
        let mut command = idlegrid_command();
        command.env("IDLEGRID_MODEL", "no-model-here").arg("bench");
        command.args(args).output().unwrap()
    };
    let report = stdout_json(&bench(&["--json"]));
    assert!(report["matmul_gflops"].as_f64().unwrap() > 0.0);
    assert!(report["copy_gbps"].as_f64().unwrap() > 0.0);
    assert!(report["matmul_size"].as_u64().unwrap() >= 128);
    assert!(report["copy_bytes"].as_u64().unwrap() >= 1 << 20);
    assert!(["timestamps", "wall"].contains(&report["timing"].as_str().unwrap()));
    assert!(report["embeddings"]["per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(report["embeddings"]["model"], "tiny-bert");
    let text = String::from_utf8(bench(&[]).stdout).unwrap();
    assert!(
        text.contains(" embeddings/s (tiny-bert, batches of 8)"),
        "{text}"
    );
}

/// The score a provider tells its pools is measured in a worker without the embeddings part, so
/// starting to share is not held up by a model; the Hardware page's benchmark has it.
#[test]
fn the_device_score_for_pools_leaves_embeddings_out() {
    let mut worker = common::worker_config();
    worker
        .env
        .push(("IDLEGRID_MODEL".into(), "no-model-here".into()));
    let score = idlegrid::worker::task::device_score_of(&worker).unwrap();
    assert!(score.matmul_gflops > 0.0 && score.copy_gbps > 0.0);
    assert_eq!(score.embeddings, None);
    let full = idlegrid::worker::task::benchmark(&worker).unwrap();
    assert_eq!(full.embeddings.unwrap().model, "tiny-bert");
}

#[test]
fn version_and_usage_errors() {
    let output = idlegrid(&["--version"]);
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        format!("idlegrid {}", env!("CARGO_PKG_VERSION"))
    );
    let output = idlegrid(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(Path::new(env!("CARGO_BIN_EXE_idlegrid")).exists());
}

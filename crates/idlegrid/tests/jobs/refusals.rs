//! Every refusal of a bad job: each says what is wrong (and where, for WGSL), and none reaches the GPU:
//! the executor has not opened a device when it refuses.

use crate::common;

use common::*;
use idlegrid::gpu::Executor;
use idlegrid::job::{Access, BufferInit, BufferSpec, Job, JobError, JobLimits, Pass};

const STORE: &str = "
@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3<u32>) { data[id.x] = id.x; }
";

fn data_buffer() -> BufferSpec {
    buffer("data", 0, BufferInit::Zeros(256), Access::ReadWrite, true)
}

fn simple(wgsl: &str) -> Job {
    job(wgsl, vec![data_buffer()], vec![pass("main", 1)])
}

/// Runs `job`, expecting a refusal before any device is opened; returns the message.
fn refused_with(executor: &mut Executor, job: &Job) -> String {
    let err = executor.run(job).expect_err("the job should be refused");
    assert_eq!(
        executor.stats().devices_opened,
        0,
        "a device was opened for a refused job: {err}"
    );
    let message = err.to_string();
    assert_eq!(message.lines().count(), 1, "{message}");
    message
}

fn refused(job: &Job) -> String {
    refused_with(&mut executor(), job)
}

#[test]
fn malformed_wgsl_names_file_line_column_and_source_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"bad\"\nshader = \"bad.wgsl\"\n[[buffers]]\nname = \"data\"\nbinding = 0\nzeros = 256\noutput = true\n\
         [[passes]]\nentry = \"main\"\nworkgroups = [1]\n",
    )
    .unwrap();
    let wgsl = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\n\
                @compute @workgroup_size(64) fn main() {\n    data[0] = 1u +;\n}\n";
    std::fs::write(dir.path().join("bad.wgsl"), wgsl).unwrap();
    let job = Job::load(&dir.path().join("job.toml"), &JobLimits::default()).unwrap();
    let message = refused(&job);
    assert!(message.starts_with("bad.wgsl:4:"), "{message}");
    assert!(
        message.contains("invalid WGSL: expected expression"),
        "{message}"
    );
    assert!(message.ends_with("(in `data[0] = 1u +;`)"), "{message}");
}

#[test]
fn invalid_wgsl_types_are_located() {
    let wgsl = "@group(0) @binding(0) var<storage, read_write> data: array<u32>;\n\
                @compute @workgroup_size(64) fn main() {\n    data[0] = 1.5;\n}\n";
    let message = refused(&simple(wgsl));
    assert!(message.starts_with("test.wgsl:3:"), "{message}");
    assert!(message.contains("data[0] = 1.5;"), "{message}");
}

#[test]
fn unknown_entry_point_lists_the_ones_there_are() {
    let mut job = simple(STORE);
    job.passes = vec![pass("mian", 1)];
    assert_eq!(
        refused(&job),
        "pass 0: entry point `mian` not found in test.wgsl; it has: main"
    );
}

#[test]
fn entry_point_must_be_compute() {
    let wgsl = format!(
        "{STORE}\n@vertex fn vs() -> @builtin(position) vec4<f32> {{ return vec4<f32>(0.0); }}"
    );
    let mut job = simple(&wgsl);
    job.passes.push(pass("vs", 1));
    assert_eq!(
        refused(&job),
        "pass 1: entry point `vs` is a Vertex shader, not @compute"
    );
}

#[test]
fn every_declared_binding_needs_a_buffer() {
    let wgsl = format!("{STORE}\n@group(0) @binding(3) var<storage, read> extra: array<f32>;");
    assert_eq!(
        refused(&simple(&wgsl)),
        "binding 3 (`extra`) is declared by the shader but the job has no buffer for it"
    );
}

#[test]
fn every_buffer_needs_a_declared_binding() {
    let mut job = simple(STORE);
    job.buffers.push(buffer(
        "stray",
        5,
        BufferInit::Zeros(16),
        Access::Read,
        false,
    ));
    assert_eq!(
        refused(&job),
        "buffer `stray` has binding 5, which the shader does not declare"
    );
}

#[test]
fn access_must_match_the_declaration() {
    let mut job = simple(STORE);
    job.buffers[0].access = Access::Read;
    assert_eq!(
        refused(&job),
        "buffer `data` has access = \"read\" but binding 0 (`data`) is declared var<storage, read_write>"
    );
    job.buffers[0].access = Access::Uniform;
    assert!(refused(&job).ends_with("is declared var<storage, read_write>"));

    let uniform = "@group(0) @binding(0) var<uniform> p: vec4<u32>;\n\
                   @group(0) @binding(1) var<storage, read_write> data: array<u32>;\n\
                   @compute @workgroup_size(1) fn main() { data[0] = p.x; }";
    let job = common::job(
        uniform,
        vec![
            buffer("p", 0, BufferInit::Zeros(16), Access::Read, false),
            data_buffer_at(1),
        ],
        vec![pass("main", 1)],
    );
    assert_eq!(
        refused(&job),
        "buffer `p` has access = \"read\" but binding 0 (`p`) is declared var<uniform>"
    );
}

fn data_buffer_at(binding: u32) -> BufferSpec {
    BufferSpec {
        binding,
        ..data_buffer()
    }
}

#[test]
fn buffer_must_be_as_large_as_its_type() {
    let wgsl = "@group(0) @binding(0) var<storage, read_write> data: array<u32, 64>;\n\
                @compute @workgroup_size(1) fn main() { data[0] = 1u; }";
    let mut job = simple(wgsl);
    job.buffers[0].init = BufferInit::Zeros(128);
    assert_eq!(
        refused(&job),
        "buffer `data` is 128 bytes; binding 0 (`data`) needs at least 256"
    );
}

#[test]
fn oversized_shader_source_is_refused() {
    let wgsl = format!("{STORE}\n// {}", "x".repeat(256 << 10));
    let message = refused(&simple(&wgsl));
    assert!(
        message.starts_with("the shader source is 256."),
        "{message}"
    );
    assert!(message.ends_with(" KiB; the limit is 256 KiB"), "{message}");
}

#[test]
fn oversized_shader_file_is_refused_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"big\"\nshader = \"big.wgsl\"\n",
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("big.wgsl")).unwrap();
    file.set_len(8 << 30).unwrap(); // sparse: 8 GiB on paper, nothing on disk
    let err = Job::load(&dir.path().join("job.toml"), &JobLimits::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.ends_with("big.wgsl (8 GiB) is 8 GiB; the limit is 256 KiB"),
        "{err}"
    );
}

#[test]
fn too_many_buffers_are_refused() {
    let mut job = simple(STORE);
    job.buffers = (0..17)
        .map(|i| {
            buffer(
                &format!("b{i}"),
                i,
                BufferInit::Zeros(16),
                Access::ReadWrite,
                true,
            )
        })
        .collect();
    assert_eq!(
        refused(&job),
        "the number of buffers is 17; the limit is 16"
    );
}

#[test]
fn sixty_four_gib_buffer_is_refused_without_allocating() {
    let mut job = simple(STORE);
    job.buffers[0].init = BufferInit::Zeros(64 << 30);
    assert_eq!(
        refused(&job),
        "the buffers' total size is 64 GiB; the limit is 1 GiB"
    );
}

#[test]
fn pass_count_is_limited() {
    let mut job = simple(STORE);
    job.passes = vec![];
    assert_eq!(
        refused(&job),
        "the job has no passes: add a [[passes]] entry"
    );
    job.passes = vec![pass("main", 1); 65];
    assert_eq!(refused(&job), "the number of passes is 65; the limit is 64");
}

#[test]
fn workgroup_counts_are_limited() {
    let mut job = simple(STORE);
    job.passes = vec![Pass {
        entry: "main".into(),
        workgroups: [65_536, 1, 1],
    }];
    assert_eq!(
        refused(&job),
        "pass 0 (`main`): workgroups.x is 65536; the limit is 65535"
    );
    job.passes = vec![Pass {
        entry: "main".into(),
        workgroups: [1, 0, 1],
    }];
    assert_eq!(refused(&job), "pass 0 (`main`): workgroups.y is 0");
    job.passes = vec![Pass {
        entry: "main".into(),
        workgroups: [4_000_000, 1, 1],
    }];
    assert_eq!(
        refused(&job),
        "pass 0 (`main`): workgroups.x is 4000000; the limit is 65535"
    );
}

#[test]
fn buffer_larger_than_the_adapter_binds_is_refused_by_name() {
    let adapter = executor().adapter().clone();
    let allowed = adapter.limits().max_storage_buffer_binding_size;
    let limits = JobLimits {
        max_total_buffer_bytes: u64::MAX,
        ..JobLimits::default()
    };
    let mut executor = Executor::with_adapter(adapter, limits);
    let mut job = simple(STORE);
    job.buffers[0].init = BufferInit::Zeros((allowed + 4).next_multiple_of(4));
    let message = refused_with(&mut executor, &job);
    assert!(message.starts_with("the job needs max_"), "{message}");
    assert!(
        message.contains(&format!("allows at most {}", allowed))
            || message.contains("max_buffer_size"),
        "{message}"
    );
}

#[test]
fn workgroup_larger_than_the_adapter_allows_is_refused() {
    let mut executor = executor();
    let max_x = executor.adapter().limits().max_compute_workgroup_size_x;
    let wgsl = STORE.replace(
        "@workgroup_size(64)",
        &format!("@workgroup_size({})", max_x + 1),
    );
    let message = refused_with(&mut executor, &simple(&wgsl));
    // Whichever of the size and invocation limits is checked first names itself.
    assert!(
        message.starts_with("the job needs max_compute_"),
        "{message}"
    );
    assert!(
        message.contains(&format!(" = {}, but adapter ", max_x + 1)),
        "{message}"
    );
}

#[test]
fn buffer_names_become_safe_file_names_only() {
    for name in ["../../etc/passwd", "", ".hidden", "a b", &"x".repeat(65)] {
        let mut job = simple(STORE);
        job.buffers[0].name = name.into();
        let message = refused(&job);
        assert!(
            message.contains("must be 1-64 letters, digits, '_' or '-'"),
            "{name}: {message}"
        );
    }
}

#[test]
fn duplicate_names_and_bindings_are_refused() {
    let mut job = simple(STORE);
    job.buffers.push(data_buffer_at(1));
    assert_eq!(refused(&job), "two buffers are named `data`");
    job.buffers[1] = buffer("other", 0, BufferInit::Zeros(16), Access::ReadWrite, false);
    assert_eq!(refused(&job), "buffer `other`: binding 0 is used twice");
}

#[test]
fn buffer_sizes_must_be_whole_words() {
    let mut job = simple(STORE);
    job.buffers[0].init = BufferInit::Bytes(vec![0; 13]);
    assert_eq!(
        refused(&job),
        "buffer `data` is 13 bytes; a size must be a positive multiple of 4"
    );
    job.buffers[0].init = BufferInit::Zeros(0);
    assert_eq!(
        refused(&job),
        "buffer `data` is 0 bytes; a size must be a positive multiple of 4"
    );
}

#[test]
fn a_job_must_return_something() {
    let mut job = simple(STORE);
    job.buffers[0].output = false;
    assert_eq!(
        refused(&job),
        "the job has no output buffer: mark one with `output = true`"
    );
}

#[test]
fn non_utf8_shader_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        "name = \"latin1\"\nshader = \"s.wgsl\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.wgsl"),
        b"// caf\xe9\n@compute @workgroup_size(1) fn main() {}",
    )
    .unwrap();
    let err = Job::load(&dir.path().join("job.toml"), &JobLimits::default()).unwrap_err();
    assert!(
        err.to_string()
            .ends_with("s.wgsl: contents: not UTF-8 text (invalid byte at offset 6)"),
        "{err}"
    );
}

#[test]
fn missing_input_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("job.toml"),
        format!("name = \"m\"\nwgsl = '''{STORE}'''\n[[buffers]]\nname = \"data\"\nbinding = 0\nfile = \"missing.bin\"\n"),
    )
    .unwrap();
    let err = Job::load(&dir.path().join("job.toml"), &JobLimits::default()).unwrap_err();
    assert!(matches!(err, JobError::Io { .. }));
    let message = err.to_string();
    // The operating system's own words for a missing file.
    let not_found = std::fs::read(dir.path().join("missing.bin"))
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("cannot read ")
            && message.ends_with(&format!("missing.bin: {not_found}")),
        "{message}"
    );
}

#[test]
fn refused_job_leaves_the_executor_ready_for_the_next() {
    let mut executor = executor();
    let _ = refused_with(&mut executor, &simple("fn broken("));
    let out = executor.run(&simple(STORE)).unwrap();
    assert_eq!(u32s(output(&out, "data")), (0..64).collect::<Vec<u32>>());
}

#[test]
fn job_names_are_one_short_line() {
    let mut job = simple(STORE);
    job.name = "innocent\n\x1b[2Jgotcha".into();
    assert_eq!(
        refused(&job),
        "the job: name: must not contain control characters (newlines, tabs, escapes)"
    );
    job.name = "n".repeat(101);
    assert_eq!(
        refused(&job),
        "the job: name: is 101 characters; the limit is 100"
    );
    job.name = String::new();
    assert_eq!(refused(&job), "the job: name: must not be empty");
    job.name = "ok".into();
    job.source_name = "a\rb.wgsl".into();
    assert!(refused(&job).starts_with("the job: shader file name: must not contain"));
}

//! The checks run on every job before it reaches a GPU: limits, names, and the fit between the job's
//! passes and buffers and the shader's entry points and bindings.

use std::collections::HashSet;

use naga::ShaderStage;

use super::error::bytes;
use super::{
    Access, BindingKind, BufferInit, Job, JobError, JobLimits, ShaderBinding, ShaderInterface,
};

/// Checks `job` against `limits` and its own shader, returning the shader's interface.
pub fn check(job: &Job, limits: &JobLimits) -> Result<ShaderInterface, JobError> {
    check_without_shader(job, limits)?;
    let interface = ShaderInterface::from_wgsl(&job.wgsl, &job.source_name)?;
    check_fit(job, &interface)?;
    Ok(interface)
}

/// The checks that need no shader: limits, buffer names, sizes and outputs.
pub fn check_without_shader(job: &Job, limits: &JobLimits) -> Result<(), JobError> {
    check_limits(job, limits)?;
    check_buffers(job)?;
    check_verify(job)?;
    check_inputs_present(job)
}

/// Every check a pool can make on a manifest, whose large inputs are still blob references: all of
/// [`check`] except that the inputs are present.
pub fn check_manifest(job: &Job, limits: &JobLimits) -> Result<ShaderInterface, JobError> {
    check_limits(job, limits)?;
    check_buffers(job)?;
    check_verify(job)?;
    let interface = ShaderInterface::from_wgsl(&job.wgsl, &job.source_name)?;
    check_fit(job, &interface)?;
    Ok(interface)
}

/// Names a stranger chose end up in other people's terminals: one short line, no control characters.
fn check_label(key: &str, text: &str) -> Result<(), JobError> {
    let chars = text.chars().count();
    let message = if chars == 0 {
        "must not be empty".to_owned()
    } else if chars > MAX_NAME_CHARS {
        format!("is {chars} characters; the limit is {MAX_NAME_CHARS}")
    } else if text.chars().any(char::is_control) {
        "must not contain control characters (newlines, tabs, escapes)".to_owned()
    } else {
        return Ok(());
    };
    Err(JobError::Format {
        file: "the job".into(),
        key: key.into(),
        message,
    })
}

/// `[verify]` as the job file allows it, for jobs that arrive in wire form: `cosine` (from -1 to 1, with
/// rows of at least one float) or `tolerance`, never both, so the pool compares them one way only.
fn check_verify(job: &Job) -> Result<(), JobError> {
    let v = &job.verify;
    let message = match v.cosine {
        _ if !(v.tolerance.is_finite() && v.tolerance >= 0.0) => {
            "tolerance must be a number of 0 or more"
        }
        Some(_) if v.tolerance > 0.0 => "give either `tolerance` or `cosine`, not both",
        Some(c) if !(c.min.is_finite() && (-1.0..=1.0).contains(&c.min)) => {
            "cosine must be from -1 to 1"
        }
        Some(c) if c.row == 0 => "row must be at least 1",
        _ => return Ok(()),
    };
    Err(JobError::Format {
        file: "the job".into(),
        key: "verify".into(),
        message: message.into(),
    })
}

/// A job whose inputs are still blob references (a manifest) cannot run yet.
fn check_inputs_present(job: &Job) -> Result<(), JobError> {
    match job
        .buffers
        .iter()
        .find(|b| matches!(b.init, BufferInit::Blob { .. }))
    {
        Some(buffer) => Err(JobError::Interface(format!(
            "buffer `{}`: its input has not been fetched yet",
            buffer.name
        ))),
        None => Ok(()),
    }
}

/// Longest job name; it is shown in logs, ledgers and the window.
pub const MAX_NAME_CHARS: usize = 100;

fn check_limits(job: &Job, limits: &JobLimits) -> Result<(), JobError> {
    check_label("name", &job.name)?;
    check_label("shader file name", &job.source_name)?;
    let over =
        |what: String, value: String, limit: String| Err(JobError::Limit { what, value, limit });
    let source_bytes = job.wgsl.len() as u64;
    if source_bytes > limits.max_source_bytes {
        return over(
            "the shader source".into(),
            bytes(source_bytes),
            bytes(limits.max_source_bytes),
        );
    }
    if job.buffers.len() > limits.max_buffers {
        return over(
            "the number of buffers".into(),
            job.buffers.len().to_string(),
            limits.max_buffers.to_string(),
        );
    }
    let total = job.total_buffer_bytes();
    if total > limits.max_total_buffer_bytes {
        return over(
            "the buffers' total size".into(),
            bytes(total),
            bytes(limits.max_total_buffer_bytes),
        );
    }
    if job.passes.is_empty() {
        return Err(JobError::Interface(
            "the job has no passes: add a [[passes]] entry".into(),
        ));
    }
    if job.passes.len() > limits.max_passes {
        return over(
            "the number of passes".into(),
            job.passes.len().to_string(),
            limits.max_passes.to_string(),
        );
    }
    for (i, pass) in job.passes.iter().enumerate() {
        for (axis, &count) in ["x", "y", "z"].iter().zip(&pass.workgroups) {
            if count == 0 {
                return Err(JobError::Interface(format!(
                    "pass {i} (`{}`): workgroups.{axis} is 0",
                    pass.entry
                )));
            }
            if count > limits.max_workgroups_per_dimension {
                return over(
                    format!("pass {i} (`{}`): workgroups.{axis}", pass.entry),
                    count.to_string(),
                    limits.max_workgroups_per_dimension.to_string(),
                );
            }
        }
    }
    Ok(())
}

fn check_buffers(job: &Job) -> Result<(), JobError> {
    let refuse = |message: String| Err(JobError::Interface(message));
    let mut names = HashSet::new();
    let mut bindings = HashSet::new();
    for buffer in &job.buffers {
        if !is_safe_file_stem(&buffer.name) {
            return refuse(format!(
                "buffer name `{}` must be 1-64 letters, digits, '_' or '-' (it becomes a file name)",
                buffer.name.escape_debug()
            ));
        }
        if !names.insert(buffer.name.as_str()) {
            return refuse(format!("two buffers are named `{}`", buffer.name));
        }
        if !bindings.insert(buffer.binding) {
            return refuse(format!(
                "buffer `{}`: binding {} is used twice",
                buffer.name, buffer.binding
            ));
        }
        let size = buffer.init.size();
        if size == 0 || !size.is_multiple_of(4) {
            return refuse(format!(
                "buffer `{}` is {size} bytes; a size must be a positive multiple of 4",
                buffer.name
            ));
        }
    }
    if job.outputs().next().is_none() {
        return refuse("the job has no output buffer: mark one with `output = true`".into());
    }
    Ok(())
}

/// Checks that the passes and buffers fit the shader's entry points and bindings.
pub fn check_fit(job: &Job, interface: &ShaderInterface) -> Result<(), JobError> {
    let refuse = |message: String| Err(JobError::Interface(message));
    for (i, pass) in job.passes.iter().enumerate() {
        let Some(entry) = interface.entry_point(&pass.entry) else {
            let known: Vec<_> = interface
                .entry_points
                .iter()
                .map(|ep| ep.name.as_str())
                .collect();
            return refuse(format!(
                "pass {i}: entry point `{}` not found in {}; it has: {}",
                pass.entry,
                job.source_name,
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ));
        };
        if entry.stage != ShaderStage::Compute {
            return refuse(format!(
                "pass {i}: entry point `{}` is a {:?} shader, not @compute",
                pass.entry, entry.stage
            ));
        }
    }
    for binding in &interface.bindings {
        let Some(buffer) = job.buffers.iter().find(|b| b.binding == binding.binding) else {
            return refuse(format!(
                "binding {} (`{}`) is declared by the shader but the job has no buffer for it",
                binding.binding, binding.name
            ));
        };
        check_access(buffer.access, binding, &buffer.name)?;
        let size = buffer.init.size();
        if size < binding.min_size {
            return refuse(format!(
                "buffer `{}` is {size} bytes; binding {} (`{}`) needs at least {}",
                buffer.name, binding.binding, binding.name, binding.min_size
            ));
        }
    }
    if let Some(unbound) = job
        .buffers
        .iter()
        .find(|b| interface.binding(b.binding).is_none())
    {
        return refuse(format!(
            "buffer `{}` has binding {}, which the shader does not declare",
            unbound.name, unbound.binding
        ));
    }
    Ok(())
}

fn check_access(access: Access, binding: &ShaderBinding, buffer: &str) -> Result<(), JobError> {
    let fits = matches!(
        (binding.kind, access),
        (BindingKind::Uniform, Access::Uniform)
            | (BindingKind::Storage { read_only: false }, Access::ReadWrite)
            | (
                BindingKind::Storage { read_only: true },
                Access::Read | Access::ReadWrite
            )
    );
    if fits {
        return Ok(());
    }
    let declared = match binding.kind {
        BindingKind::Uniform => "var<uniform>",
        BindingKind::Storage { read_only: true } => "var<storage, read>",
        BindingKind::Storage { read_only: false } => "var<storage, read_write>",
    };
    Err(JobError::Interface(format!(
        "buffer `{buffer}` has access = \"{}\" but binding {} (`{}`) is declared {declared}",
        access.as_str(),
        binding.binding,
        binding.name
    )))
}

fn is_safe_file_stem(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

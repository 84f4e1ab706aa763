//! Reading a job from its TOML file. Paths inside the file are relative to it. Sizes are checked against
//! the limits before any file is read, so a job naming a huge file is refused without reading it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::bytes;
use super::{Access, BufferInit, BufferSpec, CosineCheck, Job, JobError, JobLimits, Pass, Verify};
use crate::amount::Amount;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    name: String,
    shader: Option<String>,
    wgsl: Option<String>,
    #[serde(default)]
    buffers: Vec<BufferEntry>,
    #[serde(default)]
    passes: Vec<PassEntry>,
    verify: Option<VerifyEntry>,
    reward: Option<RewardEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BufferEntry {
    name: String,
    binding: u32,
    file: Option<String>,
    zeros: Option<u64>,
    u32: Option<Vec<u32>>,
    f32: Option<Vec<f32>>,
    #[serde(default)]
    access: Access,
    #[serde(default)]
    output: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PassEntry {
    entry: String,
    workgroups: Vec<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyEntry {
    replicas: Option<u32>,
    tolerance: Option<f64>,
    cosine: Option<f64>,
    row: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RewardEntry {
    amount: String,
}

/// Where a job file is, for resolving relative paths and for naming it in errors.
struct Origin<'a> {
    dir: &'a Path,
    label: String,
}

impl Origin<'_> {
    fn error(&self, key: impl Into<String>, message: impl Into<String>) -> JobError {
        JobError::Format {
            file: self.label.clone(),
            key: key.into(),
            message: message.into(),
        }
    }

    fn resolve(&self, relative: &str) -> PathBuf {
        self.dir.join(relative)
    }
}

pub(super) fn load(path: &Path, limits: &JobLimits) -> Result<Job, JobError> {
    let text = read_text(path, limits.max_source_bytes)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse_text(&text, dir, &path.display().to_string(), limits)
}

/// Parses a job file's text, reading the files it names relative to `dir`; `label` names it in errors.
pub(super) fn parse_text(
    text: &str,
    dir: &Path,
    label: &str,
    limits: &JobLimits,
) -> Result<Job, JobError> {
    let origin = Origin {
        dir,
        label: label.to_owned(),
    };
    parse(text, &origin, limits)
}

fn parse(text: &str, origin: &Origin<'_>, limits: &JobLimits) -> Result<Job, JobError> {
    let file: JobFile = toml::from_str(text).map_err(|e| toml_error(&e, text, &origin.label))?;
    let (source_name, wgsl) = shader_source(&file, origin, limits)?;
    if file.buffers.len() > limits.max_buffers {
        return Err(origin.error(
            "buffers",
            format!(
                "{} buffers; the limit is {}",
                file.buffers.len(),
                limits.max_buffers
            ),
        ));
    }
    let mut budget = limits.max_total_buffer_bytes;
    let buffers = file
        .buffers
        .into_iter()
        .enumerate()
        .map(|(i, entry)| buffer(entry, i, origin, &mut budget, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let passes = file
        .passes
        .into_iter()
        .enumerate()
        .map(|(i, entry)| pass(entry, i, origin))
        .collect::<Result<Vec<_>, _>>()?;
    let verify = verify(file.verify, origin)?;
    let reward = file
        .reward
        .map(|r| {
            r.amount
                .parse::<Amount>()
                .map_err(|e| origin.error("reward.amount", e.to_string()))
        })
        .transpose()?;
    Ok(Job {
        name: file.name,
        source_name,
        wgsl,
        buffers,
        passes,
        verify,
        reward,
    })
}

fn shader_source(
    file: &JobFile,
    origin: &Origin<'_>,
    limits: &JobLimits,
) -> Result<(String, String), JobError> {
    match (&file.shader, &file.wgsl) {
        (Some(shader), None) => {
            let path = origin.resolve(shader);
            Ok((shader.clone(), read_text(&path, limits.max_source_bytes)?))
        }
        (None, Some(wgsl)) => Ok((origin.label.clone(), wgsl.clone())),
        (Some(_), Some(_)) => Err(origin.error(
            "shader",
            "give either `shader` (a file) or `wgsl` (inline), not both",
        )),
        (None, None) => Err(origin.error(
            "shader",
            "missing: give `shader = \"file.wgsl\"` or inline `wgsl`",
        )),
    }
}

fn buffer(
    entry: BufferEntry,
    index: usize,
    origin: &Origin<'_>,
    budget: &mut u64,
    limits: &JobLimits,
) -> Result<BufferSpec, JobError> {
    let key = format!("buffers[{index}] (\"{}\")", entry.name);
    let given = [
        entry.file.is_some(),
        entry.zeros.is_some(),
        entry.u32.is_some(),
        entry.f32.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(origin.error(
            key,
            "give exactly one of `file`, `zeros`, `u32` or `f32` for the initial contents",
        ));
    }
    let over_budget = |size: u64| {
        origin.error(
            key.clone(),
            format!(
                "{} would take the job's buffers past {} in all",
                bytes(size),
                bytes(limits.max_total_buffer_bytes)
            ),
        )
    };
    let init = if let Some(size) = entry.zeros {
        BufferInit::Zeros(size)
    } else if let Some(values) = &entry.u32 {
        BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    } else if let Some(values) = &entry.f32 {
        BufferInit::Bytes(values.iter().flat_map(|v| v.to_le_bytes()).collect())
    } else {
        let relative = entry.file.as_deref().unwrap_or_default();
        let path = origin.resolve(relative);
        let size = file_size(&path)?;
        if size > *budget {
            return Err(over_budget(size));
        }
        BufferInit::Bytes(std::fs::read(&path).map_err(|source| JobError::Io { path, source })?)
    };
    let size = init.size();
    *budget = budget.checked_sub(size).ok_or_else(|| over_budget(size))?;
    Ok(BufferSpec {
        name: entry.name,
        binding: entry.binding,
        init,
        access: entry.access,
        output: entry.output,
    })
}

fn pass(entry: PassEntry, index: usize, origin: &Origin<'_>) -> Result<Pass, JobError> {
    let mut workgroups = [1u32; 3];
    if entry.workgroups.is_empty() || entry.workgroups.len() > 3 {
        return Err(origin.error(
            format!("passes[{index}].workgroups"),
            "give one to three counts, such as [64, 1, 1]",
        ));
    }
    workgroups[..entry.workgroups.len()].copy_from_slice(&entry.workgroups);
    Ok(Pass {
        entry: entry.entry,
        workgroups,
    })
}

fn verify(entry: Option<VerifyEntry>, origin: &Origin<'_>) -> Result<Verify, JobError> {
    let defaults = Verify::default();
    let Some(entry) = entry else {
        return Ok(defaults);
    };
    let cosine = match (entry.cosine, entry.row, entry.tolerance) {
        (None, None, _) => None,
        (Some(_), _, Some(_)) => {
            return Err(origin.error(
                "verify.cosine",
                "give either `tolerance` or `cosine` (with `row`), not both",
            ));
        }
        (Some(min), Some(row), None) => {
            if !(min.is_finite() && (-1.0..=1.0).contains(&min)) {
                return Err(origin.error("verify.cosine", "must be a number from -1 to 1"));
            }
            if row == 0 {
                return Err(origin.error("verify.row", "must be at least 1"));
            }
            Some(CosineCheck { min, row })
        }
        (Some(_), None, _) => {
            return Err(origin.error("verify.row", "`cosine` needs `row`, the floats in a row"));
        }
        (None, Some(_), _) => {
            return Err(origin.error("verify.row", "`row` goes with `cosine`"));
        }
    };
    let verify = Verify {
        replicas: entry.replicas.unwrap_or(defaults.replicas),
        tolerance: entry.tolerance.unwrap_or(defaults.tolerance),
        cosine,
    };
    if verify.replicas == 0 {
        return Err(origin.error("verify.replicas", "must be at least 1"));
    }
    if !(verify.tolerance.is_finite() && verify.tolerance >= 0.0) {
        return Err(origin.error("verify.tolerance", "must be a number of 0 or more"));
    }
    Ok(verify)
}

/// The size of a regular file. Anything else is refused: a device or a pipe (`/dev/zero`, a FIFO) has
/// a size of 0 however much it would give, so reading it could never end.
fn file_size(path: &Path) -> Result<u64, JobError> {
    let io = |source| JobError::Io {
        path: path.to_owned(),
        source,
    };
    let metadata = std::fs::metadata(path).map_err(io)?;
    if !metadata.is_file() {
        return Err(io(std::io::Error::other("not a regular file")));
    }
    Ok(metadata.len())
}

/// Reads a UTF-8 text file of at most `max` bytes, checking the size before reading.
fn read_text(path: &Path, max: u64) -> Result<String, JobError> {
    let size = file_size(path)?;
    if size > max {
        return Err(JobError::Limit {
            what: format!("{} ({})", path.display(), bytes(size)),
            value: bytes(size),
            limit: bytes(max),
        });
    }
    let raw = std::fs::read(path).map_err(|source| JobError::Io {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(raw).map_err(|e| JobError::Format {
        file: path.display().to_string(),
        key: "contents".into(),
        message: format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        ),
    })
}

fn toml_error(error: &toml::de::Error, text: &str, file: &str) -> JobError {
    let offset = error.span().map_or(0, |span| span.start);
    let (line, column) = line_and_column(text, offset);
    JobError::Toml {
        file: file.to_owned(),
        line,
        column,
        message: error.message().trim().replace('\n', " "),
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..text.floor_char_boundary(offset.min(text.len()))];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<Job, JobError> {
        let origin = Origin {
            dir: Path::new("."),
            label: "job.toml".into(),
        };
        parse(text, &origin, &JobLimits::default())
    }

    const INLINE: &str = r#"
name = "t"
wgsl = "@compute @workgroup_size(1) fn main() {}"
"#;

    #[test]
    fn inline_values_become_little_endian_bytes() {
        let job = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"a\"\nbinding = 0\nu32 = [1, 258]\n\
             [[buffers]]\nname = \"b\"\nbinding = 1\nf32 = [1.5]\naccess = \"read\"\noutput = true\n\
             [[passes]]\nentry = \"main\"\nworkgroups = [4]\n[reward]\namount = \"0.0005\""
        ))
        .unwrap();
        assert_eq!(
            job.buffers[0].init,
            BufferInit::Bytes(vec![1, 0, 0, 0, 2, 1, 0, 0])
        );
        assert_eq!(
            job.buffers[1].init,
            BufferInit::Bytes(1.5f32.to_le_bytes().to_vec())
        );
        assert_eq!(job.buffers[1].access, Access::Read);
        assert!(job.buffers[1].output && !job.buffers[0].output);
        assert_eq!(job.passes[0].workgroups, [4, 1, 1]);
        assert_eq!(job.reward, Some(Amount::from_micros(500)));
        assert_eq!(job.verify, Verify::default());
    }

    #[test]
    fn misspelt_key_is_named_with_its_line() {
        let err = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"a\"\nbindin = 0\nzeros = 4\n"
        ))
        .unwrap_err();
        let message = err.to_string();
        assert!(message.starts_with("job.toml:7:"), "{message}");
        assert!(message.contains("unknown field `bindin`"), "{message}");
    }

    #[test]
    fn wrong_type_is_named() {
        let err = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"a\"\nbinding = \"zero\"\nzeros = 4\n"
        ))
        .unwrap_err();
        assert!(err.to_string().starts_with("job.toml:7:"), "{err}");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }

    #[test]
    fn a_buffer_needs_exactly_one_source_of_contents() {
        let err = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"a\"\nbinding = 0\nzeros = 4\nu32 = [1]\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.toml: buffers[0] (\"a\"): give exactly one of `file`, `zeros`, `u32` or `f32` for the initial contents"
        );
    }

    #[test]
    fn shader_must_be_given_once() {
        let err = parse_str("name = \"t\"").unwrap_err();
        assert!(err.to_string().contains("shader: missing"), "{err}");
        let err = parse_str("name = \"t\"\nwgsl = \"\"\nshader = \"a.wgsl\"").unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    #[test]
    fn huge_zero_buffer_is_refused_without_allocating() {
        let err = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"huge\"\nbinding = 0\nzeros = 68719476736\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.toml: buffers[0] (\"huge\"): 64 GiB would take the job's buffers past 1 GiB in all"
        );
    }

    #[test]
    fn verify_and_reward_values_are_checked() {
        let err = parse_str(&format!("{INLINE}\n[verify]\nreplicas = 0\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "job.toml: verify.replicas: must be at least 1"
        );
        let err = parse_str(&format!("{INLINE}\n[verify]\ntolerance = -1.0\n")).unwrap_err();
        assert!(err.to_string().contains("verify.tolerance"), "{err}");
        let err = parse_str(&format!("{INLINE}\n[reward]\namount = \"0.5 coins\"\n")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("job.toml: reward.amount: `0.5 coins`"),
            "{err}"
        );
    }

    #[test]
    fn cosine_verification_needs_a_row_and_excludes_tolerance() {
        let job = parse_str(&format!(
            "{INLINE}\n[verify]\nreplicas = 2\ncosine = 0.9999\nrow = 384\n"
        ))
        .unwrap();
        assert_eq!(
            job.verify.cosine,
            Some(CosineCheck {
                min: 0.9999,
                row: 384
            })
        );
        assert_eq!(job.verify.tolerance, 0.0);
        let both = parse_str(&format!(
            "{INLINE}\n[verify]\ncosine = 0.9999\nrow = 384\ntolerance = 0.1\n"
        ))
        .unwrap_err();
        assert_eq!(
            both.to_string(),
            "job.toml: verify.cosine: give either `tolerance` or `cosine` (with `row`), not both"
        );
        let no_row = parse_str(&format!("{INLINE}\n[verify]\ncosine = 0.9\n")).unwrap_err();
        assert!(no_row.to_string().contains("verify.row"), "{no_row}");
        let wild = parse_str(&format!("{INLINE}\n[verify]\ncosine = 2.0\nrow = 4\n")).unwrap_err();
        assert!(wild.to_string().contains("from -1 to 1"), "{wild}");
    }

    #[test]
    fn workgroups_need_one_to_three_counts() {
        let err = parse_str(&format!(
            "{INLINE}\n[[passes]]\nentry = \"main\"\nworkgroups = [1, 1, 1, 1]\n"
        ))
        .unwrap_err();
        assert!(err.to_string().contains("passes[0].workgroups"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_is_refused_before_it_is_read() {
        // `/dev/zero` says it is empty and never ends: reading it used to run out of memory.
        let shader = parse_str("name = \"t\"\nshader = \"/dev/zero\"\n").unwrap_err();
        assert_eq!(
            shader.to_string(),
            "cannot read /dev/zero: not a regular file"
        );
        let buffer = parse_str(&format!(
            "{INLINE}\n[[buffers]]\nname = \"z\"\nbinding = 0\nfile = \"/dev/zero\"\n"
        ))
        .unwrap_err();
        assert_eq!(
            buffer.to_string(),
            "cannot read /dev/zero: not a regular file"
        );
    }

    #[test]
    fn line_and_column_count_characters() {
        assert_eq!(line_and_column("ab\ncd", 0), (1, 1));
        assert_eq!(line_and_column("ab\ncd", 4), (2, 2));
        assert_eq!(line_and_column("é\nx", 3), (2, 1));
        assert_eq!(line_and_column("ab", 99), (1, 3));
    }
}

//! What a shader offers a job: its entry points and the buffers it binds, read from WGSL with naga after
//! full validation. Anything a job cannot use (textures, other bind groups) is refused here.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use naga::{AddressSpace, ShaderStage, StorageAccess};

use super::JobError;
use super::error::WgslError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShaderInterface {
    pub entry_points: Vec<ShaderEntryPoint>,
    /// Group 0 bindings, by binding number.
    pub bindings: Vec<ShaderBinding>,
    /// Workgroup (shared) memory declared by the module, in bytes.
    pub workgroup_memory: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShaderEntryPoint {
    pub name: String,
    pub stage: ShaderStage,
    pub workgroup_size: [u32; 3],
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShaderBinding {
    pub binding: u32,
    pub name: String,
    pub kind: BindingKind,
    /// The smallest buffer the declared type fits in (one element for a runtime-sized array).
    pub min_size: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BindingKind {
    Storage { read_only: bool },
    Uniform,
}

impl ShaderInterface {
    /// Parses and validates `source`; `file` names it in errors.
    pub fn from_wgsl(source: &str, file: &str) -> Result<ShaderInterface, JobError> {
        let module = naga::front::wgsl::parse_str(source).map_err(|e| {
            let location = e.location(source);
            wgsl_error(file, source, location, e.message().to_owned())
        })?;
        Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&module)
            .map_err(|e| wgsl_error(file, source, e.location(source), error_chain(e.as_inner())))?;
        let bindings = bindings(&module, file)?;
        let entry_points = module
            .entry_points
            .iter()
            .map(|ep| ShaderEntryPoint {
                name: ep.name.clone(),
                stage: ep.stage,
                workgroup_size: ep.workgroup_size,
            })
            .collect();
        let workgroup_memory = module
            .global_variables
            .iter()
            .filter(|(_, var)| var.space == AddressSpace::WorkGroup)
            .map(|(_, var)| u64::from(module.types[var.ty].inner.size(module.to_ctx())))
            .sum();
        Ok(ShaderInterface {
            entry_points,
            bindings,
            workgroup_memory,
        })
    }

    pub fn entry_point(&self, name: &str) -> Option<&ShaderEntryPoint> {
        self.entry_points.iter().find(|ep| ep.name == name)
    }

    pub fn binding(&self, binding: u32) -> Option<&ShaderBinding> {
        self.bindings.iter().find(|b| b.binding == binding)
    }
}

fn bindings(module: &naga::Module, file: &str) -> Result<Vec<ShaderBinding>, JobError> {
    let mut bindings = Vec::new();
    for (_, var) in module.global_variables.iter() {
        let Some(resource) = &var.binding else {
            continue;
        };
        let name = var.name.clone().unwrap_or_default();
        let refuse = |why: &str| {
            JobError::Interface(format!(
                "{file}: `{name}` at @group({}) @binding({}): {why}",
                resource.group, resource.binding
            ))
        };
        if resource.group != 0 {
            return Err(refuse("jobs bind buffers in @group(0) only"));
        }
        let kind = match var.space {
            AddressSpace::Storage { access } => BindingKind::Storage {
                read_only: !access.contains(StorageAccess::STORE),
            },
            AddressSpace::Uniform => BindingKind::Uniform,
            _ => {
                return Err(refuse(
                    "jobs bind storage and uniform buffers only, not textures or samplers",
                ));
            }
        };
        let min_size = u64::from(module.types[var.ty].inner.size(module.to_ctx()));
        bindings.push(ShaderBinding {
            binding: resource.binding,
            name,
            kind,
            min_size,
        });
    }
    bindings.sort_by_key(|b| b.binding);
    Ok(bindings)
}

fn wgsl_error(
    file: &str,
    source: &str,
    location: Option<naga::SourceLocation>,
    message: String,
) -> JobError {
    let source_line =
        location.and_then(|l| source.lines().nth(l.line_number.saturating_sub(1) as usize));
    JobError::Wgsl(WgslError {
        file: file.to_owned(),
        location: location.map(|l| (l.line_number, l.line_position)),
        message,
        source_line: source_line
            .map(|l| excerpt(l, location.map_or(0, |l| l.line_position as usize)))
            .filter(|l| !l.is_empty()),
    })
}

/// The source line for an error message, trimmed and cut to [`EXCERPT_CHARS`] around the error's
/// column: a hostile shader's one line can be megabytes long.
fn excerpt(line: &str, column: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    let first = chars
        .iter()
        .position(|c| !c.is_whitespace())
        .unwrap_or(chars.len());
    let last = chars
        .iter()
        .rposition(|c| !c.is_whitespace())
        .map_or(first, |i| i + 1);
    if last - first <= EXCERPT_CHARS {
        return chars[first..last].iter().collect();
    }
    let start = column
        .saturating_sub(1 + EXCERPT_CHARS / 2)
        .clamp(first, last - EXCERPT_CHARS);
    let end = start + EXCERPT_CHARS;
    format!(
        "{}{}{}",
        if start > first { "…" } else { "" },
        chars[start..end].iter().collect::<String>(),
        if end < last { "…" } else { "" }
    )
}

const EXCERPT_CHARS: usize = 80;

/// "outer: inner: innermost", so that the root cause of a validation error is in the one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_entry_points_bindings_and_sizes() {
        let source = r#"
struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<vec4<f32>, 8>;
@group(0) @binding(2) var<uniform> params: Params;
var<workgroup> tile: array<f32, 64>;
@compute @workgroup_size(64, 2) fn main() { tile[0] = table[0].x * params.scale; data[0] = tile[0]; }
@compute @workgroup_size(1) fn second() {}
"#;
        let iface = ShaderInterface::from_wgsl(source, "s.wgsl").unwrap();
        assert_eq!(
            iface.entry_point("main").unwrap().workgroup_size,
            [64, 2, 1]
        );
        assert_eq!(
            iface.entry_point("second").unwrap().stage,
            ShaderStage::Compute
        );
        let kinds: Vec<_> = iface
            .bindings
            .iter()
            .map(|b| (b.binding, b.kind, b.min_size))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (0, BindingKind::Storage { read_only: false }, 4),
                (1, BindingKind::Storage { read_only: true }, 128),
                (2, BindingKind::Uniform, 8),
            ]
        );
        assert_eq!(iface.workgroup_memory, 256);
    }

    #[test]
    fn a_long_source_line_is_cut_around_the_error() {
        let line = format!("  {}x{}  ", "a".repeat(500), "b".repeat(500));
        let cut = excerpt(&line, 503);
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 2);
        assert!(cut.starts_with("…a") && cut.ends_with("b…"), "{cut}");
        assert!(cut.contains('x'));
        assert_eq!(excerpt("   short line  ", 4), "short line");
        assert_eq!(
            excerpt(&"c".repeat(200), 1),
            format!("{}…", "c".repeat(EXCERPT_CHARS))
        );
    }

    #[test]
    fn parse_error_names_line_column_and_source_line() {
        let source =
            "@compute @workgroup_size(1)\nfn main() {\n    let x = undefined_thing + 1;\n}\n";
        let err = ShaderInterface::from_wgsl(source, "bad.wgsl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("bad.wgsl:3:13: invalid WGSL: "), "{err}");
        assert!(err.contains("undefined_thing"), "{err}");
        assert!(err.contains("(in `let x = undefined_thing + 1;`)"), "{err}");
        assert_eq!(err.lines().count(), 1);
    }

    #[test]
    fn validation_error_is_located_too() {
        let source = "@compute @workgroup_size(1)\nfn main() {\n    let x: u32 = 1.5;\n}\n";
        let err = ShaderInterface::from_wgsl(source, "v.wgsl")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("v.wgsl:3:"), "{err}");
        assert!(err.contains("let x: u32 = 1.5;"), "{err}");
    }

    #[test]
    fn textures_and_other_groups_are_refused() {
        let texture = "@group(0) @binding(0) var t: texture_2d<f32>;\n@compute @workgroup_size(1) fn main() { _ = t; }";
        let err = ShaderInterface::from_wgsl(texture, "t.wgsl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not textures or samplers"), "{err}");
        let group = "@group(1) @binding(0) var<storage, read_write> d: array<u32>;\n@compute @workgroup_size(1) fn main() { d[0] = 1u; }";
        let err = ShaderInterface::from_wgsl(group, "g.wgsl")
            .unwrap_err()
            .to_string();
        assert!(err.contains("@group(0) only"), "{err}");
    }
}

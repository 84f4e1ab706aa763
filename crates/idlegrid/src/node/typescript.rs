//! The window's TypeScript types (`ui/src/lib/types.ts`), written from the serde types it is sent:
//! the views of docs/desktop-ipc.md and the preferences it edits. A test compares the file with what
//! these types make now and fails when they differ; `IDLEGRID_WRITE_TYPES=1 cargo test -p idlegrid
//! --lib typescript` writes it again.

use std::collections::BTreeSet;
use std::path::Path;

use ts_rs::{Config, TS};

use super::views::*;
use crate::idle::{GpuRule, Mode, Pace, Preferences, Schedule, Window};

/// What an `Amount` field is on the wire: the ledger's decimal string (views.rs' `decimal`).
pub struct AmountText;

impl TS for AmountText {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;
    fn name(_: &Config) -> String {
        "Amount".into()
    }
    fn inline(_: &Config) -> String {
        "string".into()
    }
    fn decl(_: &Config) -> String {
        "type Amount = string;".into()
    }
    fn docs() -> Option<String> {
        Some("/** A decimal string in the pool's currency, shown exactly as given (\"0.0005\"). */\n".into())
    }
}

/// One declaration: its name, its TypeScript, and the names it refers to.
struct Declaration {
    name: String,
    text: String,
    uses: Vec<String>,
}

fn declaration<T: TS + 'static>(cfg: &Config) -> Declaration {
    Declaration {
        name: T::ident(cfg),
        text: format!(
            "{}export {}",
            T::docs().unwrap_or_default(),
            laid_out(&T::decl(cfg))
        ),
        uses: T::dependencies(cfg)
            .into_iter()
            .map(|d| d.ts_name)
            .collect(),
    }
}

/// Every type the window is sent, in the order the file lists them.
fn declarations(cfg: &Config) -> Vec<Declaration> {
    vec![
        declaration::<AmountText>(cfg),
        declaration::<StateKind>(cfg),
        declaration::<Status>(cfg),
        declaration::<Pace>(cfg),
        declaration::<JobNow>(cfg),
        declaration::<Range>(cfg),
        declaration::<Bucket>(cfg),
        declaration::<PoolTotal>(cfg),
        declaration::<EarningsView>(cfg),
        declaration::<CheckView>(cfg),
        declaration::<ChecksView>(cfg),
        declaration::<ProblemKind>(cfg),
        declaration::<Problem>(cfg),
        declaration::<PayoutState>(cfg),
        declaration::<PayoutView>(cfg),
        declaration::<Hardware>(cfg),
        declaration::<CpuView>(cfg),
        declaration::<MemoryView>(cfg),
        declaration::<Unreadable>(cfg),
        declaration::<GpuView>(cfg),
        declaration::<Score>(cfg),
        declaration::<EmbeddingScore>(cfg),
        declaration::<PoolState>(cfg),
        declaration::<PoolPath>(cfg),
        declaration::<PoolView>(cfg),
        declaration::<Notices>(cfg),
        declaration::<NetworkSettings>(cfg),
        declaration::<Settings>(cfg),
        declaration::<PayoutSettings>(cfg),
        declaration::<PayoutTo>(cfg),
        declaration::<Mode>(cfg),
        declaration::<Window>(cfg),
        declaration::<Schedule>(cfg),
        declaration::<GpuRule>(cfg),
        declaration::<Preferences>(cfg),
        declaration::<Earned>(cfg),
        declaration::<WindowEvent>(cfg),
    ]
}

/// ts-rs writes a type on one line, its fields' doc comments breaking it anywhere; people read this
/// file as the contract, so each field of an object gets a line of its own under its comment, and each
/// object of a union a line of its own.
fn laid_out(decl: &str) -> String {
    let Some((head, body)) = decl.split_once(" = ") else {
        return decl.to_owned();
    };
    let Some(body) = body.strip_suffix(';') else {
        return decl.to_owned();
    };
    let variants = split_outside(body, b'|');
    if variants.len() > 1 {
        if !variants.iter().all(|v| v.trim().starts_with('{')) {
            return decl.to_owned();
        }
        let mut out = format!("{head} =\n");
        for variant in variants {
            out.push_str(&format!("  | {}\n", variant.trim()));
        }
        out.pop();
        out.push(';');
        return out;
    }
    let Some(fields) = body
        .strip_prefix("{ ")
        .and_then(|body| body.strip_suffix(" }"))
    else {
        return decl.to_owned();
    };
    let mut out = format!("{head} = {{\n");
    for field in split_outside(fields, b',') {
        let mut field = field.trim();
        if field.is_empty() {
            continue;
        }
        if let Some(commented) = field.strip_prefix("/**")
            && let Some((doc, rest)) = commented.split_once("*/")
        {
            out.push_str("  /**\n");
            for line in doc.lines().map(str::trim).filter(|line| !line.is_empty()) {
                out.push_str(&format!("   {line}\n"));
            }
            out.push_str("   */\n");
            field = rest.trim();
        }
        out.push_str(&format!("  {field},\n"));
    }
    out.push_str("};");
    out
}

/// `text` split at each `separator` outside brackets, strings and doc comments.
fn split_outside(text: &str, separator: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut in_doc, mut in_string) = (0i32, 0, false, false);
    let bytes = text.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'/' if !in_doc && !in_string && bytes.get(i + 1) == Some(&b'*') => in_doc = true,
            b'/' if in_doc && i > 0 && bytes[i - 1] == b'*' => in_doc = false,
            _ if in_doc => {}
            b'"' => in_string = !in_string,
            _ if in_string => {}
            b'{' | b'<' | b'(' | b'[' => depth += 1,
            b'}' | b'>' | b')' | b']' => depth -= 1,
            _ if byte == separator && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// The events as the window's `on(name, handler)` takes them, from `WindowEvent`.
const EVENT_MAP: &str = "
/** Every event the app pushes, by name, with its payload. */
export type EventPayloads = { [E in WindowEvent as E[\"name\"]]: E[\"payload\"] };

export type EventName = keyof EventPayloads;
";

const HEADER: &str = "\
// Written by crates/idlegrid/src/node/typescript.rs from the Rust types the app sends (the views of
// docs/desktop-ipc.md); do not edit. `IDLEGRID_WRITE_TYPES=1 cargo test -p idlegrid --lib typescript`
// writes it again, and that test fails while this file is not what the types make.
";

/// The whole of `ui/src/lib/types.ts`.
fn types_ts() -> String {
    // JavaScript numbers hold every count and time the app sends (all below 2^53).
    let cfg = Config::new().with_large_int("number");
    let mut file = String::from(HEADER);
    for declaration in declarations(&cfg) {
        file.push('\n');
        file.push_str(&declaration.text);
        file.push('\n');
    }
    file.push_str(EVENT_MAP);
    file
}

#[test]
fn every_type_the_declarations_use_is_declared() {
    let cfg = Config::new().with_large_int("number");
    let declarations = declarations(&cfg);
    let declared: BTreeSet<&str> = declarations.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        declared.len(),
        declarations.len(),
        "a name is declared twice"
    );
    for declaration in &declarations {
        for used in &declaration.uses {
            assert!(
                declared.contains(used.as_str()),
                "{} uses {used}, which types.ts does not declare",
                declaration.name
            );
        }
    }
}

#[test]
fn amounts_are_strings_and_counts_numbers() {
    let cfg = Config::new().with_large_int("number");
    let status = Status::decl(&cfg);
    assert!(status.contains("balance: Amount"), "{status}");
    assert!(status.contains("since_ms: number"), "{status}");
    assert!(
        status.contains("snoozed_until_ms: number | null"),
        "{status}"
    );
    let bucket = Bucket::decl(&cfg);
    assert!(bucket.contains("Amount"), "{bucket}");
    let preferences = Preferences::decl(&cfg);
    assert!(preferences.contains("idle_after: number"), "{preferences}");
}

#[test]
fn ui_types_ts_is_what_the_types_make() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../ui/src/lib/types.ts");
    let made = types_ts();
    if std::env::var_os("IDLEGRID_WRITE_TYPES").is_some() {
        std::fs::write(&path, &made).unwrap();
        return;
    }
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        current == made,
        "{} is not what the Rust types make: run `IDLEGRID_WRITE_TYPES=1 cargo test -p idlegrid --lib typescript`",
        path.display()
    );
}

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
            one_field_a_line(&T::decl(cfg))
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
        declaration::<PayoutView>(cfg),
        declaration::<Hardware>(cfg),
        declaration::<CpuView>(cfg),
        declaration::<MemoryView>(cfg),
        declaration::<GpuView>(cfg),
        declaration::<Score>(cfg),
        declaration::<PoolState>(cfg),
        declaration::<PoolView>(cfg),
        declaration::<Notices>(cfg),
        declaration::<Settings>(cfg),
        declaration::<Mode>(cfg),
        declaration::<Window>(cfg),
        declaration::<Schedule>(cfg),
        declaration::<GpuRule>(cfg),
        declaration::<Preferences>(cfg),
        declaration::<Earned>(cfg),
    ]
}

/// The app's events by name (src-tauri/forward.rs sends them), with their payloads.
fn events(cfg: &Config) -> Vec<(&'static str, String)> {
    vec![
        ("status", Status::name(cfg)),
        ("earned", Earned::name(cfg)),
        ("paid", PayoutView::name(cfg)),
        ("problem", Problem::name(cfg)),
        ("checked", CheckView::name(cfg)),
        ("pools", <Vec<PoolView>>::name(cfg)),
        ("hardware", Hardware::name(cfg)),
    ]
}

/// ts-rs writes an object type on one line, its fields' doc comments breaking it anywhere; people read
/// this file as the contract, so each field gets a line of its own, under its comment.
fn one_field_a_line(decl: &str) -> String {
    let Some((head, body)) = decl.split_once(" = { ") else {
        return decl.to_owned();
    };
    let Some(body) = body.strip_suffix(" };") else {
        return decl.to_owned();
    };
    let mut out = format!("{head} = {{\n");
    for field in fields(body) {
        let mut field = field.trim();
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

/// The fields of an object type's body: split at the commas outside brackets and comments.
fn fields(body: &str) -> Vec<&str> {
    let mut fields = Vec::new();
    let (mut depth, mut start, mut in_doc) = (0i32, 0, false);
    let bytes = body.as_bytes();
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'/' if !in_doc && bytes.get(i + 1) == Some(&b'*') => in_doc = true,
            b'/' if in_doc && i > 0 && bytes[i - 1] == b'*' => in_doc = false,
            _ if in_doc => {}
            b'{' | b'<' | b'(' | b'[' => depth += 1,
            b'}' | b'>' | b')' | b']' => depth -= 1,
            b',' if depth == 0 => {
                fields.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if !body[start..].trim().is_empty() {
        fields.push(&body[start..]);
    }
    fields
}

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
    file.push_str("\n/** Every event the app pushes, by name, with its payload. */\n");
    file.push_str("export interface EventPayloads {\n");
    for (name, payload) in events(&cfg) {
        file.push_str(&format!("  {name}: {payload};\n"));
    }
    file.push_str("}\n\nexport type EventName = keyof EventPayloads;\n");
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

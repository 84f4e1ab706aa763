//! The `idlegrid` command as a person or a script runs it, one program at a time: outputs, JSON and
//! one-line errors, and the identity key in a real keyring. (The network commands working together
//! are the whole-system tests in the top-level tests/.)

#[path = "../common/mod.rs"]
mod common;

mod commands;
mod keyring;

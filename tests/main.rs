//! Whole-system tests: the programs this workspace builds (`idlegrid`, `idlegrid-desktop`,
//! `idlegrid-window`), run as separate processes working together, the way people run them. Each
//! test is a module here; README.md says how they find the programs.

mod support;

mod chain_payouts;
mod cli_network;
mod embeddings;
mod home_networks;
mod nat;
mod nat_lab;
mod openai_endpoint;
mod peers;
#[cfg(target_os = "linux")]
mod windows_provider;

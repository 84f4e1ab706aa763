//! Sharing only while the person is away: input sources against real peers (D-Bus, Wayland, an X
//! server with real input), and a provider that yields its GPU when they return.

#[path = "../common/mod.rs"]
mod common;

mod input;
mod x11;
mod yielding;

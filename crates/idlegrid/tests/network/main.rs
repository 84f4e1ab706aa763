//! The network over real iroh endpoints on 127.0.0.1 with relays off, all in this process: the three
//! roles working together, the pool's limits and refusals, and the node the desktop app runs on.

#[path = "../common/mod.rs"]
mod common;

mod limits;
mod node;
mod refusals;
mod roles;

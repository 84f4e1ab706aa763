//! Named points where a test can make the process die on the spot, as a power cut or SIGKILL would:
//! no destructors, no flushing. `IDLEGRID_CRASH_AT=NAME` arms the point called NAME; unset, every point
//! costs one environment lookup. The pool's chain rail names the moments between which its crash
//! safety must hold (see `pool::chain`).

/// Set to a point's name to abort the process when it is reached.
pub const ENV: &str = "IDLEGRID_CRASH_AT";

/// Aborts the process if `IDLEGRID_CRASH_AT` names this point.
pub fn reached(name: &str) {
    if std::env::var(ENV).is_ok_and(|armed| armed == name) {
        tracing::error!(point = name, "crashing on purpose ({ENV})");
        std::process::abort();
    }
}

// Every command of docs/desktop-ipc.md, by the name the window invokes. Included by build.rs (which
// declares them, so capabilities/ must grant each by name) and by calls.rs (which answers them).
pub const COMMANDS: &[&str] = &[
    "get_status",
    "set_sharing",
    "snooze",
    "resume",
    "get_earnings",
    "get_payouts",
    "save_csv",
    "get_hardware",
    "run_benchmark",
    "set_gpu_shared",
    "get_pools",
    "join_pool",
    "leave_pool",
    "block_pool",
    "start_local_pool",
    "get_settings",
    "set_settings",
    "open_logs_folder",
];

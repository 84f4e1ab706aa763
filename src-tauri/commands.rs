// Every command of docs/desktop-ipc.md: its name as the window invokes it, its variant of `Command`
// and its arguments. This table is the one source: build.rs includes it for the names alone (it
// declares them, so capabilities/ must grant each by name; the types are never resolved there), and
// calls.rs includes it for the typed `Command` the app answers. Each includer defines `commands!`.
commands! {
    "get_status" => GetStatus {},
    "set_sharing" => SetSharing { on: bool },
    "snooze" => Snooze { minutes: u64 },
    "resume" => Resume {},
    "get_earnings" => GetEarnings { range: Range },
    "get_payouts" => GetPayouts {},
    "save_csv" => SaveCsv { name: String, contents: String },
    "get_hardware" => GetHardware {},
    "run_benchmark" => RunBenchmark { adapter: String },
    "set_gpu_shared" => SetGpuShared { adapter: String, shared: bool },
    "get_pools" => GetPools {},
    "join_pool" => JoinPool { ticket: String, name: Option<String> },
    "leave_pool" => LeavePool { id: String },
    "block_pool" => BlockPool { id: String },
    "start_local_pool" => StartLocalPool {},
    "get_settings" => GetSettings {},
    "set_settings" => SetSettings { settings: Box<Settings> },
    "open_logs_folder" => OpenLogsFolder {},
    "open_explorer" => OpenExplorer { id: String },
}

//! Processes: CPU used by others, which processes are ours, and the person's exclusive programs.
//!
//! Linux reads /proc itself ([`super::procfs`]): the whole machine's CPU time from one file and only
//! our own processes' times, where sysinfo would read every process's every second. Other platforms,
//! and a Linux whose /proc cannot be read, go through sysinfo.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::os_readings::Reading;
use sysinfo::{
    MINIMUM_CPU_UPDATE_INTERVAL, Pid, Process, ProcessRefreshKind, ProcessStatus,
    ProcessesToUpdate, System, UpdateKind,
};

#[cfg(target_os = "linux")]
use super::procfs::ProcTable;

// One per `HostSignals`, made once and never moved about: boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum Processes {
    #[cfg(target_os = "linux")]
    Proc(ProcTable),
    Sysinfo(SysinfoProcesses),
}

impl Processes {
    pub(super) fn new() -> Processes {
        #[cfg(target_os = "linux")]
        match ProcTable::open() {
            Ok(table) => return Processes::Proc(table),
            Err(error) => tracing::warn!(%error, "reading processes through sysinfo instead"),
        }
        Processes::Sysinfo(SysinfoProcesses::new())
    }

    /// Reads CPU use and what is needed of the processes (each one's executable too when `with_exe`).
    pub(super) fn refresh(&mut self, with_exe: bool) {
        match self {
            #[cfg(target_os = "linux")]
            Processes::Proc(table) => table.refresh(with_exe),
            Processes::Sysinfo(processes) => processes.refresh(with_exe),
        }
    }

    /// Share of the whole CPU (all cores; 0–100) used by others since the refresh before the last.
    pub(super) fn other_cpu_percent(&self) -> Option<f32> {
        match self {
            #[cfg(target_os = "linux")]
            Processes::Proc(table) => table.other_cpu_percent(),
            Processes::Sysinfo(processes) => processes.other_cpu_percent,
        }
    }

    /// This process and its descendants at the last refresh.
    pub(super) fn ours(&self) -> &HashSet<u32> {
        match self {
            #[cfg(target_os = "linux")]
            Processes::Proc(table) => table.ours(),
            Processes::Sysinfo(processes) => &processes.ours_pids,
        }
    }

    /// The names from `wanted` that match a running process, as the person wrote them, in order.
    pub(super) fn running(&self, wanted: &[String]) -> Vec<String> {
        match self {
            #[cfg(target_os = "linux")]
            Processes::Proc(table) => table.running(wanted),
            Processes::Sysinfo(processes) => processes.running(wanted),
        }
    }
}

/// Threads are left out: their time is already in their process's. Executables are read only when
/// some program is to be recognised by one: reading them costs a `readlink` per process per refresh
/// (retried every time for the processes we may not look into).
fn process_refresh_kind(with_exe: bool) -> ProcessRefreshKind {
    let exe = if with_exe {
        UpdateKind::OnlyIfNotSet
    } else {
        UpdateKind::Never
    };
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_exe(exe)
        .without_tasks()
}

/// Through sysinfo, which refreshes every process's CPU time each time.
pub(super) struct SysinfoProcesses {
    /// None where sysinfo cannot read this platform at all.
    system: Option<System>,
    own_pid: Pid,
    /// This process and its descendants at the last refresh, with the CPU time (ms) each had used.
    ours: HashMap<Pid, u64>,
    ours_pids: HashSet<u32>,
    last_refresh: Option<Instant>,
    other_cpu_percent: Option<f32>,
}

impl SysinfoProcesses {
    pub(super) fn new() -> SysinfoProcesses {
        let system = System::new()
            .inspect_err(|error| tracing::warn!(%error, "cannot read processes or CPU use here"))
            .ok();
        SysinfoProcesses {
            system,
            own_pid: Pid::from_u32(std::process::id()),
            ours: HashMap::new(),
            ours_pids: HashSet::new(),
            last_refresh: None,
            other_cpu_percent: None,
        }
    }

    /// Our CPU use is measured from each process's accumulated CPU time rather than sysinfo's
    /// per-process percentage, which reads 0 for a process's first two refreshes: a worker that just
    /// started would otherwise count as someone else's load.
    pub(super) fn refresh(&mut self, with_exe: bool) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        let now = Instant::now();
        let interval = self.last_refresh.map(|last| now.duration_since(last));
        // sysinfo skips CPU refreshes closer than this; the last reading stands meanwhile.
        if interval.is_some_and(|interval| interval < MINIMUM_CPU_UPDATE_INTERVAL) {
            return;
        }
        // Where CPU use cannot be read (see os_readings), others' load stays unknown.
        let cpu_use = crate::os_readings::check(Reading::CpuUse).is_ok();
        if cpu_use {
            system.refresh_cpu_usage();
        }
        system.refresh_processes_specifics(
            ProcessesToUpdate::All,
            true,
            process_refresh_kind(with_exe),
        );
        let ours = cpu_times(system, &process_tree(self.own_pid, system));
        self.other_cpu_percent = interval.filter(|_| cpu_use).map(|interval| {
            let own_ms = cpu_time_spent(&self.ours, &ours);
            other_share(
                system.global_cpu_usage(),
                own_ms,
                interval,
                system.cpus().len(),
            )
        });
        self.ours_pids = ours.keys().map(|pid| pid.as_u32()).collect();
        self.ours = ours;
        self.last_refresh = Some(now);
    }

    pub(super) fn running(&self, wanted: &[String]) -> Vec<String> {
        let Some(system) = &self.system else {
            return Vec::new();
        };
        if wanted.is_empty() {
            return Vec::new();
        }
        let running: HashSet<String> = system
            .processes()
            .values()
            .filter(|process| is_alive(process.status()))
            .flat_map(process_keys)
            .collect();
        wanted
            .iter()
            .filter(|name| {
                let key = program_key(name);
                !key.is_empty() && running.contains(&key)
            })
            .cloned()
            .collect()
    }
}

/// A zombie has exited; only its parent has not collected it yet.
fn is_alive(status: ProcessStatus) -> bool {
    !matches!(status, ProcessStatus::Zombie | ProcessStatus::Dead)
}

/// `root` and all its descendants among the processes `system` lists.
fn process_tree(root: Pid, system: &System) -> HashSet<Pid> {
    let parents = system
        .processes()
        .iter()
        .map(|(pid, process)| (pid.as_u32(), process.parent().map(|p| p.as_u32())));
    descendants(root.as_u32(), parents)
        .into_iter()
        .map(Pid::from_u32)
        .collect()
}

/// `root` and every process whose chain of parents leads to it, from (pid, parent) pairs.
pub(super) fn descendants(
    root: u32,
    parents: impl IntoIterator<Item = (u32, Option<u32>)>,
) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, parent) in parents {
        // A pid listed as its own parent (pid 0 on some platforms) would loop.
        if let Some(parent) = parent.filter(|&parent| parent != pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut tree = HashSet::from([root]);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            if tree.insert(child) {
                todo.push(child);
            }
        }
    }
    tree
}

/// The accumulated CPU time (ms) of each of `pids` that is still listed.
fn cpu_times(system: &System, pids: &HashSet<Pid>) -> HashMap<Pid, u64> {
    pids.iter()
        .filter_map(|&pid| Some((pid, system.process(pid)?.accumulated_cpu_time())))
        .collect()
}

/// CPU time (ms) our processes spent between two refreshes. A process not seen before started since,
/// so all its time is new; one whose time went down is a reused pid, likewise new.
pub(super) fn cpu_time_spent<K: Eq + Hash>(before: &HashMap<K, u64>, now: &HashMap<K, u64>) -> u64 {
    now.iter()
        .map(|(pid, &ms)| match before.get(pid) {
            Some(&old) if old <= ms => ms - old,
            _ => ms,
        })
        .sum()
}

/// Share of the whole CPU (0–100) used by others: all use minus ours, over `interval` on `cores`.
fn other_share(global_percent: f32, own_cpu_ms: u64, interval: Duration, cores: usize) -> f32 {
    let capacity_ms = interval.as_secs_f32() * 1000.0 * cores.max(1) as f32;
    let own_percent = own_cpu_ms as f32 / capacity_ms * 100.0;
    (global_percent - own_percent).clamp(0.0, 100.0)
}

/// The keys a process can be known by: its name and its executable's file name.
fn process_keys(process: &Process) -> impl Iterator<Item = String> {
    let name = program_key(&process.name().to_string_lossy());
    let exe = process
        .exe()
        .and_then(Path::file_name)
        .map(|file| program_key(&file.to_string_lossy()));
    std::iter::once(name).chain(exe)
}

/// How a program name compares: trimmed, lower case, without ".exe" ("Blender.exe" = "blender").
pub(super) fn program_key(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    match lower.strip_suffix(".exe") {
        Some(stem) => stem.to_owned(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_the_parent_chain() {
        let parents = [
            (1, None),
            (10, Some(1)),
            (20, Some(10)), // child
            (30, Some(20)), // grandchild
            (31, Some(20)),
            (40, Some(1)), // a stranger
            (0, Some(0)),  // its own parent
        ];
        let tree = descendants(10, parents);
        assert_eq!(tree, HashSet::from([10, 20, 30, 31]));
        assert_eq!(descendants(99, parents), HashSet::from([99]));
    }

    #[test]
    fn cpu_time_counts_new_processes_whole() {
        let pid = Pid::from_u32;
        let before = HashMap::from([(pid(1), 1_000), (pid(2), 500), (pid(3), 900)]);
        // 1 spent 200 ms; 2 exited; 3 is a reused pid (time went down); 4 started.
        let now = HashMap::from([(pid(1), 1_200), (pid(3), 40), (pid(4), 70)]);
        assert_eq!(cpu_time_spent(&before, &now), 200 + 40 + 70);
    }

    #[test]
    fn other_share_takes_ours_out_of_the_whole() {
        let second = Duration::from_secs(1);
        // 2 cores for 1 s = 2000 ms; ours used 500 ms = 25 % of the machine.
        assert_eq!(other_share(60.0, 500, second, 2), 35.0);
        assert_eq!(other_share(20.0, 1_000, second, 2), 0.0);
        assert_eq!(other_share(100.0, 0, second, 2), 100.0);
        assert_eq!(other_share(50.0, 0, second, 0), 50.0);
    }

    /// The fallback for other platforms, kept working on Linux too.
    #[test]
    fn sysinfo_reads_this_machine() {
        let mut processes = SysinfoProcesses::new();
        processes.refresh(false);
        assert!(processes.ours_pids.contains(&std::process::id()));
        assert_eq!(processes.other_cpu_percent, None);
        std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL + Duration::from_millis(50));
        processes.refresh(false);
        if let Err(unreadable) = crate::os_readings::check(Reading::CpuUse) {
            // Under Wine: others' load is unknown rather than the process aborted.
            assert_eq!(processes.other_cpu_percent, None, "{unreadable:?}");
        } else {
            let other = processes
                .other_cpu_percent
                .expect("an interval was measured");
            assert!((0.0..=100.0).contains(&other), "{other}");
        }
        assert!(
            processes
                .running(&["surely-not-running-xyz".into()])
                .is_empty()
        );
    }

    #[test]
    fn program_names_compare_loosely() {
        assert_eq!(program_key("Blender"), "blender");
        assert_eq!(program_key("blender.exe"), "blender");
        assert_eq!(program_key(" Steam.EXE "), "steam");
        assert_eq!(program_key("exe"), "exe");
        assert_eq!(program_key("  "), "");
    }
}

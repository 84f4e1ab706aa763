//! Linux: CPU used by others and the programs running, from /proc, without reading every process
//! every second.
//!
//! The machine's busy time comes from the first line of `/proc/stat`; ours is the `utime + stime` of
//! this process and its descendants from their `/proc/<pid>/stat`, in the same clock ticks, so other
//! programs' share is the difference and no other process's CPU time is read.
//!
//! Descendants are found by parent pid, read once when a pid first shows up: among the members of our
//! own cgroup (v2), where our children start, or in the listing of /proc where that cannot be read or
//! every process is wanted (exclusive programs). New pids are looked for only when `/proc/stat`'s
//! count of forks has moved since the last look. A stranger never becomes ours (Idlegrid is no
//! subreaper, so orphans go elsewhere), and our own processes are read again at every refresh for
//! their CPU time, which also notices one re-parented away. Names are read with the parent, and
//! executables only once some program is to be recognised, once per process: like sysinfo, a process
//! that `exec`s keeps the name it was first seen with.
//!
//! Listing /proc costs in proportion to every task on the machine, threads included (the kernel walks
//! them all to find the processes): about 0.2 ms with 130 tasks, most of a sample, on the machine
//! these numbers come from. `/proc/<pid>/task/<tid>/children` would name children directly, but it
//! needs CONFIG_PROC_CHILDREN (that machine's kernel lacks it) and a read per thread of each of our
//! processes. Known gap: a child moved out of our cgroup before it was first seen (`systemd-run
//! --scope` does that) is not found.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::processes::{cpu_time_spent, descendants, program_key};

/// Readings closer together than this are skipped and the last figure stands: over a few clock
/// ticks the busy share is mostly rounding. The same as sysinfo's minimum, so both behave alike.
const MINIMUM_INTERVAL: Duration = Duration::from_millis(200);

/// The whole machine's CPU time since boot, in clock ticks summed over all cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct MachineTicks {
    /// Running anything: user, nice, system, irq, softirq and steal (guest time is already in user and
    /// nice).
    pub(super) busy: u64,
    /// Busy plus idle and iowait.
    pub(super) total: u64,
}

/// The first line of `/proc/stat`: "cpu  user nice system idle iowait irq softirq steal guest
/// guest_nice". Kernels before 2.6.11 end after idle; a field they lack counts as 0.
pub(super) fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().next()?;
    let mut fields = line.split_ascii_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let values: Vec<u64> = fields
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    let at = |i: usize| values.get(i).copied().unwrap_or(0);
    if values.len() < 4 {
        return None;
    }
    let idle = at(3).saturating_add(at(4));
    let busy = [0, 1, 2, 5, 6, 7]
        .into_iter()
        .fold(0u64, |sum, i| sum.saturating_add(at(i)));
    Some(MachineTicks {
        busy,
        total: busy.saturating_add(idle),
    })
}

/// Share of the whole CPU (0–100) others used between two readings: all busy time minus ours, over
/// all the time every core had. None when no time passed (or the counters went back).
pub(super) fn other_share_ticks(
    before: MachineTicks,
    now: MachineTicks,
    own_ticks: u64,
) -> Option<f32> {
    let total = now.total.checked_sub(before.total).filter(|&t| t > 0)?;
    let busy = now.busy.saturating_sub(before.busy);
    // Per-process times are measured precisely and the machine's by tick, so ours can come out a
    // tick or two above the machine's whole busy time.
    let others = busy.saturating_sub(own_ticks);
    Some((others as f32 / total as f32 * 100.0).clamp(0.0, 100.0))
}

/// What the monitor needs of one `/proc/<pid>/stat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct ProcStat {
    /// The kernel's name for it (`comm`, at most 15 bytes).
    pub(super) name: String,
    pub(super) ppid: u32,
    /// user + system time, in clock ticks.
    pub(super) cpu_ticks: u64,
    /// Since boot, in clock ticks: with the pid, it names one process even after the pid is reused.
    pub(super) start_ticks: u64,
    /// Exited but not yet collected by its parent.
    pub(super) zombie: bool,
}

/// "pid (comm) state ppid …": the name may hold spaces and parentheses, so it runs to the last ')'.
pub(super) fn parse_proc_stat(stat: &str) -> Option<ProcStat> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    // After the name: state, ppid, then utime and stime at 11 and 12, starttime at 19.
    let fields: Vec<&str> = stat
        .get(close + 1..)?
        .split_ascii_whitespace()
        .take(20)
        .collect();
    let number = |i: usize| fields.get(i)?.parse::<u64>().ok();
    let state = fields.first()?;
    Some(ProcStat {
        name,
        zombie: matches!(*state, "Z" | "X" | "x"),
        ppid: fields.get(1)?.parse().ok()?,
        cpu_ticks: number(11)?.saturating_add(number(12)?),
        start_ticks: number(19)?,
    })
}

/// A process as far as it has been read.
struct Entry {
    stat: ProcStat,
    /// The name as [`program_key`] compares it.
    name_key: String,
    /// The refresh that last read its stat.
    read_at: u64,
    /// The refresh whose listing last showed it.
    listed_at: u64,
    exe: Exe,
}

impl Entry {
    fn new(stat: ProcStat, generation: u64) -> Entry {
        Entry {
            name_key: program_key(&stat.name),
            stat,
            read_at: generation,
            listed_at: generation,
            exe: Exe::NotRead,
        }
    }
}

enum Exe {
    NotRead,
    /// The executable's file name as [`program_key`] compares it.
    Key(String),
    /// Another user's process, a kernel thread, or gone: asking again would fail again.
    Unreadable,
}

/// The processes under a /proc, with ours told apart and other programs' CPU share.
pub(super) struct ProcTable {
    root: PathBuf,
    own_pid: u32,
    /// `cgroup.procs` of our own cgroup: our children start there, and it is far shorter than the
    /// listing of /proc. None where it cannot be found; then /proc is listed.
    members: Option<PathBuf>,
    processes: HashMap<u32, Entry>,
    /// Whether `processes` holds every process (the last look was at all of /proc), not only the
    /// members of our cgroup.
    complete: bool,
    /// The machine's count of forks when new processes were last looked for: while it stands still,
    /// nothing new can have started.
    forks_looked_at: Option<u64>,
    /// Counts refreshes; entries remember which one read or listed them.
    generation: u64,
    /// This process and its descendants at the last refresh, with the CPU ticks each had used.
    ours: HashMap<u32, u64>,
    ours_pids: HashSet<u32>,
    machine: Option<MachineTicks>,
    last_refresh: Option<Instant>,
    other_cpu_percent: Option<f32>,
    /// Kept between reads: a fresh `String` would be grown a few bytes at a time.
    buffer: String,
}

impl ProcTable {
    /// The real /proc, where its `stat` can be read.
    pub(super) fn open() -> Result<ProcTable, String> {
        let root = Path::new("/proc");
        let members = own_cgroup_procs(root);
        tracing::debug!(cgroup = ?members, "new processes of ours are looked for in this cgroup (None: all of /proc)");
        ProcTable::at(root, std::process::id(), members)
    }

    /// A /proc at `root`, seen from process `own_pid` in the cgroup whose `cgroup.procs` is
    /// `members`.
    pub(super) fn at(
        root: &Path,
        own_pid: u32,
        members: Option<PathBuf>,
    ) -> Result<ProcTable, String> {
        let mut table = ProcTable {
            root: root.to_owned(),
            own_pid,
            members,
            processes: HashMap::new(),
            complete: false,
            forks_looked_at: None,
            generation: 0,
            ours: HashMap::new(),
            ours_pids: HashSet::new(),
            machine: None,
            last_refresh: None,
            other_cpu_percent: None,
            buffer: String::with_capacity(4096),
        };
        table
            .read_machine()
            .0
            .ok_or_else(|| format!("cannot read CPU time from {}", root.join("stat").display()))?;
        Ok(table)
    }

    pub(super) fn other_cpu_percent(&self) -> Option<f32> {
        self.other_cpu_percent
    }

    pub(super) fn ours(&self) -> &HashSet<u32> {
        &self.ours_pids
    }

    /// Measures other programs' CPU share since the last refresh, reading our processes and any new
    /// ones. With `all_processes` every process is known afterwards, with its executable.
    pub(super) fn refresh(&mut self, all_processes: bool) {
        let now = Instant::now();
        if self
            .last_refresh
            .is_some_and(|last| now.duration_since(last) < MINIMUM_INTERVAL)
        {
            return;
        }
        self.generation += 1;
        let (machine, forks) = self.read_machine();
        let forked = forks.is_none() || forks != self.forks_looked_at;
        let looked = if all_processes && (forked || !self.complete) {
            self.discover(true)
        } else if forked {
            self.discover(false)
        } else {
            true
        };
        if looked {
            self.forks_looked_at = forks;
        }
        self.reread_ours();
        let candidates = self
            .processes
            .iter()
            .filter(|(_, entry)| entry.read_at == self.generation)
            .map(|(&pid, entry)| (pid, Some(entry.stat.ppid)));
        // Only processes read in this refresh can be ours: new ones, and those that were ours.
        let tree = descendants(self.own_pid, candidates);
        let ours: HashMap<u32, u64> = tree
            .iter()
            .filter_map(|pid| Some((*pid, self.processes.get(pid)?.stat.cpu_ticks)))
            .collect();
        self.other_cpu_percent = match (self.machine, machine, self.last_refresh) {
            (Some(before), Some(now), Some(_)) => {
                other_share_ticks(before, now, cpu_time_spent(&self.ours, &ours))
            }
            _ => None,
        };
        self.ours_pids = ours.keys().copied().collect();
        self.ours = ours;
        self.machine = machine;
        self.last_refresh = Some(now);
        if all_processes {
            self.read_exes();
        }
    }

    /// Looks for new processes among all of /proc (`everything`) or our cgroup's members: reads each
    /// one not known, and forgets those no longer there. False when nothing could be listed.
    fn discover(&mut self, everything: bool) -> bool {
        let from_members = !everything && self.members.is_some();
        let listed = if from_members {
            self.list_members()
        } else {
            self.list_proc()
        };
        let Some(pids) = listed else {
            return false;
        };
        for pid in pids {
            match self.processes.get_mut(&pid) {
                Some(known) => known.listed_at = self.generation,
                None => {
                    if let Some(stat) = self.read_stat(pid) {
                        self.processes
                            .insert(pid, Entry::new(stat, self.generation));
                    }
                }
            }
        }
        let generation = self.generation;
        self.processes
            .retain(|_, entry| entry.listed_at == generation);
        self.complete = !from_members;
        true
    }

    fn list_proc(&self) -> Option<Vec<u32>> {
        let dir = std::fs::read_dir(&self.root)
            .inspect_err(|error| tracing::debug!(%error, "cannot list processes"))
            .ok()?;
        Some(
            dir.flatten()
                .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
                .collect(),
        )
    }

    /// Our cgroup's members; where they cannot be read, /proc is listed from then on.
    fn list_members(&mut self) -> Option<Vec<u32>> {
        let path = self.members.as_ref()?;
        match read_to(path, &mut self.buffer) {
            Ok(()) => Some(
                self.buffer
                    .lines()
                    .filter_map(|line| line.trim().parse().ok())
                    .collect(),
            ),
            Err(error) => {
                tracing::debug!(%error, path = %path.display(), "listing all processes instead");
                self.members = None;
                self.list_proc()
            }
        }
    }

    /// Reads our processes again: their CPU time, and their parent in case theirs died. A pid now
    /// naming a different process starts over as new.
    fn reread_ours(&mut self) {
        let pids: Vec<u32> = self.ours.keys().copied().chain([self.own_pid]).collect();
        for pid in pids {
            if self
                .processes
                .get(&pid)
                .is_some_and(|entry| entry.read_at == self.generation)
            {
                continue;
            }
            let Some(stat) = self.read_stat(pid) else {
                self.processes.remove(&pid);
                continue;
            };
            let generation = self.generation;
            match self.processes.get_mut(&pid) {
                Some(entry) if entry.stat.start_ticks == stat.start_ticks => {
                    entry.stat = stat;
                    entry.read_at = generation;
                    entry.listed_at = generation;
                }
                _ => {
                    self.processes.insert(pid, Entry::new(stat, generation));
                }
            }
        }
    }

    fn read_exes(&mut self) {
        for (pid, entry) in &mut self.processes {
            if matches!(entry.exe, Exe::NotRead) {
                let link = std::fs::read_link(self.root.join(pid.to_string()).join("exe"));
                entry.exe = match link {
                    Ok(path) => exe_key(&path).map_or(Exe::Unreadable, Exe::Key),
                    Err(_) => Exe::Unreadable,
                };
            }
        }
    }

    fn read_stat(&mut self, pid: u32) -> Option<ProcStat> {
        let path = self.root.join(pid.to_string()).join("stat");
        read_to(&path, &mut self.buffer).ok()?;
        parse_proc_stat(&self.buffer)
    }

    /// The machine's CPU time and its count of forks since boot.
    fn read_machine(&mut self) -> (Option<MachineTicks>, Option<u64>) {
        if read_to(&self.root.join("stat"), &mut self.buffer).is_err() {
            return (None, None);
        }
        (parse_machine_ticks(&self.buffer), parse_forks(&self.buffer))
    }

    /// The names from `wanted` that match a running process, as the person wrote them, in order. A
    /// match is read again to be sure it has not exited meanwhile.
    pub(super) fn running(&self, wanted: &[String]) -> Vec<String> {
        if wanted.is_empty() {
            return Vec::new();
        }
        let keys: HashSet<String> = wanted
            .iter()
            .map(|name| program_key(name))
            .filter(|key| !key.is_empty())
            .collect();
        let mut found: HashSet<&str> = HashSet::new();
        for (&pid, entry) in &self.processes {
            let exe = match &entry.exe {
                Exe::Key(key) => keys.get(key.as_str()),
                Exe::NotRead | Exe::Unreadable => None,
            };
            let hits = [keys.get(entry.name_key.as_str()), exe];
            if hits
                .iter()
                .flatten()
                .all(|key| found.contains(key.as_str()))
            {
                continue;
            }
            let path = self.root.join(pid.to_string()).join("stat");
            let now = std::fs::read_to_string(path).ok();
            let alive = now
                .as_deref()
                .and_then(parse_proc_stat)
                .is_some_and(|now| now.start_ticks == entry.stat.start_ticks && !now.zombie);
            if alive {
                found.extend(hits.into_iter().flatten().map(String::as_str));
            }
        }
        wanted
            .iter()
            .filter(|name| found.contains(program_key(name).as_str()))
            .cloned()
            .collect()
    }
}

/// The file name of an executable as [`program_key`] compares it; a binary replaced while it runs
/// reads "name (deleted)".
fn exe_key(path: &Path) -> Option<String> {
    let file = path.file_name()?.to_string_lossy();
    let file = file.strip_suffix(" (deleted)").unwrap_or(&file);
    Some(program_key(file)).filter(|key| !key.is_empty())
}

/// Reads a small file whole into `buffer`. `File::read_to_string` would first ask the size, which
/// /proc and sysfs give as 0, and then grow the string a few bytes per `read`.
fn read_to(path: &Path, buffer: &mut String) -> std::io::Result<()> {
    buffer.clear();
    buffer.reserve(4096);
    std::fs::File::open(path)?
        .take(u64::MAX)
        .read_to_string(buffer)?;
    Ok(())
}

/// The "processes" line of `/proc/stat`: forks (threads included) since boot.
pub(super) fn parse_forks(stat: &str) -> Option<u64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("processes "))?
        .trim()
        .parse()
        .ok()
}

/// `cgroup.procs` of the cgroup (v2) this process is in, found through `proc`'s `self/cgroup` and
/// `self/mountinfo`; None on cgroup v1 only, or where those cannot be read.
fn own_cgroup_procs(proc: &Path) -> Option<PathBuf> {
    let cgroup = std::fs::read_to_string(proc.join("self/cgroup")).ok()?;
    let mountinfo = std::fs::read_to_string(proc.join("self/mountinfo")).ok()?;
    let dir = cgroup_dir(cgroup2_path(&cgroup)?, cgroup2_mount(&mountinfo)?)?;
    let procs = dir.join("cgroup.procs");
    procs.is_file().then_some(procs)
}

/// The unified hierarchy's line of `/proc/self/cgroup`: "0::/user.slice/…/app-foo.scope".
pub(super) fn cgroup2_path(cgroup: &str) -> Option<&str> {
    cgroup.lines().find_map(|line| line.strip_prefix("0::"))
}

/// (root within the hierarchy, mount point) of the cgroup2 mount in `/proc/self/mountinfo`.
pub(super) fn cgroup2_mount(mountinfo: &str) -> Option<(&str, &str)> {
    mountinfo.lines().find_map(|line| {
        let (mount, filesystem) = line.split_once(" - ")?;
        if filesystem.split_whitespace().next()? != "cgroup2" {
            return None;
        }
        let mut fields = mount.split_whitespace().skip(3);
        Some((fields.next()?, fields.next()?))
    })
}

/// The directory of cgroup `path` under a cgroup2 mount. Mount points with escaped characters
/// ("\040" for a space) are left alone rather than unescaped.
pub(super) fn cgroup_dir(path: &str, (mount_root, mount_point): (&str, &str)) -> Option<PathBuf> {
    if mount_point.contains('\\') || path.contains('\\') {
        return None;
    }
    let relative = if mount_root == "/" {
        path
    } else {
        path.strip_prefix(mount_root)?
    };
    Some(Path::new(mount_point).join(relative.trim_start_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2-core machine's /proc/stat, as Linux 6.x writes it (trimmed after the cpu lines).
    const STAT: &str = "cpu  2389297 458412 430835 4348106 40708 0 5247 2422 0 0
cpu0 1157105 189958 202546 2269384 9669 0 1189 1218 0 0
cpu1 1232192 268453 228288 2078722 31039 0 4058 1204 0 0
intr 24347313 0 0 0 0 0 0 0
ctxt 45544531
btime 1732500000
processes 250000
procs_running 2
procs_blocked 0
softirq 1 2 3
";

    /// "pid (name) state ppid …" with utime, stime and starttime set; the rest as a real file has them.
    fn stat_line(pid: u32, name: &str, state: &str, ppid: u32, utime: u64, stime: u64) -> String {
        format!(
            "{pid} ({name}) {state} {ppid} {pid} {pid} 0 -1 4194304 98 0 0 0 {utime} {stime} 0 0 20 0 1 \
             0 {start} 3133440 382 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
            start = 1000 + pid
        )
    }

    #[test]
    fn machine_ticks_add_up_the_first_line() {
        let ticks = parse_machine_ticks(STAT).expect("a real /proc/stat");
        let busy = 2389297 + 458412 + 430835 + 5247 + 2422;
        assert_eq!(
            ticks,
            MachineTicks {
                busy,
                total: busy + 4348106 + 40708,
            }
        );
        // Guest time is already inside user and nice: counting it again would double it.
        let guest = parse_machine_ticks("cpu  100 0 0 900 0 0 0 0 60 0\n").expect("valid");
        assert_eq!(
            guest,
            MachineTicks {
                busy: 100,
                total: 1000
            }
        );
        // Linux before 2.6.11 wrote four fields.
        let old = parse_machine_ticks("cpu 10 20 30 40\n").expect("valid");
        assert_eq!(
            old,
            MachineTicks {
                busy: 60,
                total: 100
            }
        );
        assert_eq!(parse_machine_ticks(""), None);
        assert_eq!(parse_machine_ticks("cpu0 1 2 3 4 5\n"), None);
        assert_eq!(parse_machine_ticks("cpu 1 2 3\n"), None);
        assert_eq!(parse_machine_ticks("cpu 1 two 3 4\n"), None);
    }

    #[test]
    fn other_share_is_busy_time_less_ours_over_all_time() {
        let at = |busy, total| MachineTicks { busy, total };
        // 2 cores for 1 s at 100 ticks a second: 200 ticks; 90 busy, 40 of them ours.
        let before = at(1_000, 5_000);
        assert_eq!(other_share_ticks(before, at(1_090, 5_200), 40), Some(25.0));
        assert_eq!(other_share_ticks(before, at(1_200, 5_200), 0), Some(100.0));
        // Ours measured a little above the machine's whole busy time: nobody else.
        assert_eq!(other_share_ticks(before, at(1_050, 5_200), 52), Some(0.0));
        // No time passed, or the counters went back (a CPU taken offline).
        assert_eq!(other_share_ticks(before, before, 0), None);
        assert_eq!(other_share_ticks(before, at(900, 4_000), 0), None);
    }

    #[test]
    fn a_process_stat_is_read_past_odd_names() {
        let stat = parse_proc_stat(&stat_line(42, "tmux: server", "S", 1, 7, 3)).expect("valid");
        assert_eq!(
            stat,
            ProcStat {
                name: "tmux: server".into(),
                ppid: 1,
                cpu_ticks: 10,
                start_ticks: 1042,
                zombie: false,
            }
        );
        let odd = parse_proc_stat(&stat_line(43, "a) (b", "Z", 42, 0, 0)).expect("valid");
        assert_eq!(
            (odd.name.as_str(), odd.ppid, odd.zombie),
            ("a) (b", 42, true)
        );
        // The real file of process 1 on the machine these tests were written on.
        let init = "1 (process_api) S 0 0 0 0 -1 4194560 209399 1098101023 0 407405 1668 8272 \
                    2795592 401566 10 -10 13 0 22 40456192 2500 18446744073709551615 1 1 0 0 0 0 0 \
                    4096 1256 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0";
        let init = parse_proc_stat(init).expect("valid");
        assert_eq!(
            (init.ppid, init.cpu_ticks, init.start_ticks),
            (0, 1668 + 8272, 22)
        );
        assert_eq!(parse_proc_stat("42 (cut short) S 1 2 3"), None);
        assert_eq!(parse_proc_stat("no name here"), None);
    }

    /// A /proc in a temporary directory that a test rewrites between refreshes.
    struct FakeProc {
        dir: tempfile::TempDir,
    }

    impl FakeProc {
        fn new(machine: (u64, u64)) -> FakeProc {
            let fake = FakeProc {
                dir: tempfile::tempdir().expect("temp dir"),
            };
            fake.machine(machine);
            fake
        }

        /// Busy and idle ticks of the whole machine; no count of forks, so every refresh looks for
        /// new processes.
        fn machine(&self, (busy, idle): (u64, u64)) {
            let line = format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\nintr 0\n");
            std::fs::write(self.dir.path().join("stat"), line).expect("write stat");
        }

        fn machine_with_forks(&self, (busy, idle): (u64, u64), forks: u64) {
            let text = format!("cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\nintr 0\nprocesses {forks}\n");
            std::fs::write(self.dir.path().join("stat"), text).expect("write stat");
        }

        fn process(&self, pid: u32, name: &str, ppid: u32, cpu_ticks: u64) {
            self.process_in_state(pid, name, "S", ppid, cpu_ticks);
        }

        fn process_in_state(&self, pid: u32, name: &str, state: &str, ppid: u32, cpu_ticks: u64) {
            let dir = self.dir.path().join(pid.to_string());
            std::fs::create_dir_all(&dir).expect("create pid dir");
            let line = stat_line(pid, name, state, ppid, cpu_ticks, 0);
            std::fs::write(dir.join("stat"), line).expect("write pid stat");
        }

        fn exe(&self, pid: u32, target: &str) {
            let link = self.dir.path().join(pid.to_string()).join("exe");
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, link).expect("link exe");
        }

        fn exit(&self, pid: u32) {
            std::fs::remove_dir_all(self.dir.path().join(pid.to_string())).expect("remove pid");
        }

        /// A table seeing this /proc from process 10.
        fn table(&self) -> ProcTable {
            ProcTable::at(self.dir.path(), 10, None).expect("the fake stat reads")
        }
    }

    /// The next refresh measures instead of keeping the last figure.
    fn refresh_later(table: &mut ProcTable, with_exe: bool) {
        if let Some(last) = table.last_refresh.as_mut() {
            *last -= MINIMUM_INTERVAL;
        }
        table.refresh(with_exe);
    }

    fn sorted(set: &HashSet<u32>) -> Vec<u32> {
        let mut pids: Vec<u32> = set.iter().copied().collect();
        pids.sort_unstable();
        pids
    }

    #[test]
    fn ours_are_this_process_and_its_descendants_and_their_time_is_not_others() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.process(1, "init", 0, 500);
        proc.process(10, "idlegrid", 1, 100);
        proc.process(11, "idlegrid", 10, 50); // our worker
        proc.process(20, "firefox", 1, 300);
        let mut table = proc.table();
        table.refresh(false);
        assert_eq!(sorted(table.ours()), [10, 11]);
        assert_eq!(table.other_cpu_percent(), None, "no interval yet");

        // 200 ticks pass: 120 busy, of which ours 10 + 50, and a new grandchild 12 with 20.
        proc.machine((1_120, 9_080));
        proc.process(10, "idlegrid", 1, 110);
        proc.process(11, "idlegrid", 10, 100);
        proc.process(12, "shader-compiler", 11, 20);
        proc.process(21, "cc", 20, 40); // someone else's child
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10, 11, 12]);
        assert_eq!(table.other_cpu_percent(), Some(20.0), "(120 - 80) / 200");

        // The worker exits; its child, re-parented to init, is no longer ours.
        proc.machine((1_140, 9_260));
        proc.exit(11);
        proc.process(12, "shader-compiler", 1, 25);
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10]);
        assert_eq!(table.other_cpu_percent(), Some(10.0), "(20 - 0) / 200");
    }

    #[test]
    fn new_processes_are_looked_for_only_after_a_fork() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.machine_with_forks((1_000, 9_000), 500);
        proc.process(10, "idlegrid", 1, 0);
        let mut table = proc.table();
        table.refresh(false);
        // A child shows up without the count of forks moving: impossible on a real machine, and
        // proof that /proc was not listed.
        proc.process(11, "worker", 10, 0);
        proc.machine_with_forks((1_100, 9_100), 500);
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10]);
        proc.machine_with_forks((1_200, 9_200), 501);
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10, 11]);
        // Without a cgroup all of /proc was listed, so every process is known.
        assert!(table.complete);
        proc.process(30, "blender", 1, 0);
        proc.machine_with_forks((1_300, 9_300), 502);
        refresh_later(&mut table, true);
        assert_eq!(table.running(&["blender".into()]), ["blender"]);
    }

    #[test]
    fn our_cgroup_is_where_our_children_are_looked_for() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.process(10, "idlegrid", 1, 0);
        proc.process(11, "worker", 10, 0);
        proc.process(20, "firefox", 1, 0);
        let members = proc.dir.path().join("cgroup.procs");
        std::fs::write(&members, "10\n11\n").expect("write members");
        let mut table = ProcTable::at(proc.dir.path(), 10, Some(members.clone())).expect("reads");
        table.refresh(false);
        assert_eq!(sorted(table.ours()), [10, 11]);
        assert!(
            !table.processes.contains_key(&20),
            "outside our cgroup: never read"
        );
        assert!(!table.complete);
        // Exclusive programs need everyone.
        refresh_later(&mut table, true);
        assert!(table.processes.contains_key(&20));
        // Members that cannot be read: all of /proc from then on.
        std::fs::remove_file(&members).expect("remove members");
        proc.process(12, "worker", 10, 0);
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10, 11, 12]);
        assert_eq!(table.members, None);
    }

    #[test]
    fn forks_and_cgroups_are_read_from_real_shaped_text() {
        assert_eq!(parse_forks(STAT), Some(250_000));
        assert_eq!(parse_forks("cpu  1 2 3 4\n"), None);
        let cgroup = "12:pids:/user.slice/user-1000.slice/user@1000.service\n\
                      1:name=systemd:/user.slice\n\
                      0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-idlegrid.scope\n";
        let path = cgroup2_path(cgroup).expect("a unified line");
        assert_eq!(
            path,
            "/user.slice/user-1000.slice/user@1000.service/app.slice/app-idlegrid.scope"
        );
        assert_eq!(cgroup2_path("4:memory:/foo\n"), None);
        // A systemd machine (cgroup2 only), and a hybrid one like the one these tests were written on.
        let unified = "22 1 0:21 / /proc rw,nosuid - proc proc rw\n\
                       30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
                      35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                      41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        assert_eq!(cgroup2_mount(unified), Some(("/", "/sys/fs/cgroup")));
        assert_eq!(cgroup2_mount(hybrid), Some(("/", "/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_mount("22 1 0:21 / /proc rw - proc proc rw\n"), None);
        assert_eq!(
            cgroup_dir(path, ("/", "/sys/fs/cgroup")),
            Some(PathBuf::from(
                "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/app.slice/app-idlegrid.scope"
            ))
        );
        assert_eq!(
            cgroup_dir("/", ("/", "/sys/fs/cgroup/unified")),
            Some(PathBuf::from("/sys/fs/cgroup/unified"))
        );
        // A container sees its own part of the hierarchy mounted.
        assert_eq!(
            cgroup_dir("/docker/abc/app", ("/docker/abc", "/sys/fs/cgroup")),
            Some(PathBuf::from("/sys/fs/cgroup/app"))
        );
        assert_eq!(
            cgroup_dir("/elsewhere", ("/docker/abc", "/sys/fs/cgroup")),
            None
        );
        assert_eq!(cgroup_dir("/a", ("/", "/mnt/with\\040space")), None);
    }

    #[test]
    fn readings_closer_than_the_minimum_keep_the_last_figure() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.process(10, "idlegrid", 1, 0);
        let mut table = proc.table();
        table.refresh(false);
        proc.machine((1_100, 9_100));
        refresh_later(&mut table, false);
        assert_eq!(table.other_cpu_percent(), Some(50.0));
        proc.machine((1_100, 9_300));
        table.refresh(false);
        assert_eq!(table.other_cpu_percent(), Some(50.0));
    }

    #[test]
    fn a_reused_pid_is_a_new_process() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.process(10, "idlegrid", 1, 0);
        proc.process(11, "worker", 10, 500);
        let mut table = proc.table();
        table.refresh(false);
        // 11 exited and its pid went to a stranger between two refreshes: all its time is new, and
        // it is not ours.
        let mut line = stat_line(11, "game", "R", 1, 30, 0);
        line = line.replace(" 1011 ", " 5000 ");
        std::fs::write(proc.dir.path().join("11/stat"), line).expect("rewrite stat");
        proc.machine((1_100, 9_100));
        refresh_later(&mut table, false);
        assert_eq!(sorted(table.ours()), [10]);
        assert_eq!(table.other_cpu_percent(), Some(50.0));
    }

    #[test]
    fn exclusive_programs_match_name_or_executable_of_live_processes() {
        let proc = FakeProc::new((1_000, 9_000));
        proc.process(10, "idlegrid", 1, 0);
        proc.process(30, "Blender", 1, 0);
        proc.process(31, "wine64-preload", 1, 0);
        proc.exe(31, "/games/Witcher3.exe");
        proc.process(32, "sh", 1, 0);
        proc.exe(32, "/usr/bin/steam (deleted)");
        proc.process_in_state(33, "obs", "Z", 1, 0);
        let mut table = proc.table();
        let wanted: Vec<String> = ["steam", "OBS", "witcher3", "blender.exe", "", "gimp"]
            .map(String::from)
            .into();
        // Without executables only names match.
        table.refresh(false);
        assert_eq!(table.running(&wanted), ["blender.exe"]);
        refresh_later(&mut table, true);
        assert_eq!(table.running(&wanted), ["steam", "witcher3", "blender.exe"]);
        // Blender exits between the refresh and the question.
        proc.exit(30);
        assert_eq!(table.running(&wanted), ["steam", "witcher3"]);
        assert!(table.running(&[]).is_empty());
    }

    /// Spawns `sh -c script` and kills it when dropped.
    struct Child(std::process::Child);

    impl Drop for Child {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn on_this_machine_a_busy_child_is_ours_and_the_share_is_a_percentage() {
        let mut table = ProcTable::open().expect("/proc/stat reads on Linux");
        // Our cgroup where there is one; this process is in it.
        if let Some(members) = &table.members {
            let text = std::fs::read_to_string(members).expect("members read");
            let own = std::process::id().to_string();
            assert!(
                text.lines().any(|line| line == own),
                "{}",
                members.display()
            );
        }
        table.refresh(false);
        let child = Child(
            std::process::Command::new("sh")
                .args(["-c", "while :; do :; done"])
                .spawn()
                .expect("start sh"),
        );
        let pid = child.0.id();
        std::thread::sleep(Duration::from_millis(300));
        refresh_later(&mut table, false);
        assert!(table.ours().contains(&pid), "the child {pid}");
        assert!(table.ours().contains(&std::process::id()));
        assert!(!table.ours().contains(&1), "init is nobody's child");
        let (machine_before, ours_before) = (table.machine, table.ours.clone());
        std::thread::sleep(Duration::from_millis(1_000));
        refresh_later(&mut table, false);
        let other = table.other_cpu_percent().expect("an interval was measured");
        assert!((0.0..=100.0).contains(&other), "{other}");

        let (Some(before), Some(now)) = (machine_before, table.machine) else {
            panic!("the machine's ticks read");
        };
        let child_ticks = table.ours[&pid] - ours_before[&pid];
        let own_ticks = cpu_time_spent(&ours_before, &table.ours);
        let total = (now.total - before.total) as f32;
        // The loop got a fair share of a second on a core, and it counts against us: what is left
        // for others is at most what ours did not use.
        assert!(child_ticks > 0, "the child burned no CPU");
        assert!(own_ticks >= child_ticks);
        let own_percent = own_ticks as f32 / total * 100.0;
        assert!(
            other <= 100.0 - own_percent + 2.0,
            "other {other} % next to ours {own_percent} %"
        );
    }
}

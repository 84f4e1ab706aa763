//! Signals about the machine other than input: session lock, CPU used by other programs, battery,
//! programs that must run alone, and each GPU's use by others and temperature.
//!
//! [`HostSignals`] reads them; "ours" is this process and every process descended from it (the
//! `idlegrid worker` children), whose use never counts as another program's. Per platform:
//!
//! | signal | Linux | Windows | macOS |
//! |---|---|---|---|
//! | `other_cpu_percent`, `exclusive_running` | sysinfo | sysinfo | sysinfo |
//! | `on_battery` | `/sys/class/power_supply` | None | None |
//! | `session_locked` | logind's `LockedHint` (system D-Bus) | None | None |
//! | GPUs and their names | NVML, and sysinfo for the rest | the same | sysinfo |
//! | GPU `temperature_c` | NVML; else the GPU's hwmon | NVML; else None | None |
//! | GPU `other_use_percent` | NVML; else None | NVML; else None | None |
//!
//! The first sample has no interval to measure CPU over, so its `other_cpu_percent` is None, and
//! `session_locked` stays None until the background connection to logind is up (a few milliseconds).
//! Known gaps: CPU time of a child that exited between two samples is lost, so for that one sample it
//! counts as other; NVML in a container reports host pids, which never match ours.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use sysinfo::{
    MINIMUM_CPU_UPDATE_INTERVAL, Pid, Process, ProcessRefreshKind, ProcessStatus,
    ProcessesToUpdate, System, UpdateKind,
};

/// One reading of the machine. `None` means the platform would not say.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SystemSample {
    pub session_locked: Option<bool>,
    /// Share of the whole CPU (all cores; 0–100) used by programs other than Idlegrid.
    pub other_cpu_percent: Option<f32>,
    pub on_battery: Option<bool>,
    /// The person's exclusive programs that are running now, named as the person wrote them.
    pub exclusive_running: Vec<String>,
    pub gpus: Vec<GpuSignals>,
}

/// One GPU as the operating system sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuSignals {
    /// The name the driver reports; matched against wgpu's adapter name.
    pub name: String,
    /// Share of the GPU (0–100) used by programs other than Idlegrid.
    pub other_use_percent: Option<f32>,
    pub temperature_c: Option<f32>,
}

/// Reads [`SystemSample`]s; the real one is [`HostSignals`], tests drive their own.
pub trait SystemSignals: Send {
    /// Refreshes and reads the machine. `exclusive_programs` are the names to look for.
    fn sample(&mut self, exclusive_programs: &[String]) -> SystemSample;
}

/// The real [`SystemSignals`]: sysinfo for processes and CPU, sysfs for battery and GPU temperatures,
/// logind over D-Bus for the lock, NVML for NVIDIA GPUs. Each part that cannot be read says `None`.
pub struct HostSignals {
    processes: Processes,
    #[cfg(target_os = "linux")]
    logind: logind::Logind,
    gpus: Gpus,
}

impl HostSignals {
    /// Opens what can be opened once (NVML, the GPU list) and starts connecting to logind in the
    /// background; nothing here blocks for long.
    pub fn new() -> HostSignals {
        HostSignals {
            processes: Processes::new(),
            #[cfg(target_os = "linux")]
            logind: logind::Logind::new(),
            gpus: Gpus::new(),
        }
    }

    /// Whether `pid` was this process or one of its descendants at the last sample. Their CPU and GPU
    /// use is Idlegrid's own, never "other".
    pub fn is_ours(&self, pid: u32) -> bool {
        self.processes.ours.contains_key(&Pid::from_u32(pid))
    }

    fn session_locked(&mut self) -> Option<bool> {
        #[cfg(target_os = "linux")]
        return self.logind.locked();
        #[cfg(not(target_os = "linux"))]
        None
    }
}

impl Default for HostSignals {
    fn default() -> Self {
        HostSignals::new()
    }
}

impl SystemSignals for HostSignals {
    fn sample(&mut self, exclusive_programs: &[String]) -> SystemSample {
        self.processes.refresh();
        let ours: HashSet<u32> = self.processes.ours.keys().map(|pid| pid.as_u32()).collect();
        SystemSample {
            session_locked: self.session_locked(),
            other_cpu_percent: self.processes.other_cpu_percent,
            on_battery: on_battery(),
            exclusive_running: self.processes.running(exclusive_programs),
            gpus: self.gpus.read(&ours),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Processes: CPU used by others, and the person's exclusive programs.

/// Threads are left out: their time is already in their process's.
fn process_refresh_kind() -> ProcessRefreshKind {
    ProcessRefreshKind::nothing()
        .with_cpu()
        .with_exe(UpdateKind::OnlyIfNotSet)
        .without_tasks()
}

struct Processes {
    /// None where sysinfo cannot read this platform at all.
    system: Option<System>,
    own_pid: Pid,
    /// This process and its descendants at the last refresh, with the CPU time (ms) each had used.
    ours: HashMap<Pid, u64>,
    last_refresh: Option<Instant>,
    other_cpu_percent: Option<f32>,
}

impl Processes {
    fn new() -> Processes {
        let system = System::new()
            .inspect_err(|error| tracing::warn!(%error, "cannot read processes or CPU use here"))
            .ok();
        Processes {
            system,
            own_pid: Pid::from_u32(std::process::id()),
            ours: HashMap::new(),
            last_refresh: None,
            other_cpu_percent: None,
        }
    }

    /// Reads CPU use and the process list. Our CPU use is measured from each process's accumulated
    /// CPU time rather than sysinfo's per-process percentage, which reads 0 for a process's first two
    /// refreshes: a worker that just started would otherwise count as someone else's load.
    fn refresh(&mut self) {
        let Some(system) = self.system.as_mut() else {
            return;
        };
        let now = Instant::now();
        let interval = self.last_refresh.map(|last| now.duration_since(last));
        // sysinfo skips CPU refreshes closer than this; the last reading stands meanwhile.
        if interval.is_some_and(|interval| interval < MINIMUM_CPU_UPDATE_INTERVAL) {
            return;
        }
        system.refresh_cpu_usage();
        system.refresh_processes_specifics(ProcessesToUpdate::All, true, process_refresh_kind());
        let ours = cpu_times(system, &process_tree(self.own_pid, system));
        self.other_cpu_percent = interval.map(|interval| {
            let own_ms = cpu_time_spent(&self.ours, &ours);
            other_share(
                system.global_cpu_usage(),
                own_ms,
                interval,
                system.cpus().len(),
            )
        });
        self.ours = ours;
        self.last_refresh = Some(now);
    }

    /// The names from `wanted` that match a running process, as the person wrote them, in order.
    fn running(&self, wanted: &[String]) -> Vec<String> {
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
fn descendants(root: u32, parents: impl IntoIterator<Item = (u32, Option<u32>)>) -> HashSet<u32> {
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
fn cpu_time_spent(before: &HashMap<Pid, u64>, now: &HashMap<Pid, u64>) -> u64 {
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
fn program_key(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    match lower.strip_suffix(".exe") {
        Some(stem) => stem.to_owned(),
        None => lower,
    }
}

// ---------------------------------------------------------------------------------------------------
// Battery.

/// Linux reads sysfs. Windows would need `GetSystemPowerStatus` and macOS IOKit, neither of which is a
/// dependency yet (windows-sys, IOKit bindings): there the answer is unknown.
fn on_battery() -> Option<bool> {
    #[cfg(target_os = "linux")]
    return power_supply::on_battery_in(Path::new("/sys/class/power_supply"));
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(target_os = "linux")]
mod power_supply {
    use std::path::Path;

    /// A power supply as `/sys/class/power_supply/<name>` describes it.
    enum Supply {
        /// Mains, USB or wireless charging; `online` None where the file could not be read.
        External { online: Option<bool> },
        /// A battery that powers this machine; `status` None where unreadable.
        Battery { status: Option<String> },
        /// A UPS, or the battery of a mouse or headset (scope "Device"): not this machine's power.
        Other,
    }

    /// On battery: no external supply online and a battery discharging. No battery at all is a
    /// desktop, never on battery. None only when the directory or a battery's status is unreadable.
    pub(super) fn on_battery_in(dir: &Path) -> Option<bool> {
        let supplies = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .map(|entry| read_supply(&entry.path()));
        on_battery_from(supplies)
    }

    fn read_supply(dir: &Path) -> Supply {
        let read = |file: &str| {
            std::fs::read_to_string(dir.join(file))
                .ok()
                .map(|text| text.trim().to_owned())
        };
        match read("type").as_deref() {
            Some(kind) if kind == "Mains" || kind == "Wireless" || kind.starts_with("USB") => {
                // 0 offline, 1 online, 2 online programmable (kernel ABI).
                let online = read("online").and_then(|text| text.parse::<u8>().ok());
                Supply::External {
                    online: online.map(|value| value != 0),
                }
            }
            Some("Battery") if read("scope").as_deref() != Some("Device") => Supply::Battery {
                status: read("status"),
            },
            _ => Supply::Other,
        }
    }

    fn on_battery_from(supplies: impl IntoIterator<Item = Supply>) -> Option<bool> {
        let mut external_online = false;
        let mut statuses = Vec::new();
        for supply in supplies {
            match supply {
                Supply::External { online } => external_online |= online == Some(true),
                Supply::Battery { status } => statuses.push(status),
                Supply::Other => {}
            }
        }
        if external_online || statuses.is_empty() {
            return Some(false);
        }
        if statuses
            .iter()
            .flatten()
            .any(|status| status == "Discharging")
        {
            return Some(true);
        }
        // A battery that would not say might be the one discharging.
        statuses.iter().all(Option::is_some).then_some(false)
    }
}

// ---------------------------------------------------------------------------------------------------
// Session lock (Linux): logind's LockedHint over the system bus.

#[cfg(target_os = "linux")]
mod logind {
    use std::fmt::Display;
    use std::sync::mpsc::{self, Receiver, TryRecvError};
    use std::time::{Duration, Instant};

    use zbus::blocking::{Connection, Proxy};
    use zbus::proxy::CacheProperties;
    use zbus::zvariant::OwnedObjectPath;

    /// logind answers in milliseconds; a bus that takes longer is stuck, and the sample must go on.
    const CALL_TIMEOUT: Duration = Duration::from_millis(500);
    /// Where there is no system bus or no logind (containers, CI), asking every second is waste.
    const RETRY_AFTER: Duration = Duration::from_secs(60);
    const LOGIND: &str = "org.freedesktop.login1";

    pub(super) struct Logind {
        state: State,
        /// Whether the current outage has been logged.
        reported: bool,
    }

    enum State {
        Waiting(Instant),
        /// Connecting happens on its own thread: a bus that accepts the connection but never
        /// answers would otherwise hang the sample, and zbus has no timeout for connecting.
        Connecting(Receiver<zbus::Result<Proxy<'static>>>),
        Ready(Proxy<'static>),
    }

    impl Logind {
        pub(super) fn new() -> Logind {
            Logind {
                state: connect_in_background(),
                reported: false,
            }
        }

        /// The session's LockedHint; None while connecting or where logind is not reachable.
        pub(super) fn locked(&mut self) -> Option<bool> {
            self.advance();
            let State::Ready(session) = &self.state else {
                return None;
            };
            match session.get_property::<bool>("LockedHint") {
                Ok(locked) => {
                    self.reported = false;
                    Some(locked)
                }
                Err(error) => {
                    self.wait(error);
                    None
                }
            }
        }

        fn advance(&mut self) {
            match &self.state {
                State::Waiting(at) if Instant::now() >= *at => self.state = connect_in_background(),
                State::Connecting(answer) => match answer.try_recv() {
                    Ok(Ok(session)) => self.state = State::Ready(session),
                    Ok(Err(error)) => self.wait(error),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => self.wait("the connecting thread ended"),
                },
                State::Waiting(_) | State::Ready(_) => {}
            }
        }

        /// Logs the outage once, and tries again after [`RETRY_AFTER`].
        fn wait(&mut self, error: impl Display) {
            if !self.reported {
                tracing::debug!(%error, "logind is not reachable; the session lock is unknown");
                self.reported = true;
            }
            self.state = State::Waiting(Instant::now() + RETRY_AFTER);
        }
    }

    fn connect_in_background() -> State {
        let (sender, answer) = mpsc::channel();
        // Where no thread can start, the sender goes with it: the receiver then reports Disconnected
        // and the usual retry follows.
        let _ = std::thread::Builder::new()
            .name("idlegrid-logind".into())
            .spawn(move || {
                // The sampler may be gone by now; then nobody needs the answer.
                let _ = sender.send(session_proxy());
            });
        State::Connecting(answer)
    }

    /// The person's graphical session. Started from a terminal or as a user service, Idlegrid may not
    /// sit in that session itself, so the user's "Display" session comes first; "auto" (the caller's
    /// own session) is the fallback for users without one.
    fn session_proxy() -> zbus::Result<Proxy<'static>> {
        let connection = zbus::blocking::connection::Builder::system()?
            .method_timeout(CALL_TIMEOUT)
            .build()?;
        let path = match display_session(&connection) {
            Some(path) => path,
            None => OwnedObjectPath::try_from("/org/freedesktop/login1/session/auto")?,
        };
        let session = proxy(&connection, path, "org.freedesktop.login1.Session")?;
        // Proves the session answers before the sampler relies on it.
        session.get_property::<bool>("LockedHint")?;
        Ok(session)
    }

    fn display_session(connection: &Connection) -> Option<OwnedObjectPath> {
        let user_path = OwnedObjectPath::try_from("/org/freedesktop/login1/user/self").ok()?;
        let user = proxy(connection, user_path, "org.freedesktop.login1.User").ok()?;
        let (_id, path): (String, OwnedObjectPath) = user.get_property("Display").ok()?;
        // "/" means the user has no graphical session.
        (path.as_str() != "/").then_some(path)
    }

    /// Properties are read afresh on each call: caching would add a signal subscription for one bool.
    fn proxy(
        connection: &Connection,
        path: OwnedObjectPath,
        interface: &'static str,
    ) -> zbus::Result<Proxy<'static>> {
        zbus::blocking::proxy::Builder::new(connection)
            .destination(LOGIND)?
            .path(path)?
            .interface(interface)?
            .cache_properties(CacheProperties::No)
            .build()
    }
}

// ---------------------------------------------------------------------------------------------------
// GPUs: NVIDIA through NVML, the rest as sysinfo lists them.

/// A GPU that sysinfo lists and NVML does not cover.
struct ListedGpu {
    name: String,
    /// The PCI address ("0000:03:00.0"), where the GPU's sysfs directory and its hwmon sensors are.
    #[cfg(target_os = "linux")]
    pci: String,
}

struct Gpus {
    #[cfg(any(target_os = "linux", windows))]
    nvidia: Option<nvidia::Nvidia>,
    listed: Vec<ListedGpu>,
}

impl Gpus {
    fn new() -> Gpus {
        #[cfg(any(target_os = "linux", windows))]
        let nvidia = nvidia::Nvidia::init();
        #[cfg(any(target_os = "linux", windows))]
        let nvidia_covered = nvidia.is_some();
        #[cfg(not(any(target_os = "linux", windows)))]
        let nvidia_covered = false;
        Gpus {
            #[cfg(any(target_os = "linux", windows))]
            nvidia,
            listed: listed_gpus(nvidia_covered),
        }
    }

    fn read(&mut self, ours: &HashSet<u32>) -> Vec<GpuSignals> {
        let mut gpus = Vec::new();
        #[cfg(any(target_os = "linux", windows))]
        if let Some(nvidia) = &mut self.nvidia {
            gpus.extend(nvidia.read(ours));
        }
        // Without NVML nothing here can tell our GPU use from others'.
        #[cfg(not(any(target_os = "linux", windows)))]
        let _ = ours;
        gpus.extend(self.listed.iter().map(listed_signals));
        gpus
    }
}

/// The GPUs sysinfo lists, read once: GPUs do not come and go while Idlegrid runs. NVIDIA GPUs are
/// left out where NVML reports them itself.
fn listed_gpus(nvidia_covered: bool) -> Vec<ListedGpu> {
    let Ok(gpus) = sysinfo::Gpus::new_with_refreshed_list() else {
        return Vec::new();
    };
    gpus.iter()
        .filter(|gpu| {
            let vendor = gpu.vendor().unwrap_or_default().to_lowercase();
            !(nvidia_covered && vendor.contains("nvidia"))
        })
        .map(|gpu| ListedGpu {
            name: gpu
                .model()
                .or(gpu.vendor())
                .unwrap_or("GPU")
                .trim()
                .to_owned(),
            #[cfg(target_os = "linux")]
            pci: gpu.pci().to_string(),
        })
        .collect()
}

/// sysinfo's busy figure includes Idlegrid's own work and cannot be split, so other use is unknown.
fn listed_signals(gpu: &ListedGpu) -> GpuSignals {
    #[cfg(target_os = "linux")]
    let temperature_c = gpu_temperature(&Path::new("/sys/bus/pci/devices").join(&gpu.pci));
    #[cfg(not(target_os = "linux"))]
    let temperature_c = None;
    GpuSignals {
        name: gpu.name.clone(),
        other_use_percent: None,
        temperature_c,
    }
}

/// The temperature of the GPU whose PCI device directory is `device`, from its hwmon sensors
/// (amdgpu, radeon, nouveau, xe). Reading the device's own hwmon ties the sensor to the GPU exactly,
/// where matching sensor labels by name could not tell two GPUs apart.
#[cfg(target_os = "linux")]
fn gpu_temperature(device: &Path) -> Option<f32> {
    std::fs::read_dir(device.join("hwmon"))
        .ok()?
        .flatten()
        .find_map(|hwmon| hwmon_temperature(&hwmon.path()))
}

/// One hwmon's GPU temperature in °C: amdgpu's "edge" sensor (the die as a whole) where labelled,
/// else the first sensor. sysfs gives millidegrees.
#[cfg(target_os = "linux")]
fn hwmon_temperature(hwmon: &Path) -> Option<f32> {
    let read = |file: String| std::fs::read_to_string(hwmon.join(file)).ok();
    let edge = (1..=8).find(|n| read(format!("temp{n}_label")).is_some_and(|l| l.trim() == "edge"));
    let millidegrees: i64 = read(format!("temp{}_input", edge.unwrap_or(1)))?
        .trim()
        .parse()
        .ok()?;
    Some(millidegrees as f32 / 1000.0)
}

#[cfg(any(target_os = "linux", windows, test))]
/// Per-process GPU use from samples of (pid, percent): the sum over processes that are not ours,
/// capped at 100. A process sampled twice counts at its highest.
fn others_gpu_share(samples: impl IntoIterator<Item = (u32, u32)>, ours: &HashSet<u32>) -> f32 {
    let mut by_pid: HashMap<u32, u32> = HashMap::new();
    for (pid, percent) in samples.into_iter().filter(|(pid, _)| !ours.contains(pid)) {
        let highest = by_pid.entry(pid).or_default();
        *highest = (*highest).max(percent);
    }
    (by_pid.values().sum::<u32>() as f32).min(100.0)
}

#[cfg(any(target_os = "linux", windows))]
mod nvidia {
    use std::collections::HashSet;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use nvml_wrapper::enum_wrappers::device::TemperatureSensor;
    use nvml_wrapper::error::NvmlError;
    use nvml_wrapper::{Device, Nvml};

    use super::{GpuSignals, others_gpu_share};

    /// How far back per-process GPU samples are read: one sampling interval.
    const WINDOW: Duration = Duration::from_secs(1);

    /// NVML, loaded once, and the failures already logged: a call that fails every second is
    /// logged the first time only.
    pub(super) struct Nvidia {
        nvml: Nvml,
        reported: HashSet<&'static str>,
    }

    impl Nvidia {
        /// Where the NVIDIA driver is installed. Its absence is the normal case on other machines.
        pub(super) fn init() -> Option<Nvidia> {
            let nvml = Nvml::init()
                .inspect_err(
                    |error| tracing::debug!(%error, "no NVML; NVIDIA GPUs go through sysinfo"),
                )
                .ok()?;
            Some(Nvidia {
                nvml,
                reported: HashSet::new(),
            })
        }

        pub(super) fn read(&mut self, ours: &HashSet<u32>) -> Vec<GpuSignals> {
            let count = match self.nvml.device_count() {
                Ok(count) => count,
                Err(error) => {
                    if self.reported.insert("device count") {
                        tracing::warn!(%error, "NVML cannot count the GPUs");
                    }
                    return Vec::new();
                }
            };
            (0..count)
                .filter_map(|index| match self.nvml.device_by_index(index) {
                    Ok(device) => Some(signals(&device, index, ours)),
                    Err(error) => {
                        if self.reported.insert("device") {
                            tracing::warn!(%error, index, "NVML cannot open a GPU");
                        }
                        None
                    }
                })
                .collect()
        }
    }

    fn signals(device: &Device, index: u32, ours: &HashSet<u32>) -> GpuSignals {
        GpuSignals {
            name: device
                .name()
                .unwrap_or_else(|_| format!("NVIDIA GPU {index}")),
            other_use_percent: other_use(device, ours),
            temperature_c: device
                .temperature(TemperatureSensor::Gpu)
                .ok()
                .map(|celsius| celsius as f32),
        }
    }

    /// Other programs' share of the GPU: per process where the driver samples it, else the whole
    /// GPU's use, but only when none of our processes is on it (or it would count our own work).
    fn other_use(device: &Device, ours: &HashSet<u32>) -> Option<f32> {
        match device.process_utilization_stats(window_start_us()) {
            Ok(samples) => Some(others_gpu_share(
                samples.iter().map(|s| (s.pid, s.sm_util)),
                ours,
            )),
            // The driver had no process with any use in the window.
            Err(NvmlError::NotFound) => Some(0.0),
            Err(_) => whole_use_if_not_ours(device, ours),
        }
    }

    fn whole_use_if_not_ours(device: &Device, ours: &HashSet<u32>) -> Option<f32> {
        let compute = device.running_compute_processes().ok()?;
        let graphics = device.running_graphics_processes().ok()?;
        if compute
            .iter()
            .chain(&graphics)
            .any(|p| ours.contains(&p.pid))
        {
            return None;
        }
        device.utilization_rates().ok().map(|u| u.gpu as f32)
    }

    /// NVML stamps samples with the wall clock in microseconds.
    fn window_start_us() -> u64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        now.saturating_sub(WINDOW).as_micros() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_os = "linux")]
    use power_supply::on_battery_in;

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

    #[test]
    fn program_names_compare_loosely() {
        assert_eq!(program_key("Blender"), "blender");
        assert_eq!(program_key("blender.exe"), "blender");
        assert_eq!(program_key(" Steam.EXE "), "steam");
        assert_eq!(program_key("exe"), "exe");
        assert_eq!(program_key("  "), "");
    }

    #[test]
    fn others_gpu_share_leaves_ours_out() {
        let ours = HashSet::from([7, 8]);
        let samples = [(7, 90), (8, 5), (100, 20), (100, 30), (200, 10)];
        assert_eq!(others_gpu_share(samples, &ours), 40.0);
        assert_eq!(others_gpu_share([(1, 80), (2, 70)], &ours), 100.0);
        assert_eq!(others_gpu_share([], &ours), 0.0);
    }

    /// Writes `files` (name, content) into `dir/name`.
    #[cfg(target_os = "linux")]
    fn supply(dir: &Path, name: &str, files: &[(&str, &str)]) {
        let path = dir.join(name);
        std::fs::create_dir_all(&path).expect("create supply dir");
        for (file, content) in files {
            std::fs::write(path.join(file), format!("{content}\n")).expect("write supply file");
        }
    }

    #[cfg(target_os = "linux")]
    fn laptop(ac_online: &str, battery_status: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        supply(
            dir.path(),
            "AC",
            &[("type", "Mains"), ("online", ac_online)],
        );
        supply(
            dir.path(),
            "BAT0",
            &[
                ("type", "Battery"),
                ("scope", "System"),
                ("status", battery_status),
            ],
        );
        dir
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_desktop_is_never_on_battery() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(on_battery_in(dir.path()), Some(false));
        // A wireless mouse's battery is not the machine's.
        supply(
            dir.path(),
            "hidpp_battery_0",
            &[
                ("type", "Battery"),
                ("scope", "Device"),
                ("status", "Discharging"),
            ],
        );
        assert_eq!(on_battery_in(dir.path()), Some(false));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_laptop_on_mains_is_not_on_battery() {
        assert_eq!(on_battery_in(laptop("1", "Charging").path()), Some(false));
        assert_eq!(on_battery_in(laptop("1", "Full").path()), Some(false));
        // Mains online wins even when a weak charger lets the battery drain.
        assert_eq!(
            on_battery_in(laptop("1", "Discharging").path()),
            Some(false)
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_discharging_laptop_is_on_battery() {
        assert_eq!(on_battery_in(laptop("0", "Discharging").path()), Some(true));
        // Powered over USB-C: the USB supply is what is online.
        let dir = laptop("0", "Discharging");
        supply(
            dir.path(),
            "ucsi-source-psy-USBC000:001",
            &[("type", "USB"), ("online", "1")],
        );
        assert_eq!(on_battery_in(dir.path()), Some(false));
        // No mains entry at all, battery discharging.
        let dir = tempfile::tempdir().expect("temp dir");
        supply(
            dir.path(),
            "BAT1",
            &[("type", "Battery"), ("status", "Discharging")],
        );
        assert_eq!(on_battery_in(dir.path()), Some(true));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn an_unreadable_power_supply_is_unknown() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(on_battery_in(&dir.path().join("missing")), None);
        // A battery without a status, and no mains online: it might be discharging.
        supply(dir.path(), "AC", &[("type", "Mains"), ("online", "0")]);
        supply(dir.path(), "BAT0", &[("type", "Battery")]);
        assert_eq!(on_battery_in(dir.path()), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn gpu_temperature_reads_the_devices_hwmon() {
        let device = tempfile::tempdir().expect("temp dir");
        assert_eq!(gpu_temperature(device.path()), None);
        let hwmon = device.path().join("hwmon/hwmon4");
        std::fs::create_dir_all(&hwmon).expect("create hwmon");
        std::fs::write(hwmon.join("temp1_input"), "45000\n").expect("write temp1");
        assert_eq!(gpu_temperature(device.path()), Some(45.0));
        // amdgpu: the "edge" sensor is the GPU's as a whole.
        std::fs::write(hwmon.join("temp1_label"), "junction\n").expect("write label");
        std::fs::write(hwmon.join("temp2_label"), "edge\n").expect("write label");
        std::fs::write(hwmon.join("temp2_input"), "38500\n").expect("write temp2");
        assert_eq!(gpu_temperature(device.path()), Some(38.5));
    }
}

//! The idle monitor at rest (`cargo bench -p idlegrid --bench idle`): what watching the machine costs
//! while nothing runs, the state the desktop app spends most of its life in.
//!
//! For each process count (the machine as it is, then with `--strangers` extra `sleep` processes that
//! are not ours, as other programs would be):
//!
//! 1. `HostSignals::sample`: the wall time and this process's CPU time of one call, median and 90th
//!    percentile over `--calls` calls 210 ms apart (sysinfo skips a refresh sooner than 200 ms after
//!    the last), without and with an exclusive program to look for.
//! 2. The real `IdleMonitor` with the real signals and default preferences, then with one exclusive
//!    program, for `--seconds` each: this process's CPU time per wall second, as a percentage of one
//!    core. Input comes from whatever `detect_input` finds: run under `xvfb-run -a` to include X11;
//!    without a display there is no input source and the person counts as away.
//!
//! With `DBUS_SYSTEM_BUS_ADDRESS` pointing at a bus where `--serve-logind` runs (see `serve_logind`),
//! the session lock is read from that stand-in; else logind is out of reach, as in most containers.
//! With `--serve-mutter` running on the session bus, input comes from the Mutter source as on GNOME.
//!
//! Defaults: 20 s, 60 calls, 400 strangers; without `--bench` (as `cargo test --benches` runs it),
//! 2 s, 5 calls, 20 strangers. Linux only (CPU time and process counts come from /proc and rustix).

#[cfg(target_os = "linux")]
fn main() -> anyhow::Result<()> {
    linux::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    println!("the idle bench runs on Linux only");
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use idlegrid::idle::{
        HostSignals, IdleMonitor, InputIdle, MonitorConfig, Preferences, SystemSample,
        SystemSignals, detect_input,
    };
    use rustix::time::{ClockId, clock_gettime};

    struct Options {
        seconds: u64,
        calls: usize,
        strangers: usize,
    }

    fn options() -> anyhow::Result<Options> {
        let args: Vec<String> = std::env::args().collect();
        let bench = args.iter().any(|a| a == "--bench");
        let value = |flag: &str, bench_default: u64, test_default: u64| -> anyhow::Result<u64> {
            match args.iter().position(|a| a == flag) {
                Some(i) => Ok(args
                    .get(i + 1)
                    .ok_or_else(|| anyhow::anyhow!("{flag} needs a number"))?
                    .parse()?),
                None if bench => Ok(bench_default),
                None => Ok(test_default),
            }
        };
        Ok(Options {
            seconds: value("--seconds", 20, 2)?,
            calls: value("--calls", 60, 5)? as usize,
            strangers: value("--strangers", 400, 20)? as usize,
        })
    }

    pub fn main() -> anyhow::Result<()> {
        if std::env::args().any(|a| a == "--serve-logind") {
            return serve_logind();
        }
        if std::env::args().any(|a| a == "--serve-mutter") {
            return serve_mutter();
        }
        // RUST_LOG=debug shows which signals could not be read.
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
        let options = options()?;
        let exclusive = vec!["surely-not-running-xyz".to_owned()];
        for strangers in [0, options.strangers] {
            let _strangers = Strangers::start(strangers)?;
            println!(
                "\n{} processes on the machine ({strangers} of them started here as strangers)",
                process_count()
            );
            let (wall, cpu) = time_samples(options.calls, &[]);
            println!("HostSignals::sample, no exclusive programs: {wall}; CPU {cpu}");
            if strangers == 0 {
                let mut signals = HostSignals::new();
                std::thread::sleep(Duration::from_millis(500));
                let locked = signals.sample(&[]).session_locked;
                println!("session lock from logind: {locked:?}");
            }
            let (wall, cpu) = time_samples(options.calls, &exclusive);
            println!("HostSignals::sample, one exclusive program: {wall}; CPU {cpu}");
            let report = |label: &str, (percent, input, verdict): (f64, String, String)| {
                println!(
                    "idle-monitor cpu={percent:.3}% of one core over {} s ({label}; input: {input}; \
                     verdict at the end: {verdict})",
                    options.seconds
                );
            };
            let host = || Box::new(HostSignals::new()) as Box<dyn SystemSignals>;
            let seconds = options.seconds;
            if strangers == 0 {
                // The loop alone: a machine double that costs nothing to read.
                report(
                    "the loop alone, with a quiet machine double",
                    monitor_cpu(Box::new(QuietMachine), Preferences::default(), seconds),
                );
            }
            report(
                "default preferences",
                monitor_cpu(host(), Preferences::default(), seconds),
            );
            let with_exclusive = Preferences {
                exclusive_programs: exclusive.clone(),
                ..Preferences::default()
            };
            report(
                "one exclusive program",
                monitor_cpu(host(), with_exclusive, seconds),
            );
            let input = detect_input().ok();
            if strangers == 0 && input.is_some() {
                // Away after a second of quiet: sharing, so the thread waits on the input source.
                let away = Preferences {
                    idle_after: Duration::from_secs(1),
                    ..Preferences::default()
                };
                report("away: idle delay 1 s", monitor_cpu(host(), away, seconds));
            }
            if strangers == 0 && input.is_some_and(|input| input.name() == "x11") {
                let _pointer = moving_pointer()?;
                report(
                    "at the keyboard: xdotool moving the pointer",
                    monitor_cpu(host(), Preferences::default(), seconds),
                );
            }
        }
        Ok(())
    }

    /// logind's session as far as Idlegrid reads it: its lock hint, which never changes here.
    struct FakeSession;

    #[zbus::interface(name = "org.freedesktop.login1.Session")]
    impl FakeSession {
        #[zbus(property, name = "LockedHint")]
        fn locked_hint(&self) -> bool {
            false
        }
    }

    /// `--serve-logind`: serves a stand-in for logind on the bus `DBUS_SYSTEM_BUS_ADDRESS` names, until
    /// killed, so that the monitor's reading of the lock is measured too: `dbus-run-session -- sh -c
    /// 'export DBUS_SYSTEM_BUS_ADDRESS=$DBUS_SESSION_BUS_ADDRESS; idle --serve-logind & …'`. In a
    /// process of its own, so its answers are not counted as the monitor's CPU.
    fn serve_logind() -> anyhow::Result<()> {
        let _connection = zbus::blocking::connection::Builder::system()?
            .name("org.freedesktop.login1")?
            .serve_at("/org/freedesktop/login1/session/auto", FakeSession)?
            .build()?;
        loop {
            std::thread::park();
        }
    }

    /// GNOME's idle monitor as far as Idlegrid uses it, for a person who touched nothing since it
    /// started: the idle time grows, and no watch ever fires.
    struct FakeIdleMonitor(Instant);

    #[zbus::interface(name = "org.gnome.Mutter.IdleMonitor")]
    impl FakeIdleMonitor {
        #[zbus(name = "GetIdletime")]
        fn get_idletime(&self) -> u64 {
            self.0.elapsed().as_millis() as u64
        }

        #[zbus(name = "AddUserActiveWatch")]
        fn add_user_active_watch(&self) -> u32 {
            1
        }

        #[zbus(name = "RemoveWatch")]
        fn remove_watch(&self, _id: u32) {}
    }

    /// `--serve-mutter`: serves a stand-in for Mutter's idle monitor on the session bus until killed,
    /// so that `detect_input` picks the source GNOME sessions use.
    fn serve_mutter() -> anyhow::Result<()> {
        let _connection = zbus::blocking::connection::Builder::session()?
            .name("org.gnome.Mutter.IdleMonitor")?
            .serve_at(
                "/org/gnome/Mutter/IdleMonitor/Core",
                FakeIdleMonitor(Instant::now()),
            )?
            .build()?;
        loop {
            std::thread::park();
        }
    }

    /// CPU time of this whole process so far (every thread, those that ended included).
    fn cpu_time() -> Duration {
        let time = clock_gettime(ClockId::ProcessCPUTime);
        Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
    }

    /// "median X ms, p90 Y ms" for wall time and CPU time of `calls` samples.
    fn time_samples(calls: usize, exclusive: &[String]) -> (String, String) {
        let mut signals = HostSignals::new();
        // The first sample lists everything from nothing; the monitor pays that once.
        signals.sample(exclusive);
        let mut walls = Vec::with_capacity(calls);
        let mut cpus = Vec::with_capacity(calls);
        for _ in 0..calls {
            std::thread::sleep(Duration::from_millis(210));
            let (wall, cpu) = (Instant::now(), cpu_time());
            std::hint::black_box(signals.sample(exclusive));
            cpus.push(cpu_time().saturating_sub(cpu));
            walls.push(wall.elapsed());
        }
        (summary(walls), summary(cpus))
    }

    fn summary(mut samples: Vec<Duration>) -> String {
        samples.sort();
        let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
        format!(
            "median {:.3} ms, p90 {:.3} ms (n={})",
            ms(at(0.5)),
            ms(at(0.9)),
            samples.len()
        )
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1e3
    }

    /// A machine that is always quiet and costs nothing to read.
    struct QuietMachine;

    impl SystemSignals for QuietMachine {
        fn sample(&mut self, _exclusive: &[String]) -> SystemSample {
            SystemSample::default()
        }
    }

    /// Runs the monitor for `seconds`; this process's CPU per wall second in percent of a core.
    fn monitor_cpu(
        system: Box<dyn SystemSignals>,
        preferences: Preferences,
        seconds: u64,
    ) -> (f64, String, String) {
        let input: Option<Box<dyn InputIdle>> = detect_input().ok();
        let input_name = input.as_ref().map_or("none", |i| i.name()).to_owned();
        let monitor = IdleMonitor::spawn(input, system, preferences, MonitorConfig::new("bench"));
        // Connecting (logind, the first full read) is not the resting state.
        std::thread::sleep(Duration::from_secs(2));
        let (wall, cpu) = (Instant::now(), cpu_time());
        std::thread::sleep(Duration::from_secs(seconds));
        let percent =
            cpu_time().saturating_sub(cpu).as_secs_f64() / wall.elapsed().as_secs_f64() * 100.0;
        let verdict = monitor.verdicts().borrow().to_string();
        (percent, input_name, verdict)
    }

    fn process_count() -> usize {
        std::fs::read_dir("/proc").map_or(0, |dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
                .count()
        })
    }

    /// A shell moving the pointer back and forth through XTEST as fast as xdotool starts, as a person
    /// at the mouse would (X sends each motion to every client listening for raw input). Its parent
    /// exits at once, so it and its xdotool processes are not ours. Stopped when dropped.
    fn moving_pointer() -> anyhow::Result<Strangers> {
        let script = "(while :; do xdotool mousemove_relative 3 0 mousemove_relative -- -3 0; \
                      done) </dev/null >/dev/null 2>&1 & echo $!";
        Strangers::from_script(script, 1)
    }

    /// `sleep` processes whose parent shell has exited: re-parented away from us, they are other
    /// programs to the monitor. Killed when dropped.
    struct Strangers(Vec<i32>);

    impl Strangers {
        fn start(count: usize) -> anyhow::Result<Strangers> {
            if count == 0 {
                return Ok(Strangers(Vec::new()));
            }
            let script = format!(
                "i=0; while [ $i -lt {count} ]; do sleep 3600 </dev/null >/dev/null 2>&1 & \
                 echo $!; i=$((i+1)); done"
            );
            Strangers::from_script(&script, count)
        }

        /// Runs `script`, which starts processes in the background and prints their pids.
        fn from_script(script: &str, count: usize) -> anyhow::Result<Strangers> {
            let mut shell = Command::new("sh")
                .args(["-c", script])
                .stdout(Stdio::piped())
                .spawn()?;
            let stdout = shell
                .stdout
                .take()
                .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
            let mut strangers = Strangers(Vec::with_capacity(count));
            for line in BufReader::new(stdout).lines() {
                strangers.0.push(line?.trim().parse()?);
            }
            shell.wait()?;
            Ok(strangers)
        }
    }

    impl Drop for Strangers {
        fn drop(&mut self) {
            for &pid in &self.0 {
                if let Some(pid) = rustix::process::Pid::from_raw(pid) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
    }
}

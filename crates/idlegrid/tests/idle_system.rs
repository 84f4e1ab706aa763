//! `HostSignals` on this machine: real processes burning CPU, a real "exclusive" program, and a sample
//! of whatever the machine has. Only what holds on every machine is asserted.

#[cfg(unix)]
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use idlegrid::idle::{HostSignals, SystemSignals};

/// The CPU tests each burn a core; run one at a time so they do not starve each other.
#[cfg(unix)]
fn one_burner_at_a_time() -> MutexGuard<'static, ()> {
    static CPU: Mutex<()> = Mutex::new(());
    CPU.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Logical cores as sysinfo counts them, the base of `other_cpu_percent`.
#[cfg(unix)]
fn cores() -> usize {
    let mut system = sysinfo::System::new().expect("sysinfo reads this platform");
    system.refresh_cpu_usage();
    system.cpus().len().max(1)
}

#[cfg(unix)]
mod unix {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};

    use super::*;

    /// Kills these processes when dropped, so a failed assertion leaves no burner behind.
    struct Killed {
        pids: Vec<u32>,
        children: Vec<Child>,
    }

    impl Killed {
        fn kill_all(&mut self) {
            for pid in self.pids.drain(..) {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            for mut child in self.children.drain(..) {
                let _ = child.kill();
                // Reaped, so it is gone rather than a zombie.
                let _ = child.wait();
            }
        }
    }

    impl Drop for Killed {
        fn drop(&mut self) {
            self.kill_all();
        }
    }

    /// Reads the first line of `child`'s stdout as a pid.
    fn first_line_pid(child: &mut Child) -> u32 {
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the pid");
        line.trim().parse().expect("a pid")
    }

    /// A busy loop whose parent shell has exited: it is re-parented away from us, so it is someone
    /// else's load, as a game or a compiler would be.
    fn start_stranger() -> Killed {
        let mut shell = Command::new("sh")
            .args([
                "-c",
                "(while :; do :; done) </dev/null >/dev/null 2>&1 & echo $!",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sh");
        let pid = first_line_pid(&mut shell);
        let killed = Killed {
            pids: vec![pid],
            children: Vec::new(),
        };
        shell.wait().expect("the shell exits at once");
        killed
    }

    #[test]
    fn a_strangers_busy_loop_counts_as_other_cpu() {
        let _one = one_burner_at_a_time();
        let stranger = start_stranger();
        let mut signals = HostSignals::new();
        // One core of all of them, halved for slack: 25 % on two cores.
        let expected = 50.0 / cores() as f32;
        let mut seen = Vec::new();
        for _ in 0..8 {
            let sample = signals.sample(&[]);
            seen.push(sample.other_cpu_percent);
            if sample.other_cpu_percent.is_some_and(|p| p > expected) {
                break;
            }
            thread::sleep(Duration::from_secs(1));
        }
        assert_eq!(seen[0], None, "the first sample has no interval to measure");
        assert!(!signals.is_ours(stranger.pids[0]));
        assert!(
            seen.iter().flatten().any(|&p| p > expected),
            "other CPU never went above {expected} %: {seen:?}"
        );
    }

    /// Our own children (the future `idlegrid worker`) and their children are ours. Whether their
    /// CPU is then left out of "other" is the arithmetic the unit tests check; a figure measured
    /// here would also move with whatever else the machine runs.
    #[test]
    fn our_children_and_grandchildren_are_ours() {
        let _one = one_burner_at_a_time();
        let mut shell = Command::new("sh")
            .args(["-c", "while :; do :; done & echo $!; wait"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sh");
        let child = shell.id();
        let grandchild = first_line_pid(&mut shell);
        let _killed = Killed {
            pids: vec![grandchild],
            children: vec![shell],
        };
        let mut signals = HostSignals::new();
        signals.sample(&[]);
        assert!(signals.is_ours(std::process::id()));
        assert!(signals.is_ours(child), "the child {child}");
        assert!(signals.is_ours(grandchild), "the grandchild {grandchild}");
        assert!(!signals.is_ours(1), "init is nobody's child");
    }

    /// Starts `command`, retrying while the kernel still sees the fresh copy as open for writing
    /// (another test thread may have forked while it was).
    fn spawn_retrying(command: &mut Command) -> Child {
        for _ in 0..50 {
            match command.spawn() {
                // ETXTBSY
                Err(error) if error.raw_os_error() == Some(26) => {
                    thread::sleep(Duration::from_millis(20))
                }
                result => return result.expect("start the program"),
            }
        }
        panic!("the program stayed busy");
    }

    #[test]
    fn exclusive_programs_are_found_as_the_person_wrote_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let game = dir.path().join("FakeGame");
        std::fs::copy("/bin/sleep", &game).expect("copy sleep");
        // argv[0] stays "sleep" for multi-call builds of coreutils; the process is still FakeGame.
        let child = spawn_retrying(Command::new(&game).arg0("sleep").arg("30"));
        let mut game = Killed {
            pids: Vec::new(),
            children: vec![child],
        };
        let wanted: Vec<String> = ["Steam", "fakegame", "", "FakeGame.exe", "blender.exe"]
            .map(String::from)
            .into();
        let mut signals = HostSignals::new();
        assert_eq!(
            signals.sample(&wanted).exclusive_running,
            ["fakegame", "FakeGame.exe"]
        );
        game.kill_all();
        // sysinfo reads processes at most every 200 ms.
        thread::sleep(Duration::from_millis(300));
        assert!(signals.sample(&wanted).exclusive_running.is_empty());
    }
}

/// A sample of this machine, whatever it has: only what is true everywhere is asserted.
#[test]
fn a_sample_of_this_machine_is_plausible() {
    let mut signals = HostSignals::new();
    let first = signals.sample(&["surely-not-running-xyz".into()]);
    assert_eq!(first.other_cpu_percent, None);
    assert!(first.exclusive_running.is_empty());
    thread::sleep(Duration::from_millis(1100));
    let second = signals.sample(&[]);
    let other = second
        .other_cpu_percent
        .expect("sysinfo reads CPU use here");
    assert!((0.0..=100.0).contains(&other), "{other}");
    assert_eq!(second.gpus.len(), expected_gpu_count(), "{:?}", second.gpus);
    for gpu in &second.gpus {
        assert!(!gpu.name.is_empty());
        if let Some(use_percent) = gpu.other_use_percent {
            assert!((0.0..=100.0).contains(&use_percent), "{gpu:?}");
        }
        if let Some(celsius) = gpu.temperature_c {
            assert!((-40.0..=150.0).contains(&celsius), "{gpu:?}");
        }
    }
    #[cfg(not(target_os = "linux"))]
    assert_eq!((second.on_battery, second.session_locked), (None, None));
}

/// NVML's GPUs plus sysinfo's others where NVML loads; sysinfo's alone where it does not.
fn expected_gpu_count() -> usize {
    let listed = sysinfo::Gpus::new_with_refreshed_list().expect("sysinfo lists GPUs");
    let is_nvidia = |gpu: &&sysinfo::Gpu| {
        gpu.vendor()
            .is_some_and(|v| v.to_lowercase().contains("nvidia"))
    };
    #[cfg(any(target_os = "linux", windows))]
    if let Ok(nvml) = nvml_wrapper::Nvml::init() {
        let nvidia = nvml.device_count().expect("NVML counts GPUs") as usize;
        return nvidia + listed.iter().filter(|gpu| !is_nvidia(gpu)).count();
    }
    let _ = is_nvidia;
    listed.iter().count()
}

//! Time to yield (run with `scripts/bench-yield`, or `cargo bench -p idlegrid --bench yield`): how long
//! from a person touching the mouse to the GPU being free and the pool holding the lease again.
//!
//! A pool and a provider run in this process on 127.0.0.1; the provider follows an idle monitor
//! watching a real X server (Xvfb: `$DISPLAY`, or one started here) through XScreenSaver and XInput 2.
//! Each run submits the hashchain example (64 passes of about 8 ms on llvmpipe), waits until the
//! provider is working and a little more (varied, so input lands anywhere in a pass), then runs
//! `xdotool mousemove_relative` and measures from just before starting xdotool (so its start-up counts against
//! us) to (a) the provider's state turning Paused, which it publishes once the job has stopped on the
//! GPU, and (b) the pool's queue showing the job with no lease, polled every 200 µs. The job then
//! finishes after the idle delay (0.5 s) before the next run.
//!
//! The last line is `time-to-yield p50=<ms> p99=<ms> (n=<runs>)`, for (b). `--runs N` (default 100);
//! without `--bench` (as `cargo test --benches` runs it), 3 runs.
//!
//! `--input trait` drives the idle signal through its trait instead ([`InputIdle`], read by polling as
//! the Windows source reads `GetLastInputInfo`), with the touch at the measured instant: for Windows
//! under Wine, whose `GetLastInputInfo` sees no input sent to the X server. It is the only input off
//! Linux; on Linux it gives the same method's figure to compare with.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use idlegrid::client::{Client, own_submitter_key};
use idlegrid::gpu::{AdapterChoice, Executor};
use idlegrid::idle::InputIdle;
use idlegrid::idle::{IdleMonitor, MonitorConfig, Preferences, SystemSample, SystemSignals};
use idlegrid::job::{Job, JobLimits};
use idlegrid::pool::verify::ReplicationPolicy;
use idlegrid::pool::{Pool, PoolConfig};
use idlegrid::protocol::{Bind, JobState};
use idlegrid::provider::{Provider, ProviderConfig, ProviderState, ProviderStatus};
use iroh::SecretKey;
use tokio::sync::watch;

const LOOPBACK: Bind = Bind::At(std::net::SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    0,
)));

/// Other programs are not part of this measurement; the machine is read as quiet.
struct QuietMachine;

impl SystemSignals for QuietMachine {
    fn sample(&mut self, _exclusive: &[String]) -> SystemSample {
        SystemSample::default()
    }
}

fn main() -> anyhow::Result<()> {
    // RUST_LOG=info shows the provider's transitions on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().collect();
    let runs = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).map_or(Ok(100), |n| n.parse())?,
        None if args.iter().any(|a| a == "--bench") => 100,
        None => 3,
    };
    let input = match args.iter().position(|a| a == "--input") {
        Some(i) => args.get(i + 1).map(String::as_str).unwrap_or_default(),
        None if cfg!(target_os = "linux") => "x11",
        None => "trait",
    };
    let touch = Touch::new(input)?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(measure(runs, touch))
}

async fn measure(runs: usize, mut touch: Touch) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let pool_key = SecretKey::generate();
    let pool_config = PoolConfig {
        // One provider: its result is the answer, as with a trusted provider.
        replication: ReplicationPolicy {
            untrusted_replicas: 1,
            ..ReplicationPolicy::default()
        },
        canary_rate: 0.0,
        retry_after: Duration::from_millis(20),
        ..PoolConfig::default()
    };
    let pool = Pool::open(&dir.path().join("pool"), pool_key.clone(), pool_config)?
        .serve(LOOPBACK)
        .await?;
    let executor = Executor::new(&AdapterChoice::from_flag_or_env(None))?;
    let adapter = executor.adapter_info().name.clone();
    let monitor = IdleMonitor::spawn(
        Some(touch.source()?),
        Box::new(QuietMachine),
        Preferences {
            idle_after: Duration::from_millis(500),
            ..Preferences::default()
        },
        MonitorConfig::new(adapter.clone()),
    );
    let provider = Provider::new(
        SecretKey::generate(),
        idlegrid::protocol::ticket_addr(&pool.ticket())?,
        &dir.path().join("provider"),
        executor,
        ProviderConfig::default(),
    )?;
    let mut status = provider.status();
    let (stop, stop_rx) = watch::channel(false);
    let providing = tokio::spawn(provider.run(monitor.verdicts(), stop_rx));
    let client = Client::connect(&pool.ticket(), own_submitter_key(&pool_key)).await?;
    let job = Job::load(
        &repo_root().join("examples/jobs/hashchain/job.toml"),
        &JobLimits::default(),
    )?;

    let mut paused = Vec::with_capacity(runs);
    let mut returned = Vec::with_capacity(runs);
    for run in 0..runs {
        let handle = client.submit_with_nonce(&job, run as u64).await?;
        let id = handle.id();
        // This job leased (the state may still show the last run's lease) and the provider on it.
        while pool.pool.progress(&id)?.progress.state != JobState::Running {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        wait_for(&mut status, |s| matches!(s, ProviderState::Working { .. })).await?;
        // Spread the input over the first passes: 0–24 ms after the job started.
        tokio::time::sleep(Duration::from_micros((run as u64 * 7_919) % 24_000)).await;

        let input_at = Instant::now();
        touch.touch(run)?;
        let pool_side = pool.pool.clone();
        let lease_back = tokio::task::spawn_blocking(move || -> anyhow::Result<Duration> {
            loop {
                let report = pool_side.progress(&id)?;
                if report.progress.running == 0 && report.progress.state == JobState::Queued {
                    return Ok(input_at.elapsed());
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        wait_for(&mut status, |s| matches!(s, ProviderState::Paused { .. })).await?;
        paused.push(input_at.elapsed());
        returned.push(lease_back.await??);
        touch.done()?;
        handle.wait().await?;
    }
    client.close().await;
    let _ = stop.send(true);
    providing.await??;
    pool.shutdown().await;

    println!(
        "adapter: {adapter}; job: hashchain, 64 passes; input: {}",
        touch.describe()
    );
    println!(
        "input → provider paused (GPU free): {}",
        summary(&mut paused)
    );
    println!(
        "input → pool has the lease back:    {}",
        summary(&mut returned)
    );
    let (p50, p99) = (percentile(&returned, 50.0), percentile(&returned, 99.0));
    println!(
        "time-to-yield p50={:.1} p99={:.1} (n={})",
        ms(p50),
        ms(p99),
        returned.len()
    );
    Ok(())
}

async fn wait_for(
    status: &mut watch::Receiver<ProviderStatus>,
    wanted: impl Fn(&ProviderState) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(
        Duration::from_secs(60),
        status.wait_for(|s| wanted(&s.state)),
    )
    .await??;
    Ok(())
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    format!(
        "p50={:.1} ms p99={:.1} ms min={:.1} ms max={:.1} ms",
        ms(percentile(samples, 50.0)),
        ms(percentile(samples, 99.0)),
        ms(samples.first().copied().unwrap_or_default()),
        ms(samples.last().copied().unwrap_or_default()),
    )
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn repo_root() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How the bench touches the machine: real input to an X server, or the idle signal's trait.
enum Touch {
    #[cfg(target_os = "linux")]
    X11(x11::Mouse),
    Trait(Arc<Mutex<Instant>>),
}

impl Touch {
    fn new(input: &str) -> anyhow::Result<Touch> {
        match input {
            #[cfg(target_os = "linux")]
            "x11" => Ok(Touch::X11(x11::Mouse::start()?)),
            // The last input long ago: idle from the start.
            "trait" => Ok(Touch::Trait(Arc::new(Mutex::new(
                Instant::now()
                    .checked_sub(Duration::from_secs(3600))
                    .unwrap_or_else(Instant::now),
            )))),
            other => anyhow::bail!("--input {other}: x11 (Linux) or trait"),
        }
    }

    /// The input source the idle monitor reads.
    fn source(&self) -> anyhow::Result<Box<dyn InputIdle>> {
        match self {
            #[cfg(target_os = "linux")]
            Touch::X11(mouse) => mouse.source(),
            Touch::Trait(last) => Ok(Box::new(Touched(Arc::clone(last)))),
        }
    }

    /// Input now; `run` varies the move on X11.
    #[cfg_attr(not(target_os = "linux"), allow(unused_variables))]
    fn touch(&mut self, run: usize) -> anyhow::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Touch::X11(mouse) => mouse.move_a_little(run),
            Touch::Trait(last) => {
                *last.lock().map_err(|_| anyhow::anyhow!("poisoned"))? = Instant::now();
                Ok(())
            }
        }
    }

    /// After a run: the input is over.
    fn done(&mut self) -> anyhow::Result<()> {
        match self {
            #[cfg(target_os = "linux")]
            Touch::X11(mouse) => mouse.wait(),
            Touch::Trait(_) => Ok(()),
        }
    }

    fn describe(&self) -> String {
        match self {
            #[cfg(target_os = "linux")]
            Touch::X11(mouse) => format!("xdotool mousemove_relative on {}", mouse.display),
            Touch::Trait(_) => format!(
                "the InputIdle trait, polled every {} ms as Windows' GetLastInputInfo is",
                idlegrid::idle::input::FAST_POLL.as_millis()
            ),
        }
    }
}

/// An input source whose last input is whenever the bench says; read by polling, like Windows'.
struct Touched(Arc<Mutex<Instant>>);

impl InputIdle for Touched {
    fn name(&self) -> &'static str {
        "bench"
    }

    fn idle_time(&mut self) -> Result<Duration, idlegrid::idle::SignalError> {
        let last = *self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(last.elapsed())
    }
}

// The tests' Xvfb, where no `$DISPLAY` is given.
#[cfg(target_os = "linux")]
#[allow(dead_code)]
#[path = "../tests/common/xvfb.rs"]
mod xvfb;

#[cfg(target_os = "linux")]
mod x11 {
    use std::process::{Child, Command};

    use super::xvfb::Xvfb;

    use idlegrid::idle::InputIdle;
    use idlegrid::idle::x11::X11Input;

    /// Real input: relative mouse moves through XTEST on an X server (`$DISPLAY`, or an Xvfb of its
    /// own), which the X11 source sees.
    pub struct Mouse {
        pub display: String,
        _xvfb: Option<Xvfb>,
        xdotool: Option<Child>,
    }

    impl Mouse {
        pub fn start() -> anyhow::Result<Mouse> {
            let (display, xvfb) = match std::env::var("DISPLAY").ok().filter(|d| !d.is_empty()) {
                Some(display) => (display, None),
                None => {
                    let xvfb = Xvfb::start();
                    (xvfb.display.clone(), Some(xvfb))
                }
            };
            Ok(Mouse {
                display,
                _xvfb: xvfb,
                xdotool: None,
            })
        }

        pub fn source(&self) -> anyhow::Result<Box<dyn InputIdle>> {
            Ok(Box::new(X11Input::connect_to(Some(&self.display))?))
        }

        pub fn move_a_little(&mut self, run: usize) -> anyhow::Result<()> {
            self.xdotool = Some(
                Command::new("xdotool")
                    .args(["mousemove_relative", "--", step(run), step(run + 1)])
                    .env("DISPLAY", &self.display)
                    .spawn()?,
            );
            Ok(())
        }

        pub fn wait(&mut self) -> anyhow::Result<()> {
            if let Some(mut xdotool) = self.xdotool.take() {
                xdotool.wait()?;
            }
            Ok(())
        }
    }

    /// A small move back and forth, so the pointer stays on the screen. Relative moves go through XTEST as a
    /// real mouse does; `xdotool mousemove X Y` warps the pointer, which X does not count as a person.
    fn step(run: usize) -> &'static str {
        if run.is_multiple_of(2) { "3" } else { "-3" }
    }
}

//! The window, as the app sees it: a separate program (`idlegrid-window`) started when someone asks
//! for it and gone when it is closed, so that nothing of a web engine stays in memory while only the
//! tray is there. At most one is attached; asking again brings it to the front.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use idlegrid::sync::lock;
use tokio::sync::{mpsc, watch};

use crate::link::ToWindow;

/// A window that was started but has not connected within this long is taken to have failed.
const START_WAIT: Duration = Duration::from_secs(20);

/// How the window program is started: its path and arguments, and variables kept from it.
#[derive(Clone, Debug)]
pub struct WindowProgram {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env_remove: Vec<&'static str>,
}

impl WindowProgram {
    /// `idlegrid-window` beside this program, for the same data folder.
    pub fn beside_this_program(data_dir: &std::path::Path) -> std::io::Result<WindowProgram> {
        let exe = std::env::current_exe()?;
        let name = format!("idlegrid-window{}", std::env::consts::EXE_SUFFIX);
        Ok(WindowProgram {
            program: exe.with_file_name(name),
            args: vec!["--data".into(), data_dir.into()],
            env_remove: Vec::new(),
        })
    }
}

/// The attached window, if any, and how to start one.
pub struct Windows {
    program: WindowProgram,
    attached: Mutex<Option<mpsc::Sender<ToWindow>>>,
    started_at: Mutex<Option<Instant>>,
    /// Whether a window is attached (the hardware feed runs only then).
    pub open: watch::Sender<bool>,
}

/// Messages waiting for a window that reads slowly; past this, news is dropped (it is re-sent).
pub const OUTBOX: usize = 256;

impl Windows {
    pub fn new(program: WindowProgram) -> Windows {
        Windows {
            program,
            attached: Mutex::new(None),
            started_at: Mutex::new(None),
            open: watch::Sender::new(false),
        }
    }

    /// Shows the window: the attached one comes to the front, else one is started (once, however
    /// often this is asked while it starts).
    pub fn open(&self) {
        if self.send(ToWindow::Focus) {
            return;
        }
        let mut started_at = lock(&self.started_at);
        if started_at.is_some_and(|at| at.elapsed() < START_WAIT) {
            return;
        }
        match self.start() {
            Ok(()) => *started_at = Some(Instant::now()),
            Err(error) => tracing::warn!(
                %error, program = %self.program.program.display(), "cannot start the window"
            ),
        }
    }

    fn start(&self) -> std::io::Result<()> {
        let mut command = Command::new(&self.program.program);
        command.args(&self.program.args);
        for name in &self.program.env_remove {
            command.env_remove(name);
        }
        let mut child = command.spawn()?;
        tracing::info!(pid = child.id(), "window starting");
        // Reaped when it ends, so no zombie is left behind it.
        std::thread::spawn(move || child.wait());
        Ok(())
    }

    /// Takes `outbox` as the window's, unless another window is attached (false then).
    pub fn attach(&self, outbox: mpsc::Sender<ToWindow>) -> bool {
        let mut attached = lock(&self.attached);
        if attached.as_ref().is_some_and(|other| !other.is_closed()) {
            return false;
        }
        *attached = Some(outbox);
        *lock(&self.started_at) = None;
        self.open.send_replace(true);
        tracing::info!("window opened");
        true
    }

    pub fn detach(&self, outbox: &mpsc::Sender<ToWindow>) {
        let mut attached = lock(&self.attached);
        if attached
            .as_ref()
            .is_some_and(|mine| mine.same_channel(outbox))
        {
            *attached = None;
            self.open.send_replace(false);
            tracing::info!("window closed; Idlegrid goes on in the tray");
        }
    }

    /// Sends to the attached window; false if there is none. A window too slow to read misses it.
    pub fn send(&self, message: ToWindow) -> bool {
        let attached = lock(&self.attached);
        let Some(outbox) = attached.as_ref() else {
            return false;
        };
        match outbox.try_send(message) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("the window is not reading; news dropped");
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

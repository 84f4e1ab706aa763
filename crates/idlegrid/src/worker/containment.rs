//! What holds a worker process in from the parent's side. On Windows: a Job Object per worker that
//! kills it when the job's last handle closes (when the parent drops it, or dies in any way), admits
//! one process (a job's shader cannot start another), and caps its committed memory at the limit the
//! parent chose. On Linux the child limits its own address space (see `child`) and ends when its stdin
//! closes, so nothing is held here.
//!
//! And the worker's own side of it on Windows: a thread that ends the worker the moment its parent
//! ends. A Job Object does that on Windows, but not under Wine (8.0 neither kills on close nor
//! closes the worker's stdin when the parent is killed outright), and a task worker has no stdin.

use std::process::Child;

/// The parent's process id, for the worker to watch (Windows).
#[cfg(windows)]
const PARENT_ENV: &str = "IDLEGRID_WORKER_PARENT";

/// Tells the worker `command` starts who its parent is (this process), for [`watch_parent`].
pub(super) fn name_parent(command: &mut std::process::Command) {
    #[cfg(windows)]
    command.env(PARENT_ENV, std::process::id().to_string());
    #[cfg(not(windows))]
    let _ = command;
}

/// In the worker: ends this process as soon as the parent named by [`name_parent`] ends.
#[cfg(windows)]
pub(super) fn watch_parent() {
    let Some(parent) = std::env::var(PARENT_ENV)
        .ok()
        .and_then(|pid| pid.parse::<u32>().ok())
    else {
        return;
    };
    match windows::ParentWatch::open(parent) {
        Ok(watch) => {
            std::thread::spawn(move || {
                watch.wait();
                tracing::debug!(parent, "the parent has ended; so does this worker");
                end_now(1);
            });
        }
        // Already gone (or never ours): nobody will read an answer.
        Err(error) => {
            tracing::debug!(parent, %error, "the parent cannot be watched; ending");
            end_now(1);
        }
    }
}

#[cfg(not(windows))]
pub(super) fn watch_parent() {}

/// Ends this worker at once. On Windows without the exit handlers: a shader that never ends holds a
/// GPU driver thread that an orderly exit would wait for (under Wine, Mesa's exit handlers do).
pub(super) fn end_now(code: u8) -> ! {
    #[cfg(windows)]
    windows::terminate_self(u32::from(code));
    std::process::exit(i32::from(code))
}

/// Held as long as the worker should live; dropping it ends the worker on Windows.
pub(super) struct Containment {
    #[cfg(windows)]
    _job: windows::JobObject,
}

/// Puts `child` in its containment, its memory capped at `memory_limit` bytes where given.
#[cfg(windows)]
pub(super) fn contain(child: &Child, memory_limit: Option<u64>) -> std::io::Result<Containment> {
    let job = windows::JobObject::new(memory_limit)?;
    job.assign(child)?;
    Ok(Containment { _job: job })
}

#[cfg(not(windows))]
pub(super) fn contain(_child: &Child, _memory_limit: Option<u64>) -> std::io::Result<Containment> {
    Ok(Containment {})
}

/// Ends the process `pid` (a child of ours: its handle, held by `Child`, keeps the id from being
/// reused until it is waited for).
#[cfg(unix)]
pub(super) fn kill(pid: u32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(windows)]
pub(super) fn kill(pid: u32) {
    windows::terminate_process(pid);
}

#[cfg(windows)]
mod windows {
    use std::os::windows::io::AsRawHandle;
    use std::process::Child;

    use windows_sys::Win32::Foundation::{CloseHandle, HANDLE};
    use windows_sys::Win32::System::JobObjects::{
        AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_ACTIVE_PROCESS,
        JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
        JOB_OBJECT_LIMIT_PROCESS_MEMORY, JOBOBJECT_EXTENDED_LIMIT_INFORMATION,
        JobObjectExtendedLimitInformation, SetInformationJobObject,
    };
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, INFINITE, OpenProcess, PROCESS_SYNCHRONIZE, PROCESS_TERMINATE,
        TerminateProcess, WaitForSingleObject,
    };

    /// The exit code of a worker ended by its parent (a deadline, a stuck driver).
    const KILLED: u32 = 1;

    pub(super) struct JobObject(HANDLE);

    // SAFETY: a Job Object handle may be used and closed from any thread.
    unsafe impl Send for JobObject {}
    unsafe impl Sync for JobObject {}

    impl JobObject {
        pub(super) fn new(memory_limit: Option<u64>) -> std::io::Result<JobObject> {
            // SAFETY: no attributes and no name: an anonymous job only this process holds.
            let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if handle.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            let job = JobObject(handle);
            // SAFETY: a plain C struct for which all zeroes means "no limits".
            let mut limits: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
            // An unhandled exception (a driver crash) ends the worker instead of opening the
            // Windows Error Reporting dialog, which would keep it alive until a person answers.
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
                | JOB_OBJECT_LIMIT_ACTIVE_PROCESS
                | JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
            limits.BasicLimitInformation.ActiveProcessLimit = 1;
            if let Some(bytes) = memory_limit {
                limits.BasicLimitInformation.LimitFlags |= JOB_OBJECT_LIMIT_PROCESS_MEMORY;
                limits.ProcessMemoryLimit = usize::try_from(bytes).unwrap_or(usize::MAX);
            }
            // SAFETY: the pointer and size describe `limits`, which outlives the call.
            let set = unsafe {
                SetInformationJobObject(
                    job.0,
                    JobObjectExtendedLimitInformation,
                    (&raw const limits).cast(),
                    std::mem::size_of_val(&limits) as u32,
                )
            };
            if set == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(job)
        }

        /// Puts `child` in the job. The child runs from its spawn until here; it is our own worker,
        /// which starts no process before it reads its first request, so nothing escapes meanwhile.
        pub(super) fn assign(&self, child: &Child) -> std::io::Result<()> {
            // SAFETY: both handles are open: the job's is ours, the child's is held by `child`.
            let assigned = unsafe { AssignProcessToJobObject(self.0, child.as_raw_handle()) };
            if assigned == 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        }
    }

    impl Drop for JobObject {
        fn drop(&mut self) {
            // SAFETY: closed once, here; with kill-on-close this ends the worker.
            unsafe { CloseHandle(self.0) };
        }
    }

    pub(super) fn terminate_process(pid: u32) {
        // SAFETY: OpenProcess returns null or a handle we close here.
        unsafe {
            let process = OpenProcess(PROCESS_TERMINATE, 0, pid);
            if !process.is_null() {
                TerminateProcess(process, KILLED);
                CloseHandle(process);
            }
        }
    }

    pub(super) fn terminate_self(code: u32) {
        // SAFETY: the pseudo-handle of this process; TerminateProcess on it does not return.
        unsafe { TerminateProcess(GetCurrentProcess(), code) };
    }

    /// A handle that can wait for the parent to end.
    pub(super) struct ParentWatch(HANDLE);

    // SAFETY: a process handle may be waited on and closed from any thread.
    unsafe impl Send for ParentWatch {}

    impl ParentWatch {
        pub(super) fn open(pid: u32) -> std::io::Result<ParentWatch> {
            // SAFETY: returns null or a handle this struct closes.
            let handle = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
            if handle.is_null() {
                return Err(std::io::Error::last_os_error());
            }
            Ok(ParentWatch(handle))
        }

        pub(super) fn wait(&self) {
            // SAFETY: the handle is open until drop.
            unsafe { WaitForSingleObject(self.0, INFINITE) };
        }
    }

    impl Drop for ParentWatch {
        fn drop(&mut self) {
            // SAFETY: opened in `open`, closed once, here.
            unsafe { CloseHandle(self.0) };
        }
    }
}

//! What holds a worker process in from the parent's side. On Windows: a Job Object per worker that
//! kills it when the job's last handle closes (when the parent drops it, or dies in any way), admits
//! one process (a job's shader cannot start another), and caps its committed memory at the limit the
//! parent chose. On Linux the child limits its own address space (see `child`) and ends when its stdin
//! closes, so nothing is held here.

use std::process::Child;

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
    use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_TERMINATE, TerminateProcess};

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
}

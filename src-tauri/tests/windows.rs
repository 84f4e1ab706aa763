//! The app on Windows, run under Wine here: the link's pipe is open to this user only, and the tray
//! app (`idlegrid-desktop --hidden`, which has no web view) starts, answers a window over its pipe,
//! joins the local pool and works for it, is found by a second launch, and quits when the session
//! ends. The window program
//! itself needs WebView2, which Wine lacks; the page is tested in Chromium and WebKit instead.
#![cfg(windows)]

use std::os::windows::io::{AsRawHandle as _, RawHandle};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use idlegrid_app::link::{self, ToApp, ToWindow};
use idlegrid_app::owner_only::{current_user_sid, sid_string};
use idlegrid_app::transport::{self, ClientStream};
use serde_json::{Value, json};
use tokio::io::{BufReader, ReadHalf, WriteHalf};
use windows_sys::Win32::Foundation::LocalFree;
use windows_sys::Win32::Security::Authorization::{GetSecurityInfo, SE_KERNEL_OBJECT};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACL, ACL_SIZE_INFORMATION, AclSizeInformation, DACL_SECURITY_INFORMATION,
    GetAce, GetAclInformation, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
};
use windows_sys::Win32::System::SystemServices::ACCESS_ALLOWED_ACE_TYPE;

/// An object's owner, and its DACL as (ACE type, SID) pairs, read back from the system.
fn security_of(handle: RawHandle) -> (String, Vec<(u32, String)>) {
    let mut owner: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `handle` is open; the out-pointers are valid; the descriptor is freed below.
    let error = unsafe {
        GetSecurityInfo(
            handle,
            SE_KERNEL_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut owner,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    assert_eq!(error, 0, "GetSecurityInfo failed");
    // A missing DACL would let everyone in.
    assert!(!dacl.is_null(), "the object has no DACL");
    let mut size = ACL_SIZE_INFORMATION {
        AceCount: 0,
        AclBytesInUse: 0,
        AclBytesFree: 0,
    };
    // SAFETY: `dacl` points into `descriptor`, alive until freed below.
    let read = unsafe {
        GetAclInformation(
            dacl,
            (&raw mut size).cast(),
            size_of::<ACL_SIZE_INFORMATION>() as u32,
            AclSizeInformation,
        )
    };
    assert_ne!(read, 0, "GetAclInformation failed");
    let aces = (0..size.AceCount)
        .map(|index| {
            let mut ace = std::ptr::null_mut();
            // SAFETY: `index` is below the ACE count.
            assert_ne!(unsafe { GetAce(dacl, index, &mut ace) }, 0);
            let ace = ace.cast::<ACCESS_ALLOWED_ACE>();
            // SAFETY: every ACE starts with its header; allowed and denied ACEs (the kinds an
            // object's DACL holds) both keep their SID at `SidStart`.
            let (kind, sid) = unsafe { ((*ace).Header.AceType, (&raw mut (*ace).SidStart).cast()) };
            // SAFETY: the ACE's SID, inside the descriptor.
            (u32::from(kind), unsafe { sid_string(sid) }.unwrap())
        })
        .collect();
    // SAFETY: the owner SID, inside the descriptor.
    let owner = unsafe { sid_string(owner) }.unwrap();
    // SAFETY: allocated by GetSecurityInfo; `owner` and `dacl` point into it and are not used after.
    unsafe { LocalFree(descriptor) };
    (owner, aces)
}

#[test]
fn the_pipe_is_owned_by_this_user_and_open_to_nobody_else() {
    let dir = tempfile::tempdir().unwrap();
    let address = transport::address(dir.path());
    assert!(address.starts_with(r"\\.\pipe\"), "{}", address.display());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    let mut listener = transport::bind(&address).unwrap().listen().unwrap();
    let me = current_user_sid().unwrap();
    assert!(me.starts_with("S-1-5-"), "{me}");
    let only_me = (me.clone(), vec![(ACCESS_ALLOWED_ACE_TYPE, me.clone())]);
    let first = transport::connect(&address, Duration::from_secs(10))
        .unwrap()
        .into_async()
        .unwrap();
    assert_eq!(security_of(first.as_raw_handle()), only_me);
    // The instance made for the next client is the same pipe, with the same descriptor.
    runtime.block_on(listener.accept()).unwrap();
    let second = transport::connect(&address, Duration::from_secs(10))
        .unwrap()
        .into_async()
        .unwrap();
    assert_eq!(security_of(second.as_raw_handle()), only_me);
    // And the app's own end.
    let served = runtime.block_on(listener.accept()).unwrap();
    assert_eq!(security_of(served.as_raw_handle()), only_me);
}

/// A client that speaks to the app over its pipe as the window does.
struct Window {
    reader: BufReader<ReadHalf<ClientStream>>,
    writer: WriteHalf<ClientStream>,
    line: String,
    next_id: u64,
}

impl Window {
    async fn connect(address: &Path, wait: Duration) -> Window {
        let connection = transport::connect(address, wait).expect("the app is not listening");
        let (reader, writer) = tokio::io::split(connection.into_async().unwrap());
        let mut window = Window {
            reader: BufReader::new(reader),
            writer,
            line: String::new(),
            next_id: 1,
        };
        link::write(&mut window.writer, &ToApp::Window)
            .await
            .unwrap();
        window
    }

    /// The next message that is not one of the node's events; None when the app hung up.
    async fn next(&mut self) -> Option<ToWindow> {
        loop {
            match link::read::<ToWindow, _>(&mut self.reader, &mut self.line).await {
                Ok(Some(ToWindow::Event { .. })) => {}
                Ok(message) => return message,
                Err(error) => panic!("the link broke: {error}"),
            }
        }
    }

    async fn call(&mut self, command: &str, args: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let call = ToApp::Call {
            id,
            command: command.into(),
            args,
        };
        link::write(&mut self.writer, &call).await.unwrap();
        loop {
            match self.next().await {
                Some(ToWindow::Reply {
                    id: answered,
                    result,
                }) if answered == id => {
                    return result.unwrap_or_else(|error| panic!("{command} failed: {error}"));
                }
                Some(_) => {}
                None => panic!("the app hung up during {command}"),
            }
        }
    }
}

/// The app, ended if the test fails before it quits (Wine would keep it running).
struct App(Child);

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn desktop(data: &Path, args: &[&str], log: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_idlegrid-desktop"));
    command
        .args(args)
        .arg("--data")
        .arg(data)
        // Never this prefix's Credential Manager: the key stays in the data folder.
        .env("IDLEGRID_KEYSTORE", "file")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("out")).unwrap())
        .stderr(std::fs::File::create(log).unwrap());
    command
}

fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn the_tray_app_runs_hidden_answers_its_window_and_quits_when_the_session_ends() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The address is named after the folder's canonical path, which needs the folder.
    std::fs::create_dir_all(&data).unwrap();
    let log = dir.path().join("app.log");
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut app = App(desktop(&data, &["--hidden", "--local-pool"], &log)
        .spawn()
        .unwrap());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let address = transport::address(&data);
    let mut window = runtime.block_on(Window::connect(&address, Duration::from_secs(120)));

    let status = runtime.block_on(window.call("get_status", json!({})));
    assert_eq!(status["sharing"], true, "{status}");
    assert!(status["kind"].is_string(), "{status}");
    // Started with --local-pool: it joins the local pool, and runs its sample work in its GPU worker
    // (llvmpipe through Wine's Vulkan) until it has earned something.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pools = loop {
        let pools = runtime.block_on(window.call("get_pools", json!({})));
        let earned = pools[0]["earned_today"]
            .as_str()
            .is_some_and(|amount| amount != "0");
        if earned || Instant::now() > deadline {
            break pools;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(
        (pools[0]["name"].as_str(), pools[0]["local"].as_bool()),
        (Some("Local pool"), Some(true)),
        "{pools}\n{}",
        said()
    );
    assert_ne!(pools[0]["earned_today"], "0", "{pools}\n{}", said());

    // A second start in the tray only (at login, say) finds the first and ends.
    let second_log = dir.path().join("second.log");
    let mut second = desktop(&data, &["--hidden"], &second_log).spawn().unwrap();
    let ended = wait(&mut second, Duration::from_secs(60));
    assert!(
        ended.is_some_and(|status| status.success()),
        "{ended:?}: {}",
        std::fs::read_to_string(&second_log).unwrap_or_default()
    );
    // A start from the Start menu finds it too, and its window comes to the front.
    let third_log = dir.path().join("third.log");
    let mut third = desktop(&data, &[], &third_log).spawn().unwrap();
    let ended = wait(&mut third, Duration::from_secs(60));
    assert!(
        ended.is_some_and(|status| status.success()),
        "{ended:?}: {}",
        std::fs::read_to_string(&third_log).unwrap_or_default()
    );
    assert_eq!(runtime.block_on(window.next()), Some(ToWindow::Focus));

    // The session ends (logging off): it gives its leases back and quits, and hangs up.
    end_session(app.0.id());
    let ended = wait(&mut app.0, Duration::from_secs(60));
    assert!(
        ended.is_some_and(|status| status.success()),
        "{ended:?}: {}",
        said()
    );
    assert!(said().contains("Idlegrid stopped"), "{}", said());
    assert_eq!(runtime.block_on(window.next()), None);
}

// The few user32 calls that tell one process's windows that the session ends (windows-sys would
// need a feature that rebuilds every crate that uses it).
#[link(name = "user32")]
unsafe extern "system" {
    fn EnumWindows(callback: extern "system" fn(isize, isize) -> i32, context: isize) -> i32;
    fn GetWindowThreadProcessId(window: isize, process: *mut u32) -> u32;
    fn SendMessageW(window: isize, message: u32, wparam: usize, lparam: isize) -> isize;
}
const WM_ENDSESSION: u32 = 0x0016;
const ENDSESSION_LOGOFF: isize = 0x8000_0000;

/// What Windows sends each program's top-level windows when the person logs off.
fn end_session(process: u32) {
    extern "system" fn collect(window: isize, context: isize) -> i32 {
        // SAFETY: `context` is the Vec below, alive during EnumWindows.
        unsafe { (*(context as *mut Vec<isize>)).push(window) };
        1
    }
    let mut windows: Vec<isize> = Vec::new();
    // SAFETY: `collect` only pushes to `windows`, which outlives the call.
    unsafe { EnumWindows(collect, (&raw mut windows) as isize) };
    let theirs: Vec<isize> = windows
        .into_iter()
        .filter(|&window| {
            let mut owner = 0;
            // SAFETY: `owner` is a valid out-pointer.
            unsafe { GetWindowThreadProcessId(window, &mut owner) };
            owner == process
        })
        .collect();
    assert!(!theirs.is_empty(), "the app has no windows to tell");
    for window in theirs {
        // SAFETY: plain values; a window gone by now makes this fail, harmlessly.
        unsafe { SendMessageW(window, WM_ENDSESSION, 1, ENDSESSION_LOGOFF) };
    }
}

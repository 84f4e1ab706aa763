//! `idlegrid id` as a person's machine runs it: the key lives in a real Secret Service (gnome-keyring
//! on a private D-Bus session, in a throwaway home, so no person's keyring is touched) and survives a
//! restart of it; where asked, it lives in a file only its owner can read, and a warning says so.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use iroh::PublicKey;

/// A home, data and runtime dir of its own, so the command finds nobody's keyring but the test's.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        for dir in ["home", "run"] {
            std::fs::create_dir(root.path().join(dir)).unwrap();
        }
        // gnome-keyring and D-Bus refuse a runtime dir others can enter.
        set_mode(&root.path().join("run"), 0o700);
        Sandbox { root }
    }

    fn data(&self) -> PathBuf {
        self.root.path().join("data")
    }

    fn command(&self, program: &str) -> Command {
        let home = self.root.path().join("home");
        let mut command = Command::new(program);
        command
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("XDG_RUNTIME_DIR", self.root.path().join("run"))
            // No display: a locked keyring must fail, not pop up a prompt on the developer's screen.
            .env_remove("DISPLAY")
            .env_remove("WAYLAND_DISPLAY")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env_remove("IDLEGRID_KEYSTORE")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `script` in a fresh D-Bus session, with `$0` the `idlegrid` binary and `$1` the data dir.
    fn in_dbus_session(&self, script: &str) -> Output {
        require_secret_service_tools();
        let mut command = self.command("dbus-run-session");
        command
            .args(["--", "sh", "-c", script, env!("CARGO_BIN_EXE_idlegrid")])
            .arg(self.data());
        run(command)
    }
}

#[cfg(target_os = "linux")]
const UNLOCKED: &str =
    "echo -n test | gnome-keyring-daemon --unlock --components=secrets >/dev/null";

fn require_secret_service_tools() {
    for tool in ["dbus-run-session", "gnome-keyring-daemon"] {
        let found = std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
        assert!(
            found,
            "{tool} is missing: this test needs a real Secret Service; run scripts/setup (CI installs \
             dbus and gnome-keyring)"
        );
    }
}

/// Runs `command` to its end, killing it after a minute: a wedged D-Bus session must fail the test,
/// not hang it.
fn run(mut command: Command) -> Output {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            let output = child.wait_with_output().unwrap();
            panic!(
                "{command:?} ran for over a minute; stderr: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The public keys printed on stdout, one a line, after checking that the script succeeded.
fn keys(output: &Output) -> Vec<PublicKey> {
    assert!(
        output.status.success(),
        "{:?}; stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|line| {
            PublicKey::from_str(line)
                .unwrap_or_else(|e| panic!("{line:?} is not a public key: {e}"))
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[test]
fn the_key_lives_in_a_real_secret_service_and_survives_its_restart() {
    let sandbox = Sandbox::new();
    let first = sandbox.in_dbus_session(&format!(
        "{UNLOCKED} && \"$0\" id --data \"$1\" && \"$0\" id --data \"$1\""
    ));
    let first = keys(&first);
    assert_eq!(first.len(), 2, "{first:?}");
    assert_eq!(first[0], first[1]);
    assert!(
        !sandbox.data().join("identity.key").exists(),
        "the key went to a file, not the keyring"
    );
    let keyring = sandbox
        .root
        .path()
        .join("home/.local/share/keyrings/login.keyring");
    assert!(
        keyring.is_file(),
        "gnome-keyring wrote no {}",
        keyring.display()
    );

    // A new session is a new gnome-keyring daemon, which has only what it saved on disk.
    let again = keys(&sandbox.in_dbus_session(&format!("{UNLOCKED} && \"$0\" id --data \"$1\"")));
    assert_eq!(again, [first[0]]);
    assert!(!sandbox.data().join("identity.key").exists());

    // Another data dir on the same machine is another identity.
    let other = sandbox.in_dbus_session(&format!("{UNLOCKED} && \"$0\" id --data \"$1/other\""));
    let other = keys(&other);
    assert_eq!(other.len(), 1);
    assert_ne!(other[0], first[0]);
}

#[cfg(target_os = "linux")]
#[test]
fn a_locked_keyring_is_an_error_not_a_new_identity() {
    let sandbox = Sandbox::new();
    let created = keys(&sandbox.in_dbus_session(&format!("{UNLOCKED} && \"$0\" id --data \"$1\"")));
    // Not unlocked this time: the daemon is started by D-Bus activation and cannot ask for a password.
    let locked = sandbox.in_dbus_session("\"$0\" id --data \"$1\"");
    let stderr = String::from_utf8_lossy(&locked.stderr);
    assert!(!locked.status.success(), "stderr: {stderr}");
    assert!(locked.stdout.is_empty());
    assert!(
        stderr.contains("error: cannot read the identity from the OS keyring")
            && stderr.contains("unlock"),
        "stderr: {stderr}"
    );
    assert!(!sandbox.data().join("identity.key").exists());
    let unlocked =
        keys(&sandbox.in_dbus_session(&format!("{UNLOCKED} && \"$0\" id --data \"$1\"")));
    assert_eq!(unlocked, created);
}

#[test]
fn with_the_file_keystore_the_key_is_in_a_private_file_and_a_warning_says_so() {
    let sandbox = Sandbox::new();
    let id = || {
        let mut command = sandbox.command(env!("CARGO_BIN_EXE_idlegrid"));
        command
            .env("IDLEGRID_KEYSTORE", "file")
            .arg("id")
            .arg("--data")
            .arg(sandbox.data());
        run(command)
    };
    let first = id();
    let second = id();
    let key = keys(&first);
    assert_eq!(key.len(), 1);
    assert_eq!(keys(&second), key);

    let file = sandbox.data().canonicalize().unwrap().join("identity.key");
    assert_eq!(mode(&file), 0o600);
    let stderr = String::from_utf8(first.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "stderr: {stderr}");
    for part in [
        "WARN",
        "no OS keyring was reachable (IDLEGRID_KEYSTORE=file)",
        &format!(
            "identity key is in {}, readable only by you",
            file.display()
        ),
    ] {
        assert!(stderr.contains(part), "{part:?} not in stderr: {stderr}");
    }
    assert!(
        second.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&second.stderr)
    );
}

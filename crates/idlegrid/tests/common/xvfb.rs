//! A virtual X server for a test (Xvfb), and real input to it through xdotool.
//!
//! Shared with the whole-system tests in the top-level tests/, which include this file by path.

/// A virtual X server for one test, on the first free display; stopped on drop.
pub struct Xvfb {
    child: std::process::Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Xvfb {
        use std::io::BufRead;
        let mut child = std::process::Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "640x480x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("Xvfb (Debian package xvfb; scripts/setup installs it)");
        let mut line = String::new();
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        let number: u32 = line.trim().parse().expect("Xvfb printed its display");
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }

    /// Real input through XTEST, as xdotool sends it: `mousemove_relative 10 20`, `key a`.
    pub fn xdotool(&self, args: &[&str]) {
        let status = std::process::Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .status()
            .expect("xdotool (Debian package xdotool; scripts/setup installs it)");
        assert!(status.success(), "xdotool {args:?} failed");
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

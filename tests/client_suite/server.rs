//! Starts a vim25 server process for a test (vcsim, or `labsync sim serve`) on a free loopback
//! port, reads `url: …` (and `thumbprint: …`) from its first stdout lines, and stops it with
//! SIGTERM when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running server.
pub struct Server {
    child: Child,
    pub url: String,
    pub thumbprint: Option<String>,
}

impl Server {
    /// Runs `program args…` with `envs`, waiting for its `url:` line (and `thumbprint:` when
    /// `tls`).
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)], tls: bool) -> Server {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut next = |prefix: &str| -> String {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("{} exited before printing {prefix}", program.display()))
                .expect("readable stdout");
            line.strip_prefix(prefix)
                .unwrap_or_else(|| panic!("expected {prefix:?}, got {line:?}"))
                .trim()
                .to_string()
        };
        let url = next("url:");
        let thumbprint = tls.then(|| next("thumbprint:"));
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            url,
            thumbprint,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let _ = self.child.wait();
    }
}

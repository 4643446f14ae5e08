//! Child processes that die with their guard, together with everything they
//! started (chromedriver's Chromium processes), also when a test panics.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Lines of a child's stderr kept for failure reports.
const LOG_LINES: usize = 400;

/// A child process in its own process group. Dropping the guard sends
/// SIGTERM to the whole group, waits briefly, then SIGKILLs what is left, so
/// grandchildren (Chromium under chromedriver) do not outlive the test.
pub struct ProcessGuard {
    name: String,
    child: Child,
    log: Arc<Mutex<VecDeque<String>>>,
}

impl ProcessGuard {
    /// Spawns `cmd` as the leader of a new process group. Its stderr must be
    /// piped by the caller if [`ProcessGuard::capture_stderr`] is used.
    pub fn spawn(name: &str, mut cmd: Command) -> std::io::Result<ProcessGuard> {
        cmd.process_group(0);
        let child = cmd.spawn()?;
        Ok(ProcessGuard { name: name.to_string(), child, log: Arc::new(Mutex::new(VecDeque::new())) })
    }

    /// Keeps the last lines of the child's (piped) stderr in memory, read by
    /// a background thread so the pipe never fills up and blocks the child.
    pub fn capture_stderr(&mut self) {
        if let Some(err) = self.child.stderr.take() {
            let log = self.log.clone();
            std::thread::spawn(move || drain_lines(err, &log));
        }
    }

    /// The process id (also its process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The child's stdout, if it was piped and not taken yet.
    pub fn take_stdout(&mut self) -> Option<std::process::ChildStdout> {
        self.child.stdout.take()
    }

    /// `Some(status)` once the child has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The captured stderr tail, one line per entry.
    pub fn log_tail(&self) -> Vec<String> {
        self.log.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }

    fn signal_group(&self, sig: libc::c_int) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill(2) with a negative pid signals the process group we
        // created for this child; it has no memory-safety preconditions.
        unsafe {
            libc::kill(-pgid, sig);
        }
    }
}

fn drain_lines(from: impl Read, log: &Mutex<VecDeque<String>>) {
    for line in BufReader::new(from).lines() {
        let Ok(line) = line else { break };
        if let Ok(mut l) = log.lock() {
            if l.len() >= LOG_LINES {
                l.pop_front();
            }
            l.push_back(line);
        }
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let tail = self.log_tail();
            if !tail.is_empty() {
                eprintln!("---- last {} stderr lines of {} (pid {}) ----", tail.len(), self.name, self.id());
                for l in tail {
                    eprintln!("{l}");
                }
                eprintln!("---- end of {} log ----", self.name);
            }
        }
        self.signal_group(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // Whatever is left of the group (the leader if it ignored SIGTERM,
        // Chromium helpers that outlived chromedriver).
        self.signal_group(libc::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! A spawned server process, its leak watchdog, and readiness polling.

use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::HarnessError;

/// Stops the server and removes its directory once the owning test process
/// is gone without having done so itself (SIGKILL, CI timeout: no `Drop`).
///
/// It watches its *own* parent pid rather than polling the owner's pid:
/// when the owner dies, the watchdog is re-parented at once, while the dead
/// owner can linger as a zombie that `kill -0` still reports alive. (Linux's
/// parent-death signal is no substitute: it fires when the spawning *thread*
/// exits, and every Rust test runs on its own thread.) SIGINT and SIGHUP are
/// ignored so that a Ctrl-C, which also stops the servers, still leaves the
/// watchdog to delete the directories. A zombie server counts as stopped: once
/// the owner is gone nobody may reap it (PID 1 in a container often does not).
///
/// Arguments: owner pid, server pid, directory, signal for a clean stop.
const WATCHDOG: &str = r#"
trap '' INT HUP
owner=$1 server=$2 dir=$3 signal=$4
status_field() {
    while read -r key value rest; do
        if [ "$key" = "$2" ]; then echo "$value"; return 0; fi
    done 2>/dev/null < "/proc/$1/status"
    return 1
}
owner_alive() { [ "$(status_field $$ PPid:)" = "$owner" ]; }
server_alive() { state=$(status_field "$server" State:) && [ "$state" != Z ]; }
while owner_alive && server_alive; do sleep 1; done
owner_alive && exit 0
kill -s "$signal" "$server" 2>/dev/null
i=0
while server_alive && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
kill -s KILL "$server" 2>/dev/null
rm -rf "$dir"
"#;

/// How often readiness is probed while a server starts.
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A running server; dropping it kills the server (SIGKILL) if it still
/// runs, reaps it, and ends the watchdog. Servers that deserve a gentler
/// stop get it from their owner's `Drop` before this one runs.
pub(crate) struct ServerProcess {
    child: Child,
    watchdog: Option<Child>,
}

impl ServerProcess {
    /// Spawns `cmd` with stdout and stderr going to a new file `log`, and a
    /// watchdog that, should this process die, stops the server with
    /// `stop_signal` and deletes `dir`.
    pub(crate) fn spawn(
        mut cmd: Command,
        log: &Path,
        dir: &Path,
        stop_signal: &str,
    ) -> Result<Self, HarnessError> {
        let log_err = || HarnessError::io(format!("creating log file {}", log.display()));
        let log_file = File::create(log).map_err(log_err())?;
        cmd.stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(log_err())?)
            .stderr(log_file);
        let child = cmd
            .spawn()
            .map_err(HarnessError::io(format!("spawning {cmd:?}")))?;
        let mut process = Self {
            child,
            watchdog: None,
        };
        // On error `process` drops here and kills the fresh server.
        let watchdog = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("coffer-testkit-watchdog")
            .arg(std::process::id().to_string())
            .arg(process.child.id().to_string())
            .arg(dir)
            .arg(stop_signal)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(HarnessError::io("spawning the server watchdog (sh)"))?;
        process.watchdog = Some(watchdog);
        Ok(process)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Polls `ready` until it returns true. Fails, with the reason, when the
    /// process exits first or `timeout` passes.
    pub(crate) fn wait_ready(
        &mut self,
        timeout: Duration,
        mut ready: impl FnMut() -> bool,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("the server exited ({status})")),
                Ok(None) => {}
                Err(e) => return Err(format!("waiting for the server: {e}")),
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready after {timeout:?}"));
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether the server process has exited (and has been reaped).
    fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if !self.has_exited() {
            // Errors are ignored: nothing useful can be done about them in
            // a destructor, and `wait` below reaps whatever happened.
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Some(watchdog) = &mut self.watchdog {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(could not read the log: {e})"),
    }
}

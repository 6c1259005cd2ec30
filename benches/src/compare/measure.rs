//! Measuring child processes: wall time, CPU time and peak RSS.
//!
//! `std::process` reaps a child with `waitpid`, which throws its resource usage away, and
//! `getrusage(RUSAGE_CHILDREN)` cannot tell one child from another: its `ru_maxrss` is the
//! maximum over *every* child waited for so far, so after a 1 GB `pg_dump` every later run
//! would report at least 1 GB. So each measured child is reaped with `wait4(2)`, which returns
//! the usage of that one child **including its own reaped descendants** (pg_dump's parallel
//! workers are forked children it waits for): user + system time summed over them, and the
//! largest peak RSS of any one of them (not the sum; a multi-process tool using several
//! processes at once may hold more memory in total than its row shows).
//!
//! `/usr/bin/time -f '%e %U %S %M'` gives the same figures (it calls `wait4` too), but it
//! is a separate Debian package that may be missing, and its output has to be told apart
//! from the tool's own stderr; one small `unsafe` call is simpler and needs nothing installed.
//!
//! The server's CPU time is read from `/proc/<postmaster>/stat`: a backend's CPU time is
//! added to the postmaster's `cutime`/`cstime` when it exits and the postmaster reaps it, so
//! the difference across a run (after waiting for the run's backends to be gone) is what the
//! server spent serving it.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What one measured run cost.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    /// From spawning the (first) process to reaping the (last) one.
    pub wall: Duration,
    /// User CPU time, children of the children included, summed over all processes.
    pub user: Duration,
    /// System CPU time, likewise.
    pub sys: Duration,
    /// Largest peak resident set of any one process, in bytes.
    pub max_rss: u64,
}

impl Usage {
    /// User + system seconds.
    pub fn cpu_secs(&self) -> f64 {
        (self.user + self.sys).as_secs_f64()
    }

    fn absorb(&mut self, other: &Usage) {
        self.user += other.user;
        self.sys += other.sys;
        self.max_rss = self.max_rss.max(other.max_rss);
    }
}

/// Waits for process `pid` (a child of this process) with `wait4(2)` and returns its exit
/// status and resource usage (its own plus that of its reaped descendants).
#[allow(unsafe_code)]
fn wait4(pid: u32) -> io::Result<(ExitStatus, Usage)> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers (and `timeval`s of integers), for which
    // all-zero bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid, exclusively borrowed, properly aligned locals
        // that outlive the call; `wait4` writes only into them. `pid` is a child we spawned
        // and that nothing else waits for (its `std::process::Child` is never waited on).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    let usage = Usage {
        wall: Duration::ZERO,
        user: tv(ru.ru_utime),
        sys: tv(ru.ru_stime),
        // Linux reports ru_maxrss in KiB.
        max_rss: (ru.ru_maxrss.max(0) as u64) * 1024,
    };
    Ok((ExitStatus::from_raw(status), usage))
}

/// A failed measured command.
#[derive(Debug)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn spawn(cmd: &mut Command, stderr: &File) -> Result<Child, RunError> {
    let err = stderr
        .try_clone()
        .map_err(|e| RunError(format!("cloning the log file handle: {e}")))?;
    cmd.stdin(std::process::Stdio::null()).stderr(err);
    cmd.spawn()
        .map_err(|e| RunError(format!("spawning {cmd:?}: {e}")))
}

fn check(status: ExitStatus, what: &str) -> Result<(), RunError> {
    if status.success() {
        Ok(())
    } else {
        Err(RunError(format!("{what} failed: {status}")))
    }
}

/// Runs `cmd` to completion and measures it. Its stdin is `/dev/null` and its stderr goes to
/// `stderr` (a log file); set its stdout beforehand.
pub fn run(cmd: &mut Command, stderr: &File) -> Result<Usage, RunError> {
    let what = format!("{cmd:?}");
    let started = Instant::now();
    let child = spawn(cmd, stderr)?;
    let (status, mut usage) =
        wait4(child.id()).map_err(|e| RunError(format!("waiting for {what}: {e}")))?;
    usage.wall = started.elapsed();
    drop(child);
    check(status, &what)?;
    Ok(usage)
}

/// Runs `cmds` with at most `jobs` of them at a time, in the order given (the next one starts
/// as soon as any running one ends), and measures the whole set: wall time from the first
/// spawn to the last exit, CPU summed, the largest peak RSS of any one process.
pub fn run_parallel(cmds: Vec<Command>, jobs: usize, stderr: &File) -> Result<Usage, RunError> {
    let mut queue: VecDeque<Command> = cmds.into();
    let (tx, rx) = mpsc::channel();
    let mut running = 0usize;
    let mut total = Usage::default();
    let mut failure = None;
    let started = Instant::now();
    loop {
        while failure.is_none() && running < jobs.max(1) {
            let Some(mut cmd) = queue.pop_front() else {
                break;
            };
            let what = format!("{cmd:?}");
            match spawn(&mut cmd, stderr) {
                Ok(child) => {
                    let tx = tx.clone();
                    // One waiting thread per child: wait4(-1) could reap processes that are
                    // not ours to reap (the test server and its watchdog are our children too).
                    std::thread::spawn(move || {
                        let r = wait4(child.id());
                        drop(child);
                        let _ = tx.send((what, r));
                    });
                    running += 1;
                }
                Err(e) => failure = Some(e),
            }
        }
        if running == 0 {
            break;
        }
        let (what, r) = rx.recv().expect("a waiting thread is alive");
        running -= 1;
        match r {
            Ok((status, usage)) => {
                total.absorb(&usage);
                if let Err(e) = check(status, &what) {
                    failure.get_or_insert(e);
                }
            }
            Err(e) => {
                failure.get_or_insert(RunError(format!("waiting for {what}: {e}")));
            }
        }
    }
    total.wall = started.elapsed();
    match failure {
        Some(e) => Err(e),
        None => Ok(total),
    }
}

/// The CPU time the PostgreSQL server spends on behalf of the measured clients.
pub struct ServerCpu {
    postmaster: u32,
    tick: f64,
}

impl ServerCpu {
    /// For the postmaster with pid `postmaster`; `None` if its `/proc` entry is unreadable.
    pub fn new(postmaster: u32) -> Option<Self> {
        let tick = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or(100.0);
        let me = ServerCpu {
            postmaster,
            tick: 1.0 / tick,
        };
        me.cpu_secs().map(|_| me)
    }

    /// Seconds of CPU of the postmaster and every child of it that has exited so far
    /// (utime + stime + cutime + cstime).
    pub fn cpu_secs(&self) -> Option<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.postmaster)).ok()?;
        // Fields after the parenthesised command name; field n (1-based) is at index n - 3.
        let rest = &stat[stat.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = [11, 12, 13, 14]
            .iter()
            .map(|&i| f.get(i).and_then(|v| v.parse::<u64>().ok()))
            .sum::<Option<u64>>()?;
        Some(ticks as f64 * self.tick)
    }

    /// The postmaster's current children (the server's own processes and any backends).
    pub fn children(&self) -> HashSet<u32> {
        let p = self.postmaster;
        std::fs::read_to_string(format!("/proc/{p}/task/{p}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|s| s.parse().ok())
            .collect()
    }

    /// Waits (up to 10 s) until every child of the postmaster not in `baseline` is gone, so
    /// that the backends of the last run have exited and their CPU time has been counted.
    pub fn settle(&self, baseline: &HashSet<u32>) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.children().is_subset(baseline) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> File {
        tempfile::tempfile().expect("temp file")
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]).stdout(std::process::Stdio::null());
        c
    }

    #[test]
    fn run_measures_one_child_and_its_children() {
        // The awk child burns CPU and memory; sh waits for it, so wait4 on sh counts it.
        let u = run(
            &mut sh("awk 'BEGIN { for (i = 0; i < 300000; i++) a[i] = i }'; :"),
            &log(),
        )
        .expect("runs");
        assert!(u.wall > Duration::ZERO);
        assert!(u.cpu_secs() > 0.0, "{u:?}");
        assert!(u.max_rss > 4 << 20, "{u:?}");
    }

    #[test]
    fn run_reports_failure() {
        let e = run(&mut sh("exit 3"), &log()).expect_err("fails");
        assert!(e.0.contains("exit status: 3"), "{e}");
    }

    #[test]
    fn run_parallel_runs_every_command() {
        let dir = tempfile::tempdir().expect("temp dir");
        let cmds = (0..5)
            .map(|i| sh(&format!("touch {}/{i}", dir.path().display())))
            .collect();
        run_parallel(cmds, 2, &log()).expect("runs");
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 5);
        let cmds = vec![sh("true"), sh("exit 1"), sh("true")];
        assert!(run_parallel(cmds, 2, &log()).is_err());
    }
}

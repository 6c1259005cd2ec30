//! The competitors: coffer and what users would run instead, each as a measured child process.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use coffer_testkit::PgServer;

use super::dataset::Dataset;
use super::measure::{self, RunError, Usage};

/// One way of getting the data out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `coffer dump pg -j JOBS [-Z LEVEL] -f out.coffer`.
    Coffer { jobs: usize, level: Option<i32> },
    /// `pg_dump -Fc -f out.dump` (default compression: gzip level 6).
    PgDumpCustom,
    /// `pg_dump -Fd -j JOBS -f out.dir` (gzip level 6 per table file).
    PgDumpDir { jobs: usize },
    /// `psql -c "COPY t TO STDOUT" > /dev/null` over every user table, JOBS at a time,
    /// largest first: what reading the data costs with no compression, no file and no
    /// schema — the floor any dump tool stands on.
    CopyFloor { jobs: usize },
    /// `coffer restore pg ARCHIVE -d FRESH -j JOBS --json`, from the archive of
    /// `coffer dump pg -j JOBS` (`compare --restore`).
    CofferRestore { jobs: usize },
    /// `pg_restore -j JOBS -d FRESH DIR`, from the directory of `pg_dump -Fd -j JOBS`.
    PgRestoreDir { jobs: usize },
    /// `pg_restore -d FRESH FILE` (one connection), from the file of `pg_dump -Fc`.
    PgRestoreCustom,
}

/// Names accepted by `--tools`.
pub const TOOL_NAMES: &str = "coffer, coffer-z1, coffer-j1, pg_dump-fc, pg_dump-fd, copy; \
with --restore: coffer-restore, pg_restore-fd, pg_restore-fc";

impl Tool {
    /// The tool for a `--tools` name, given the `--jobs` figure.
    pub fn parse(name: &str, jobs: usize) -> Option<Tool> {
        Some(match name {
            "coffer" => Tool::Coffer { jobs, level: None },
            "coffer-z1" => Tool::Coffer {
                jobs,
                level: Some(1),
            },
            "coffer-j1" => Tool::Coffer {
                jobs: 1,
                level: None,
            },
            "pg_dump-fc" => Tool::PgDumpCustom,
            "pg_dump-fd" => Tool::PgDumpDir { jobs },
            "copy" => Tool::CopyFloor { jobs },
            "coffer-restore" => Tool::CofferRestore { jobs },
            "pg_restore-fd" => Tool::PgRestoreDir { jobs },
            "pg_restore-fc" => Tool::PgRestoreCustom,
            _ => return None,
        })
    }

    /// The row label.
    pub fn label(&self) -> String {
        match self {
            Tool::Coffer { jobs, level: None } => format!("coffer -j{jobs}"),
            Tool::Coffer {
                jobs,
                level: Some(l),
            } => format!("coffer -j{jobs} -Z{l}"),
            Tool::PgDumpCustom => "pg_dump -Fc".into(),
            Tool::PgDumpDir { jobs } => format!("pg_dump -Fd -j{jobs}"),
            Tool::CopyFloor { jobs } => format!("COPY floor -j{jobs}"),
            Tool::CofferRestore { jobs } => format!("coffer restore -j{jobs}"),
            Tool::PgRestoreDir { jobs } => format!("pg_restore -Fd -j{jobs}"),
            Tool::PgRestoreCustom => "pg_restore -Fc -j1".into(),
        }
    }

    /// For a restore, the dump whose output it reads (made once, untimed, before the rounds).
    pub fn source(&self) -> Option<Tool> {
        match self {
            Tool::CofferRestore { jobs } => Some(Tool::Coffer {
                jobs: *jobs,
                level: None,
            }),
            Tool::PgRestoreDir { jobs } => Some(Tool::PgDumpDir { jobs: *jobs }),
            Tool::PgRestoreCustom => Some(Tool::PgDumpCustom),
            _ => None,
        }
    }

    /// A file-name-safe key.
    fn key(&self) -> String {
        self.label()
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }
}

/// Everything a run needs.
pub struct Ctx<'a> {
    pub pg: &'a PgServer,
    pub dataset: &'a Dataset,
    pub coffer: &'a Path,
    /// Where outputs and logs go.
    pub dir: &'a Path,
    /// Tables per psql invocation for the COPY floor's small tables.
    pub copy_batch: usize,
    /// Extra arguments for every `coffer dump pg` (`--coffer-args`).
    pub coffer_args: &'a [String],
}

/// One measured run.
#[derive(Clone, Debug)]
pub struct RunResult {
    pub usage: Usage,
    /// CPU seconds of the server's backends for this run, if measurable.
    pub server_cpu: Option<f64>,
    /// Bytes written (file, or the directory's files); `None` for the COPY floor.
    pub output_bytes: Option<u64>,
    /// coffer's `raw_bytes` (COPY text bytes it read or loaded), from its `--json` summary.
    pub raw_bytes: Option<u64>,
    /// `coffer restore pg --json`'s `phases` (name, seconds), in the order it ran them.
    pub phases: Vec<(String, f64)>,
    /// For a restore: whether the pgbench tables' row counts in the restored database
    /// matched the source's (a mismatch is also printed).
    pub rows_ok: Option<bool>,
}

/// Tables below this size are copied several to one psql invocation in the COPY floor.
const SMALL_TABLE: u64 = 1 << 20;

fn dir_size(p: &Path) -> u64 {
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => std::fs::read_dir(p)
            .map(|it| it.flatten().map(|e| dir_size(&e.path())).sum())
            .unwrap_or(0),
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn remove(p: &Path) {
    if p.is_dir() {
        let _ = std::fs::remove_dir_all(p);
    } else {
        let _ = std::fs::remove_file(p);
    }
}

fn log_file(path: &Path) -> Result<File, RunError> {
    File::create(path).map_err(|e| RunError(format!("{}: {e}", path.display())))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Ctx<'_> {
    /// The output path of `tool` (removed before each of its runs).
    pub fn output(&self, tool: &Tool) -> PathBuf {
        let ext = match tool {
            Tool::Coffer { .. } => "coffer",
            Tool::PgDumpCustom => "dump",
            Tool::PgDumpDir { .. } => "dir",
            Tool::CopyFloor { .. } => "none",
            // A restore writes no file; its input is its source's output.
            _ => "none",
        };
        self.dir.join(format!("{}.{ext}", tool.key()))
    }

    /// `coffer <verb> pg -h … -p … -U … -d DB -j JOBS`, with no `PG*` variables inherited.
    fn coffer_base(&self, verb: &str, db: &str, jobs: usize) -> Command {
        let mut cmd = Command::new(self.coffer);
        for (name, _) in std::env::vars_os() {
            if name.as_encoded_bytes().starts_with(b"PG") {
                cmd.env_remove(name);
            }
        }
        cmd.args([verb, "pg", "-h", self.pg.host(), "-p"])
            .arg(self.pg.port().to_string())
            .args(["-U", self.pg.user(), "-d", db, "-j"])
            .arg(jobs.to_string());
        cmd
    }

    fn coffer_cmd(&self, jobs: usize, level: Option<i32>, out: &Path) -> Command {
        let mut cmd = self.coffer_base("dump", &self.dataset.db, jobs);
        if let Some(l) = level {
            cmd.arg("-Z").arg(l.to_string());
        }
        cmd.args(self.coffer_args);
        cmd.arg("--json").arg("-f").arg(out);
        cmd
    }

    /// The COPY floor's psql commands: one per table of 1 MiB or more, largest first, then
    /// the small tables `copy_batch` to a psql (several `-c`), so that connection start-up,
    /// which a dump tool pays once per worker, does not swamp the floor.
    fn copy_cmds(&self) -> Vec<Command> {
        let psql = |tables: &[super::dataset::Table]| {
            let mut cmd = self.pg.client("psql");
            cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &self.dataset.db]);
            for t in tables {
                cmd.arg("-c").arg(format!("COPY {} TO STDOUT", t.qualified));
            }
            cmd.stdout(Stdio::null());
            cmd
        };
        let (big, small): (Vec<_>, Vec<_>) = self
            .dataset
            .tables
            .iter()
            .cloned()
            .partition(|t| t.bytes >= SMALL_TABLE);
        let mut cmds: Vec<Command> = big.chunks(1).map(psql).collect();
        cmds.extend(small.chunks(self.copy_batch.max(1)).map(psql));
        cmds
    }

    /// The database the restores go to: dropped and created empty before each of them.
    pub fn restore_db(&self) -> String {
        format!("{}_restored", self.dataset.db)
    }

    fn fresh_restore_db(&self) -> Result<(), RunError> {
        let db = self.restore_db();
        self.pg
            .psql(
                "postgres",
                &format!("DROP DATABASE IF EXISTS \"{db}\"; CREATE DATABASE \"{db}\""),
            )
            .map(drop)
            .map_err(|e| RunError(format!("recreating {db}: {e}")))
    }

    /// Runs `tool` once, measured. `round` only names the log file. A restore first gets a
    /// fresh empty database (untimed) and afterwards has its pgbench row counts checked
    /// against the source (untimed).
    pub fn run(&self, tool: &Tool, round: usize) -> Result<RunResult, RunError> {
        // A dump's output, or a restore's input (its source dump's output, kept).
        let out = match tool.source() {
            Some(src) => {
                self.fresh_restore_db()?;
                self.output(&src)
            }
            None => {
                let out = self.output(tool);
                remove(&out);
                out
            }
        };
        let log_path = self.dir.join(format!("{}.{round}.log", tool.key()));
        let log = log_file(&log_path)?;
        let meter = measure::ServerCpu::new(self.pg.pid());
        let baseline = meter.as_ref().map(|m| m.children()).unwrap_or_default();
        let cpu0 = meter.as_ref().and_then(|m| m.cpu_secs());
        let result = match tool {
            Tool::Coffer { jobs, level } => {
                let mut cmd = self.coffer_cmd(*jobs, *level, &out);
                cmd.stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
            Tool::PgDumpCustom => {
                let mut cmd = self.pg.client("pg_dump");
                cmd.args(["-d", &self.dataset.db, "-Fc", "-f"])
                    .arg(&out)
                    .stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
            Tool::PgDumpDir { jobs } => {
                let mut cmd = self.pg.client("pg_dump");
                cmd.args(["-d", &self.dataset.db, "-Fd", "-j"])
                    .arg(jobs.to_string())
                    .arg("-f")
                    .arg(&out)
                    .stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
            Tool::CopyFloor { jobs } => measure::run_parallel(self.copy_cmds(), *jobs, &log),
            Tool::CofferRestore { jobs } => {
                let mut cmd = self.coffer_base("restore", &self.restore_db(), *jobs);
                cmd.arg("--json").arg(&out).stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
            Tool::PgRestoreDir { jobs } => {
                let mut cmd = self.pg.client("pg_restore");
                cmd.args(["-d", &self.restore_db(), "-j"])
                    .arg(jobs.to_string())
                    .arg(&out)
                    .stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
            Tool::PgRestoreCustom => {
                let mut cmd = self.pg.client("pg_restore");
                cmd.args(["-d", &self.restore_db()])
                    .arg(&out)
                    .stdout(Stdio::null());
                measure::run(&mut cmd, &log)
            }
        };
        let usage = result.map_err(|e| RunError(format!("{e}\n{}", tail(&log_path))))?;
        let server_cpu = meter.as_ref().and_then(|m| {
            m.settle(&baseline);
            Some(m.cpu_secs()? - cpu0?)
        });
        let output_bytes = match tool {
            Tool::CopyFloor { .. } => None,
            _ => Some(dir_size(&out)),
        };
        let summary = match tool {
            Tool::Coffer { .. } | Tool::CofferRestore { .. } => coffer_summary(&log_path),
            _ => None,
        };
        let raw_bytes = summary.as_ref().and_then(|d| d.get("raw_bytes")?.as_u64());
        let phases = summary
            .as_ref()
            .and_then(|d| d.get("phases")?.as_object().cloned())
            .map(|m| {
                let mut v: Vec<(String, f64)> = m
                    .into_iter()
                    .filter_map(|(k, s)| Some((k, s.as_f64()?)))
                    .collect();
                v.sort_by_key(|(k, _)| phase_order(k));
                v
            })
            .unwrap_or_default();
        let rows_ok = match tool.source() {
            Some(_) => Some(self.rows_match(tool)?),
            None => None,
        };
        Ok(RunResult {
            usage,
            server_cpu,
            output_bytes,
            raw_bytes,
            phases,
            rows_ok,
        })
    }

    /// Compares the row counts of the pgbench tables in the restored database with the
    /// source's, printing any difference.
    fn rows_match(&self, tool: &Tool) -> Result<bool, RunError> {
        let sql = PGBENCH_TABLES
            .iter()
            .map(|t| format!("SELECT '{t}', count(*) FROM public.{t};"))
            .collect::<String>();
        let count = |db: &str| {
            self.pg
                .psql(db, &sql)
                .map_err(|e| RunError(format!("counting rows in {db}: {e}")))
        };
        let (source, restored) = (count(&self.dataset.db)?, count(&self.restore_db())?);
        if source != restored {
            eprintln!(
                "compare: {}: row counts differ from the source:\nsource:\n{source}\nrestored:\n{restored}",
                tool.label()
            );
        }
        Ok(source == restored)
    }
}

/// The tables whose row counts are checked after every restore.
pub const PGBENCH_TABLES: [&str; 4] = [
    "pgbench_accounts",
    "pgbench_branches",
    "pgbench_tellers",
    "pgbench_history",
];

/// Where a restore phase goes in the report: in the order coffer runs them.
fn phase_order(name: &str) -> usize {
    ["clean", "pre-data", "data", "post-data"]
        .iter()
        .position(|p| *p == name)
        .unwrap_or(usize::MAX)
}

/// The JSON summary `coffer dump pg --json` / `coffer restore pg --json` prints on stderr.
fn coffer_summary(log: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(log).ok()?;
    serde_json::from_str(&text[text.find('{')?..]).ok()
}

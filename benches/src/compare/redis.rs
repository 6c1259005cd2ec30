//! The Redis side of the comparison (`compare_redis`): a mixed dataset written as RESP
//! commands (loaded with `redis-cli --pipe`, and replayed the same way as the restore
//! competitor), and the four measured runs: `coffer dump redis` beside `redis-cli --rdb`
//! (the transfer floor), `coffer restore redis` beside `redis-cli --pipe` of the commands.
//! Every run goes through [`measure::run`]; see `benches/README.md`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use coffer_testkit::{RedisServer, RespValue};
use serde_json::{Value, json};

use super::measure::{self, RunError, ServerCpu};
use super::report::{Check, median};
use super::tools::RunResult;
use crate::SplitMix64;

const MB: f64 = 1e6;

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Keys, streams included (the big key is extra).
    pub keys: u64,
    /// Size of the one extra big string in MiB (0: none).
    pub big_key_mib: u64,
}

/// What [`write_commands`] wrote.
#[derive(Clone, Debug, Default)]
pub struct Commands {
    pub path: PathBuf,
    pub bytes: u64,
    pub commands: u64,
    /// Keys per kind, in the order of [`KINDS`].
    pub per_kind: [u64; KINDS.len()],
    pub with_ttl: u64,
    /// Keys the commands create (what DBSIZE must say).
    pub keys: u64,
}

/// Kinds of keys, as named in the report.
pub const KINDS: [&str; 9] = [
    "short string",
    "1 KB string",
    "hash",
    "list",
    "int set",
    "string set",
    "zset",
    "stream",
    "big string",
];

#[rustfmt::skip]
const WORDS: [&str; 48] = [
    "order", "customer", "shipped", "pending", "paid", "session", "token", "cart", "item",
    "price", "amount", "status", "user", "profile", "email", "address", "city", "berlin",
    "paris", "london", "tokyo", "the", "a", "of", "and", "to", "in", "is", "for", "on",
    "with", "by", "delivered", "returned", "refund", "coupon", "discount", "gift", "express",
    "standard", "warehouse", "north", "south", "east", "west", "blue", "green", "red",
];

/// One RESP command (an array of bulk strings) on `out`.
fn resp(out: &mut impl Write, args: &[&[u8]]) -> std::io::Result<()> {
    write!(out, "*{}\r\n", args.len())?;
    for a in args {
        write!(out, "${}\r\n", a.len())?;
        out.write_all(a)?;
        out.write_all(b"\r\n")?;
    }
    Ok(())
}

/// Words (and the odd number) from `rng` appended to `buf` until it holds `len` bytes.
fn text(rng: &mut SplitMix64, buf: &mut Vec<u8>, len: usize) {
    while buf.len() < len {
        if !buf.is_empty() {
            buf.push(b' ');
        }
        if rng.percent(15) {
            buf.extend_from_slice(rng.below(1_000_000).to_string().as_bytes());
        } else {
            buf.extend_from_slice(rng.pick(&WORDS).as_bytes());
        }
    }
    buf.truncate(len);
}

/// Writes the commands that build the dataset to `path`: per key index `i` (seeded, so the
/// same `spec` gives the same bytes), one stream every 10 000 keys (50 entries), otherwise
/// 55 % short strings (10–80 bytes), 15 % strings of ~1 KB, 10 % hashes (4–16 fields),
/// 7 % lists (5–40 elements), 4 % int sets, 4 % string sets, 5 % zsets; one key in ten
/// (streams aside) gets a `PEXPIRE` of 1–48 h. Then, with `big_key_mib`, the string
/// `big:blob` by `APPEND`s of 1 MiB.
pub fn write_commands(path: &Path, spec: Spec) -> Result<Commands, String> {
    let io = |e: std::io::Error| format!("writing {}: {e}", path.display());
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path).map_err(io)?);
    let mut rng = SplitMix64::new(0x5EED_4ED1);
    let mut c = Commands {
        path: path.to_path_buf(),
        ..Commands::default()
    };
    let mut val = Vec::with_capacity(2048);
    let mut args: Vec<Vec<u8>> = Vec::new();
    let send = |out: &mut BufWriter<File>, args: &[Vec<u8>], c: &mut Commands| {
        c.commands += 1;
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        resp(out, &refs)
    };
    for i in 0..spec.keys {
        args.clear();
        let kind = if i % 10_000 == 5_000 {
            7
        } else {
            match rng.below(100) {
                0..55 => 0,
                55..70 => 1,
                70..80 => 2,
                80..87 => 3,
                87..91 => 4,
                91..95 => 5,
                _ => 6,
            }
        };
        let prefix = ["s", "doc", "h", "l", "is", "ss", "z", "x"][kind];
        let key = format!("{prefix}:{i:08}").into_bytes();
        c.per_kind[kind] += 1;
        match kind {
            0 | 1 => {
                val.clear();
                let len = if kind == 0 {
                    10 + rng.below(71)
                } else {
                    900 + rng.below(201)
                };
                text(&mut rng, &mut val, len as usize);
                args.extend([b"SET".to_vec(), key.clone(), val.clone()]);
            }
            2 => {
                args.extend([b"HSET".to_vec(), key.clone()]);
                for f in 0..4 + rng.below(13) {
                    val.clear();
                    let len = 5 + rng.below(30) as usize;
                    text(&mut rng, &mut val, len);
                    args.push(format!("field{f}").into_bytes());
                    args.push(val.clone());
                }
            }
            3 => {
                args.extend([b"RPUSH".to_vec(), key.clone()]);
                for _ in 0..5 + rng.below(36) {
                    val.clear();
                    let len = 5 + rng.below(40) as usize;
                    text(&mut rng, &mut val, len);
                    args.push(val.clone());
                }
            }
            4 => {
                args.extend([b"SADD".to_vec(), key.clone()]);
                for _ in 0..5 + rng.below(46) {
                    args.push(rng.below(100_000).to_string().into_bytes());
                }
            }
            5 => {
                args.extend([b"SADD".to_vec(), key.clone()]);
                for _ in 0..5 + rng.below(26) {
                    args.push(format!("member-{}", rng.below(1_000_000)).into_bytes());
                }
            }
            6 => {
                args.extend([b"ZADD".to_vec(), key.clone()]);
                for _ in 0..5 + rng.below(36) {
                    args.push(format!("{}.{}", rng.below(10_000), rng.below(100)).into_bytes());
                    args.push(format!("player-{}", rng.below(1_000_000)).into_bytes());
                }
            }
            _ => {
                for e in 0..50u64 {
                    args.clear();
                    args.extend([
                        b"XADD".to_vec(),
                        key.clone(),
                        format!("{}-{e}", 1 + i).into_bytes(),
                    ]);
                    for f in ["event", "user", "amount"] {
                        val.clear();
                        let len = 5 + rng.below(20) as usize;
                        text(&mut rng, &mut val, len);
                        args.push(f.as_bytes().to_vec());
                        args.push(val.clone());
                    }
                    send(&mut out, &args, &mut c).map_err(io)?;
                }
                continue;
            }
        }
        send(&mut out, &args, &mut c).map_err(io)?;
        if rng.percent(10) {
            c.with_ttl += 1;
            let ms = 3_600_000 + rng.below(47 * 3_600_000);
            let a = [b"PEXPIRE".to_vec(), key, ms.to_string().into_bytes()];
            send(&mut out, &a, &mut c).map_err(io)?;
        }
    }
    c.keys = spec.keys;
    if spec.big_key_mib > 0 {
        c.per_kind[8] = 1;
        c.keys += 1;
        for _ in 0..spec.big_key_mib {
            val.clear();
            text(&mut rng, &mut val, 1 << 20);
            let a = [b"APPEND".to_vec(), b"big:blob".to_vec(), val.clone()];
            send(&mut out, &a, &mut c).map_err(io)?;
        }
    }
    out.flush().map_err(io)?;
    c.bytes = std::fs::metadata(path).map_err(io)?.len();
    Ok(c)
}

/// `redis-cli -h 127.0.0.1 -p PORT --pipe < commands` through `sh -c 'exec …'` (the same
/// process, so `wait4` measures redis-cli itself), its report on `stdout`.
fn pipe_cmd(port: u16, commands: &Path, stdout: File) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec redis-cli -h 127.0.0.1 -p "$1" --pipe < "$2""#)
        .arg("sh")
        .arg(port.to_string())
        .arg(commands)
        .stdout(stdout);
    cmd
}

/// `redis-cli --pipe`'s report: `errors: N, replies: M`; an error unless N is 0.
fn pipe_errors(report: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(report).unwrap_or_default();
    if text.contains("errors: 0,") {
        Ok(())
    } else {
        Err(format!("redis-cli --pipe reported errors:\n{text}"))
    }
}

/// Loads `commands` into `server` (unmeasured).
pub fn load(server: &RedisServer, commands: &Path, dir: &Path) -> Result<(), String> {
    let report = dir.join("load.out");
    let log = File::create(dir.join("load.log")).map_err(|e| e.to_string())?;
    let out = File::create(&report).map_err(|e| e.to_string())?;
    measure::run(&mut pipe_cmd(server.port(), commands, out), &log).map_err(|e| e.0)?;
    pipe_errors(&report)
}

/// `DBSIZE` of `server`.
pub fn dbsize(server: &RedisServer) -> Result<u64, String> {
    match server.command(&[b"DBSIZE"]).map_err(|e| e.to_string())? {
        RespValue::Integer(n) => Ok(n as u64),
        other => Err(format!("DBSIZE: {other:?}")),
    }
}

/// `used_memory` of `server`, bytes.
pub fn used_memory(server: &RedisServer) -> Option<u64> {
    match server.command(&[b"INFO", b"memory"]).ok()? {
        RespValue::Bulk(b) => String::from_utf8_lossy(&b)
            .lines()
            .find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok()),
        _ => None,
    }
}

/// One measured way of getting the data out or back in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tool {
    /// `coffer dump redis --url SRC -f out.coffer`.
    CofferDump,
    /// `redis-cli --rdb out.rdb`: the server's RDB over a replica connection, to a file.
    RdbFloor,
    /// `coffer restore redis out.coffer --url DST` into an empty server.
    CofferRestore,
    /// `redis-cli --pipe < commands.resp` into an empty server.
    Pipe,
}

impl Tool {
    pub const DUMP: [Tool; 2] = [Tool::CofferDump, Tool::RdbFloor];
    pub const RESTORE: [Tool; 2] = [Tool::CofferRestore, Tool::Pipe];

    pub fn label(self) -> &'static str {
        match self {
            Tool::CofferDump => "coffer dump",
            Tool::RdbFloor => "redis-cli --rdb",
            Tool::CofferRestore => "coffer restore",
            Tool::Pipe => "redis-cli --pipe",
        }
    }

    fn key(self) -> &'static str {
        match self {
            Tool::CofferDump => "coffer-dump",
            Tool::RdbFloor => "rdb",
            Tool::CofferRestore => "coffer-restore",
            Tool::Pipe => "pipe",
        }
    }

    fn is_restore(self) -> bool {
        matches!(self, Tool::CofferRestore | Tool::Pipe)
    }
}

/// Everything a run needs.
pub struct Ctx<'a> {
    /// The loaded server the dumps read.
    pub src: &'a RedisServer,
    /// The server restores go into; flushed before each.
    pub dst: &'a RedisServer,
    pub coffer: &'a Path,
    pub dir: &'a Path,
    pub commands: &'a Commands,
    pub coffer_args: &'a [String],
}

/// One measured run, and for restores whether DBSIZE matched afterwards.
#[derive(Clone, Debug)]
pub struct Run {
    pub result: RunResult,
    /// DBSIZE of the target after a restore.
    pub dbsize: Option<u64>,
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl Ctx<'_> {
    /// coffer's archive (the dump's output, the restore's input).
    pub fn archive(&self) -> PathBuf {
        self.dir.join("out.coffer")
    }

    fn rdb(&self) -> PathBuf {
        self.dir.join("out.rdb")
    }

    /// Runs `tool` once, measured; `round` names the log file.
    pub fn run(&self, tool: Tool, round: usize) -> Result<Run, String> {
        let server = if tool.is_restore() {
            self.dst
        } else {
            self.src
        };
        if tool.is_restore() {
            match self.dst.command(&[b"FLUSHALL", b"SYNC"]) {
                Ok(RespValue::Simple(_)) => {}
                other => return Err(format!("FLUSHALL before {}: {other:?}", tool.label())),
            }
        } else {
            let _ = std::fs::remove_file(match tool {
                Tool::CofferDump => self.archive(),
                _ => self.rdb(),
            });
        }
        let log_path = self.dir.join(format!("{}.{round}.log", tool.key()));
        let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        let meter = ServerCpu::new(server.pid());
        let baseline = meter.as_ref().map(|m| m.children()).unwrap_or_default();
        let cpu0 = meter.as_ref().and_then(|m| m.cpu_secs());
        let report = self.dir.join(format!("{}.{round}.out", tool.key()));
        let mut cmd = match tool {
            Tool::CofferDump => {
                let mut c = Command::new(self.coffer);
                c.args(["dump", "redis", "--url", &self.src.url()])
                    .args(self.coffer_args)
                    .arg("--json")
                    .arg("-f")
                    .arg(self.archive())
                    .stdout(Stdio::null());
                c
            }
            Tool::RdbFloor => {
                let mut c = Command::new("redis-cli");
                c.args(["-h", "127.0.0.1", "-p"])
                    .arg(self.src.port().to_string())
                    .arg("--rdb")
                    .arg(self.rdb())
                    .stdout(Stdio::null());
                c
            }
            Tool::CofferRestore => {
                let mut c = Command::new(self.coffer);
                c.args(["restore", "redis"])
                    .arg(self.archive())
                    .args(["--url", &self.dst.url(), "--json"])
                    .stdout(Stdio::null());
                c
            }
            Tool::Pipe => {
                let out = File::create(&report).map_err(|e| e.to_string())?;
                pipe_cmd(self.dst.port(), &self.commands.path, out)
            }
        };
        let usage = measure::run(&mut cmd, &log)
            .map_err(|RunError(e)| format!("{e}\n{}", tail(&log_path)))?;
        if tool == Tool::Pipe {
            pipe_errors(&report)?;
        }
        let server_cpu = meter.as_ref().and_then(|m| {
            m.settle(&baseline);
            Some(m.cpu_secs()? - cpu0?)
        });
        let file = |p: PathBuf| std::fs::metadata(p).ok().map(|m| m.len());
        let output_bytes = match tool {
            Tool::CofferDump | Tool::CofferRestore => file(self.archive()),
            Tool::RdbFloor => file(self.rdb()),
            Tool::Pipe => Some(self.commands.bytes),
        };
        let dbsize = if tool.is_restore() {
            Some(dbsize(self.dst)?)
        } else {
            None
        };
        Ok(Run {
            result: RunResult {
                usage,
                server_cpu,
                output_bytes,
                raw_bytes: None,
                phases: Vec::new(),
                rows_ok: None,
            },
            dbsize,
        })
    }
}

/// One tool's figures over its rounds.
#[derive(Clone, Debug)]
pub struct Row {
    pub tool: Tool,
    pub runs: Vec<Run>,
}

impl Row {
    fn walls(&self) -> Vec<f64> {
        self.runs
            .iter()
            .map(|r| r.result.usage.wall.as_secs_f64())
            .collect()
    }
    pub fn wall(&self) -> f64 {
        median(&self.walls())
    }
    pub fn wall_min(&self) -> f64 {
        self.walls().into_iter().fold(f64::INFINITY, f64::min)
    }
    pub fn cpu(&self) -> f64 {
        let v: Vec<f64> = self
            .runs
            .iter()
            .map(|r| r.result.usage.cpu_secs())
            .collect();
        median(&v)
    }
    pub fn server_cpu(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| r.result.server_cpu)
            .collect();
        (!v.is_empty()).then(|| median(&v))
    }
    pub fn rss_mb(&self) -> f64 {
        self.runs
            .iter()
            .map(|r| r.result.usage.max_rss)
            .max()
            .unwrap_or(0) as f64
            / MB
    }
    pub fn file_mb(&self) -> Option<f64> {
        let v: Vec<f64> = self
            .runs
            .iter()
            .filter_map(|r| Some(r.result.output_bytes? as f64 / MB))
            .collect();
        (!v.is_empty()).then(|| median(&v))
    }
    fn cpu_bound(&self, cores: usize) -> Option<f64> {
        Some((self.cpu() + self.server_cpu()?) / cores.max(1) as f64)
    }

    pub fn json(&self, floor: Option<&Row>, cores: usize) -> Value {
        json!({
            "tool": self.tool.label(),
            "wall_s_median": self.wall(),
            "wall_s_min": self.wall_min(),
            "cpu_s_median": self.cpu(),
            "server_cpu_s_median": self.server_cpu(),
            "cpu_per_core_s": self.cpu_bound(cores),
            "peak_rss_mb": self.rss_mb(),
            "file_mb": self.file_mb(),
            "wall_ratio_to_floor": floor.map(|f| self.wall() / f.wall()),
            "runs": self.runs.iter().map(|r| json!({
                "wall_s": r.result.usage.wall.as_secs_f64(),
                "user_s": r.result.usage.user.as_secs_f64(),
                "sys_s": r.result.usage.sys.as_secs_f64(),
                "server_cpu_s": r.result.server_cpu,
                "peak_rss_bytes": r.result.usage.max_rss,
                "file_bytes": r.result.output_bytes,
                "dbsize_after": r.dbsize,
            })).collect::<Vec<_>>(),
        })
    }
}

fn fmt_opt(v: Option<f64>, width: usize, prec: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:>width$.prec$}"),
        _ => format!("{:>width$}", "-"),
    }
}

/// The competitor a row is compared with: the other row of its phase.
pub fn floor_of(rows: &[Row], tool: Tool) -> Option<&Row> {
    let other = match tool {
        Tool::CofferDump => Tool::RdbFloor,
        Tool::CofferRestore => Tool::Pipe,
        _ => return None,
    };
    rows.iter().find(|r| r.tool == other)
}

/// The table: one line per tool, dumps then restores.
pub fn table(rows: &[Row], cores: usize) -> String {
    let mut out = format!(
        "{:<18} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}\n",
        "tool", "wall s", "min s", "CPU s", "srv CPU", "CPU/cores", "RSS MB", "file MB", "wall/cmp"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<18} {:>8.2} {:>8.2} {:>8.2} {} {} {:>9.1} {} {}\n",
            r.tool.label(),
            r.wall(),
            r.wall_min(),
            r.cpu(),
            fmt_opt(r.server_cpu(), 8, 2),
            fmt_opt(r.cpu_bound(cores), 9, 2),
            r.rss_mb(),
            fmt_opt(r.file_mb(), 9, 1),
            fmt_opt(floor_of(rows, r.tool).map(|f| r.wall() / f.wall()), 9, 2),
        ));
    }
    out
}

/// Peak RSS bound for coffer, MB.
pub const RSS_LIMIT_MB: f64 = 200.0;
/// coffer dump wall ≤ this × `redis-cli --rdb`.
pub const DUMP_RATIO: f64 = 1.3;
/// coffer restore wall ≤ this × `redis-cli --pipe`.
pub const RESTORE_RATIO: f64 = 0.6;

/// The done-when checks; `big` names the big key in the RSS checks' names.
pub fn checks(rows: &[Row], expect_keys: u64, big: Option<u64>) -> Vec<Check> {
    let find = |t: Tool| rows.iter().find(|r| r.tool == t);
    let mut v = Vec::new();
    let ratio = |c: Tool, f: Tool, k: f64| {
        let name = format!("{} wall <= {k} x {} wall", c.label(), f.label());
        match find(c).zip(find(f)) {
            Some((c, f)) => Check {
                name,
                pass: Some(c.wall() <= k * f.wall()),
                detail: format!(
                    "{:.2} s vs {:.2} s: {:.2}x",
                    c.wall(),
                    f.wall(),
                    c.wall() / f.wall()
                ),
            },
            None => Check {
                name,
                pass: None,
                detail: "not run".into(),
            },
        }
    };
    let with = big.map_or(String::new(), |m| format!(" (with a {m} MiB key)"));
    let rss = |t: Tool| {
        let name = format!("{} peak RSS < {RSS_LIMIT_MB} MB{with}", t.label());
        match find(t) {
            Some(r) => Check {
                name,
                pass: Some(r.rss_mb() < RSS_LIMIT_MB),
                detail: format!("{:.1} MB", r.rss_mb()),
            },
            None => Check {
                name,
                pass: None,
                detail: "not run".into(),
            },
        }
    };
    v.push(ratio(Tool::CofferDump, Tool::RdbFloor, DUMP_RATIO));
    v.push(rss(Tool::CofferDump));
    v.push(ratio(Tool::CofferRestore, Tool::Pipe, RESTORE_RATIO));
    v.push(rss(Tool::CofferRestore));
    let sizes: Vec<(Tool, u64)> = rows
        .iter()
        .flat_map(|r| r.runs.iter().filter_map(move |x| Some((r.tool, x.dbsize?))))
        .collect();
    let bad: Vec<String> = sizes
        .iter()
        .filter(|(_, n)| *n != expect_keys)
        .map(|(t, n)| format!("{} left {n}", t.label()))
        .collect();
    v.push(Check {
        name: format!("DBSIZE after every restore = {expect_keys}"),
        pass: (!sizes.is_empty()).then_some(bad.is_empty()),
        detail: if sizes.is_empty() {
            "no restore run".into()
        } else if bad.is_empty() {
            format!("{} restores", sizes.len())
        } else {
            bad.join(", ")
        },
    });
    v
}

//! coffer beside redis-cli on throwaway Redis servers: `coffer dump redis` beside
//! `redis-cli --rdb` (the transfer floor) and `coffer restore redis` beside `redis-cli --pipe`
//! of the commands that build the same dataset, each measured as a child process over
//! interleaved rounds, then the table and the done-when checks as PASS/FAIL lines.
//!
//! ```text
//! cargo run --release -p coffer-benches --bin compare_redis -- [--keys 1000000]
//!     [--big-key-mb 0] [--runs 3] [--keep] [--json] [--strict] [--coffer PATH]
//!     [--no-build] [--dir DIR] [--coffer-args "ARGS"]
//! ```
//!
//! See `benches/README.md`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use coffer_benches::compare::common::{
    coffer_binary, cores, emit, finish_dir, loadavg, out_dir, snapshot,
};
use coffer_benches::compare::redis::{self, Ctx, KINDS, Row, Spec, Tool};
use coffer_benches::compare::report::{self, Check};
use coffer_testkit::RedisServer;
use serde_json::json;

const USAGE: &str = "usage: compare_redis [--keys N] [--big-key-mb N] [--runs N] [--keep] \
[--json] [--strict] [--coffer PATH] [--no-build] [--dir DIR] [--coffer-args \"ARGS\"]";

/// Both servers: a replica sync streams the RDB at once (no 5 s wait for more replicas), and
/// nothing is saved to disk.
const SERVER_CONFIG: [&str; 3] = [
    "repl-diskless-sync yes",
    "repl-diskless-sync-delay 0",
    "save \"\"",
];

struct Args {
    keys: u64,
    big_key_mib: u64,
    runs: usize,
    keep: bool,
    json: bool,
    strict: bool,
    coffer: Option<PathBuf>,
    no_build: bool,
    dir: Option<PathBuf>,
    coffer_args: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        keys: 1_000_000,
        big_key_mib: 0,
        runs: 3,
        keep: false,
        json: false,
        strict: false,
        coffer: None,
        no_build: false,
        dir: None,
        coffer_args: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match arg.as_str() {
            "--keys" => a.keys = num("--keys", value("--keys")?)?,
            "--big-key-mb" => a.big_key_mib = num("--big-key-mb", value("--big-key-mb")?)?,
            "--runs" => a.runs = num("--runs", value("--runs")?)?,
            "--keep" => a.keep = true,
            "--json" => a.json = true,
            "--strict" => a.strict = true,
            "--coffer" => a.coffer = Some(value("--coffer")?.into()),
            "--no-build" => a.no_build = true,
            "--dir" => a.dir = Some(value("--dir")?.into()),
            "--coffer-args" => {
                a.coffer_args = value("--coffer-args")?
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            }
            "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if a.keys == 0 || a.runs == 0 {
        return Err("--keys and --runs must be at least 1".into());
    }
    // proto-max-bulk-len (512 MiB) bounds one string, and RESTORE sends it whole.
    if a.big_key_mib > 500 {
        return Err("--big-key-mb: at most 500 (Redis strings stop at 512 MiB)".into());
    }
    Ok(a)
}

fn start_server() -> Result<RedisServer, String> {
    let mut b = RedisServer::builder();
    for line in SERVER_CONFIG {
        b = b.config(line);
    }
    b.start().map_err(|e| e.to_string())
}

/// Runs `tools` for `runs` rounds, rotating the order each round.
fn rounds(ctx: &Ctx<'_>, tools: &[Tool], runs: usize) -> Result<Vec<Row>, String> {
    let mut rows: Vec<Row> = tools
        .iter()
        .map(|&tool| Row {
            tool,
            runs: Vec::new(),
        })
        .collect();
    for round in 0..runs {
        for k in 0..tools.len() {
            let i = (k + round) % tools.len();
            let r = ctx
                .run(tools[i], round + 1)
                .map_err(|e| format!("{}: {e}", tools[i].label()))?;
            eprintln!(
                "compare: round {}/{runs}: {:<18} {:>7.2} s wall {:>7.2} s CPU {:>7.1} MB RSS{}",
                round + 1,
                tools[i].label(),
                r.result.usage.wall.as_secs_f64(),
                r.result.usage.cpu_secs(),
                r.result.usage.max_rss as f64 / 1e6,
                r.result
                    .server_cpu
                    .map(|s| format!(" {s:>7.2} s server CPU"))
                    .unwrap_or_default(),
            );
            rows[i].runs.push(r);
        }
    }
    Ok(rows)
}

fn compare(args: &Args, coffer: &std::path::Path) -> Result<Vec<Check>, String> {
    let load_before = loadavg();
    let dir = out_dir(args.dir.as_deref())?;
    let binary = snapshot(coffer, dir.path())?;
    let spec = Spec {
        keys: args.keys,
        big_key_mib: args.big_key_mib,
    };
    let t = Instant::now();
    let commands = redis::write_commands(&dir.path().join("commands.resp"), spec)?;
    let gen_s = t.elapsed().as_secs_f64();
    let src = start_server()?;
    let dst = start_server()?;
    let version = match src.command(&[b"INFO", b"server"]) {
        Ok(coffer_testkit::RespValue::Bulk(b)) => String::from_utf8_lossy(&b)
            .lines()
            .find_map(|l| l.strip_prefix("redis_version:").map(str::to_string))
            .unwrap_or_default(),
        _ => String::new(),
    };
    eprintln!(
        "compare: Redis {version}; {} commands ({:.1} MB) written in {gen_s:.1} s; loading …",
        commands.commands,
        commands.bytes as f64 / 1e6
    );
    let t = Instant::now();
    redis::load(&src, &commands.path, dir.path())?;
    let load_s = t.elapsed().as_secs_f64();
    let keys = redis::dbsize(&src)?;
    if keys != commands.keys {
        return Err(format!(
            "the source holds {keys} keys, the commands make {}",
            commands.keys
        ));
    }
    let used = redis::used_memory(&src).unwrap_or(0);
    eprintln!(
        "compare: loaded {keys} keys ({:.1} MB used_memory) in {load_s:.1} s",
        used as f64 / 1e6
    );
    let ctx = Ctx {
        src: &src,
        dst: &dst,
        coffer: &binary,
        dir: dir.path(),
        commands: &commands,
        coffer_args: &args.coffer_args,
    };
    let mut rows = rounds(&ctx, &Tool::DUMP, args.runs)?;
    rows.extend(rounds(&ctx, &Tool::RESTORE, args.runs)?);
    let _ = dst.command(&[b"FLUSHALL", b"SYNC"]);
    let checks = redis::checks(
        &rows,
        keys,
        (args.big_key_mib > 0).then_some(args.big_key_mib),
    );
    let kinds: Vec<String> = KINDS
        .iter()
        .zip(commands.per_kind)
        .filter(|(_, n)| *n > 0)
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    let mut human = format!(
        "coffer: {}\nmachine: {} cores (shared by the servers and the tools), load average before: {load_before}, after: {}\nruns: {}{}\n",
        coffer.display(),
        cores(),
        loadavg(),
        args.runs,
        if args.coffer_args.is_empty() {
            String::new()
        } else {
            format!(", coffer dump also given: {}", args.coffer_args.join(" "))
        }
    );
    human += &format!(
        "dataset: Redis {version}, {keys} keys ({}; {} with a TTL), {:.1} MB used_memory; commands.resp {:.1} MB, {} commands\n\n",
        kinds.join(", "),
        commands.with_ttl,
        used as f64 / 1e6,
        commands.bytes as f64 / 1e6,
        commands.commands,
    );
    human += &redis::table(&rows, cores());
    human += "\n";
    human += &report::check_lines(&checks);
    let doc = json!({
        "mode": "redis",
        "tools": rows.iter().map(|r| r.json(redis::floor_of(&rows, r.tool), cores())).collect::<Vec<_>>(),
        "checks": checks.iter().map(|c| json!({"check": c.name, "pass": c.pass, "detail": c.detail})).collect::<Vec<_>>(),
        "dataset": {
            "redis_version": version,
            "keys": keys,
            "per_kind": KINDS.iter().zip(commands.per_kind).map(|(k, n)| (k.to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            "with_ttl": commands.with_ttl,
            "big_key_mib": args.big_key_mib,
            "used_memory_mb": used as f64 / 1e6,
            "commands": commands.commands,
            "commands_mb": commands.bytes as f64 / 1e6,
            "load_s": load_s,
        },
        "runs": args.runs,
        "coffer_args": args.coffer_args,
        "cores": cores(),
        "load_before": load_before,
        "load_after": loadavg(),
        "server_config": SERVER_CONFIG,
    });
    emit(args.json, &human, doc);
    finish_dir(args.keep, dir);
    Ok(checks)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if e.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("compare_redis: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let result = coffer_binary(args.coffer.as_deref(), args.no_build)
        .and_then(|coffer| compare(&args, &coffer));
    match result {
        Ok(checks) => {
            if args.strict && checks.iter().any(|c| c.pass == Some(false)) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("compare_redis: {e}");
            ExitCode::from(3)
        }
    }
}

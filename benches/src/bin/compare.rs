//! coffer beside the tools users would pick instead, on a throwaway PostgreSQL server.
//!
//! Builds a dataset (pgbench tables at `--scale`, a wide table of text/jsonb/numeric/bytea/
//! timestamptz/uuid/int[] columns, many small tables), warms the cache, then runs each tool
//! once per round for `--runs` rounds, rotating the order every round so that machine noise
//! spreads over all of them, and prints wall time, CPU time, server CPU time, peak RSS,
//! output size and the ratios to coffer, then the done-when checks as PASS/FAIL lines.
//! `--rss-scaling` instead runs coffer alone at two scales and compares its peak RSS.
//! `--restore` instead makes one coffer archive and one `pg_dump -Fd` directory (and a
//! `pg_dump -Fc` file) untimed, then per round restores each into a fresh empty database
//! with `coffer restore pg` and `pg_restore`, checking the pgbench row counts after each.
//!
//! ```text
//! cargo run --release -p coffer-benches --bin compare -- [--scale 20] [--wide-rows N]
//!     [--small-tables 200] [--jobs 2] [--runs 3] [--tools LIST] [--keep] [--json]
//!     [--strict] [--coffer PATH] [--no-build] [--dir DIR] [--copy-batch 50]
//!     [--coffer-args "ARGS"] [--rss-scaling [--rss-small 5]] [--restore]
//! ```
//!
//! See `benches/README.md`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use coffer_benches::compare::common::{
    coffer_binary, cores, emit, finish_dir, loadavg, out_dir, snapshot,
};
use coffer_benches::compare::dataset::{self, Dataset, Spec};
use coffer_benches::compare::report::{self, Check, Summary};
use coffer_benches::compare::tools::{Ctx, TOOL_NAMES, Tool};
use coffer_testkit::PgServer;
use serde_json::json;

const USAGE: &str = "usage: compare [--scale N] [--wide-rows N] [--small-tables N] [--jobs N] \
[--runs N] [--tools LIST] [--keep] [--json] [--strict] [--coffer PATH] [--no-build] [--dir DIR] \
[--copy-batch N] [--coffer-args \"ARGS\"] [--rss-scaling [--rss-small N]] [--restore]";

const DEFAULT_TOOLS: &str = "coffer,coffer-z1,pg_dump-fc,pg_dump-fd,copy";
const DEFAULT_RESTORE_TOOLS: &str = "coffer-restore,pg_restore-fd,pg_restore-fc";

/// Server settings for a dump benchmark: a realistic buffer cache, no durability work (the
/// data is thrown away, and the dumps only read), no autovacuum waking up between runs.
const SERVER_SETTINGS: [(&str, &str); 12] = [
    ("shared_buffers", "256MB"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("full_page_writes", "off"),
    ("wal_level", "minimal"),
    ("max_wal_senders", "0"),
    ("max_wal_size", "4GB"),
    ("checkpoint_timeout", "1h"),
    ("max_connections", "50"),
    ("maintenance_work_mem", "256MB"),
    ("autovacuum", "off"),
    ("jit", "off"),
];

struct Args {
    scale: u32,
    wide_rows: Option<u64>,
    small_tables: u32,
    jobs: usize,
    runs: usize,
    tools: Option<String>,
    restore: bool,
    keep: bool,
    json: bool,
    strict: bool,
    coffer: Option<PathBuf>,
    no_build: bool,
    dir: Option<PathBuf>,
    copy_batch: usize,
    rss_scaling: bool,
    rss_small: u32,
    coffer_args: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        scale: 20,
        wide_rows: None,
        small_tables: 200,
        jobs: 2,
        runs: 3,
        tools: None,
        restore: false,
        keep: false,
        json: false,
        strict: false,
        coffer: None,
        no_build: false,
        dir: None,
        copy_batch: 50,
        rss_scaling: false,
        rss_small: 5,
        coffer_args: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        }
        match arg.as_str() {
            "--scale" => a.scale = num("--scale", value("--scale")?)?,
            "--wide-rows" => a.wide_rows = Some(num("--wide-rows", value("--wide-rows")?)?),
            "--small-tables" => a.small_tables = num("--small-tables", value("--small-tables")?)?,
            "--jobs" | "-j" => a.jobs = num("--jobs", value("--jobs")?)?,
            "--runs" => a.runs = num("--runs", value("--runs")?)?,
            "--tools" => a.tools = Some(value("--tools")?),
            "--restore" => a.restore = true,
            "--keep" => a.keep = true,
            "--json" => a.json = true,
            "--strict" => a.strict = true,
            "--coffer" => a.coffer = Some(value("--coffer")?.into()),
            "--no-build" => a.no_build = true,
            "--dir" => a.dir = Some(value("--dir")?.into()),
            "--copy-batch" => a.copy_batch = num("--copy-batch", value("--copy-batch")?)?,
            "--rss-scaling" => a.rss_scaling = true,
            "--rss-small" => a.rss_small = num("--rss-small", value("--rss-small")?)?,
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
    if a.scale == 0 || a.jobs == 0 || a.runs == 0 {
        return Err("--scale, --jobs and --runs must be at least 1".into());
    }
    if a.rss_scaling && a.restore {
        return Err("--rss-scaling and --restore are separate modes".into());
    }
    if a.rss_scaling && a.rss_small >= a.scale {
        return Err("--rss-scaling needs --rss-small below --scale".into());
    }
    Ok(a)
}

fn start_server() -> Result<PgServer, String> {
    let mut b = PgServer::builder();
    for (k, v) in SERVER_SETTINGS {
        b = b.setting(k, v);
    }
    let pg = b.start().map_err(|e| e.to_string())?;
    let version = pg
        .psql("postgres", "SHOW server_version")
        .map_err(|e| e.to_string())?;
    eprintln!("compare: PostgreSQL {version} on port {}", pg.port());
    Ok(pg)
}

fn build(pg: &PgServer, db: &str, spec: Spec) -> Result<Dataset, String> {
    eprintln!(
        "compare: building {db}: pgbench scale {}, {} wide rows, {} small tables …",
        spec.scale, spec.wide_rows, spec.small_tables
    );
    let d = dataset::build(pg, db, spec)?;
    eprintln!(
        "compare: {db}: {:.1} MB in {} tables (public.wide's TOAST: {:.1} MB), built in {:.0} s",
        d.db_bytes as f64 / 1e6,
        d.tables.len(),
        d.wide_toast_bytes as f64 / 1e6,
        d.build_secs
    );
    Ok(d)
}

fn dataset_json(d: &Dataset, raw: Option<u64>) -> serde_json::Value {
    json!({
        "database": d.db,
        "scale": d.spec.scale,
        "wide_rows": d.spec.wide_rows,
        "small_tables": d.spec.small_tables,
        "tables": d.tables.len(),
        "database_mb": d.db_bytes as f64 / 1e6,
        "wide_toast_mb": d.wide_toast_bytes as f64 / 1e6,
        "largest_tables": d.tables.iter().take(3).map(|t| json!({
            "table": t.qualified, "mb": t.bytes as f64 / 1e6
        })).collect::<Vec<_>>(),
        "copy_text_mb": raw.map(|r| r as f64 / 1e6),
        "build_s": d.build_secs,
    })
}

/// Runs `tools` for `runs` rounds on `ctx`, rotating the order each round.
fn rounds(ctx: &Ctx<'_>, tools: &[Tool], runs: usize) -> Result<Vec<Summary>, String> {
    let mut results: Vec<Vec<_>> = vec![Vec::new(); tools.len()];
    for round in 0..runs {
        for k in 0..tools.len() {
            let i = (k + round) % tools.len();
            let r = ctx
                .run(&tools[i], round + 1)
                .map_err(|e| format!("{}: {e}", tools[i].label()))?;
            eprintln!(
                "compare: round {}/{runs}: {:<20} {:>7.2} s wall {:>7.2} s CPU{}",
                round + 1,
                tools[i].label(),
                r.usage.wall.as_secs_f64(),
                r.usage.cpu_secs(),
                r.server_cpu
                    .map(|s| format!(" {s:>7.2} s server CPU"))
                    .unwrap_or_default(),
            );
            results[i].push(r);
        }
    }
    Ok(tools
        .iter()
        .cloned()
        .zip(results)
        .map(|(t, r)| Summary::new(t, r))
        .collect())
}

fn header(args: &Args, coffer: &Path, load_before: &str) -> String {
    format!(
        "coffer: {}\nmachine: {} cores (shared by the server and the tools), load average before: {load_before}, after: {}\n",
        coffer.display(),
        cores(),
        loadavg(),
    ) + &format!(
        "jobs: {}, runs: {}{}\n",
        args.jobs,
        args.runs,
        if args.coffer_args.is_empty() {
            String::new()
        } else {
            format!(", coffer also given: {}", args.coffer_args.join(" "))
        }
    )
}

fn compare(args: &Args, coffer: &Path) -> Result<Vec<Check>, String> {
    let default = if args.restore {
        DEFAULT_RESTORE_TOOLS
    } else {
        DEFAULT_TOOLS
    };
    let tools: Vec<Tool> = args
        .tools
        .as_deref()
        .unwrap_or(default)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|n| Tool::parse(n, args.jobs).ok_or(format!("unknown tool {n} (known: {TOOL_NAMES})")))
        .collect::<Result<_, _>>()?;
    if let Some(t) = tools.iter().find(|t| t.source().is_some() != args.restore) {
        return Err(format!(
            "{} is {} tool: {}",
            t.label(),
            if args.restore { "a dump" } else { "a restore" },
            if args.restore {
                "--restore takes restore tools only"
            } else {
                "restore tools need --restore"
            }
        ));
    }
    let load_before = loadavg();
    let dir = out_dir(args.dir.as_deref())?;
    let binary = snapshot(coffer, dir.path())?;
    let pg = start_server()?;
    let spec = Spec {
        scale: args.scale,
        wide_rows: args
            .wide_rows
            .unwrap_or_else(|| Spec::default_wide_rows(args.scale)),
        small_tables: args.small_tables,
    };
    let d = build(&pg, "bench", spec)?;
    let ctx = Ctx {
        pg: &pg,
        dataset: &d,
        coffer: &binary,
        dir: dir.path(),
        copy_batch: args.copy_batch,
        coffer_args: &args.coffer_args,
    };
    let warm = Instant::now();
    ctx.run(&Tool::CopyFloor { jobs: args.jobs }, 0)
        .map_err(|e| format!("warm-up: {e}"))?;
    eprintln!(
        "compare: cache warmed (one COPY of every table, {:.1} s)",
        warm.elapsed().as_secs_f64()
    );
    let mut sources: Vec<Tool> = Vec::new();
    for src in tools.iter().filter_map(Tool::source) {
        if !sources.contains(&src) {
            sources.push(src);
        }
    }
    for src in &sources {
        let r = ctx
            .run(src, 0)
            .map_err(|e| format!("{} (restore input): {e}", src.label()))?;
        eprintln!(
            "compare: restore input: {} in {:.2} s, {:.1} MB",
            src.label(),
            r.usage.wall.as_secs_f64(),
            r.output_bytes.unwrap_or(0) as f64 / 1e6
        );
    }
    let rows = rounds(&ctx, &tools, args.runs)?;
    let raw = rows
        .iter()
        .flat_map(|s| s.runs.iter())
        .find_map(|r| r.raw_bytes);
    let checks = if args.restore {
        report::restore_checks(&rows)
    } else {
        report::checks(&rows)
    };
    let mut human = header(args, coffer, &load_before);
    if args.restore {
        human += &format!(
            "mode: restore into a fresh empty database ({}) each run; out MB = the restore's input\n",
            ctx.restore_db()
        );
    }
    human += &format!(
        "dataset: pgbench scale {}, {} wide rows ({:.1} MB TOAST), {} small tables; {} tables, {:.1} MB on disk{}\n\n",
        spec.scale,
        spec.wide_rows,
        d.wide_toast_bytes as f64 / 1e6,
        spec.small_tables,
        d.tables.len(),
        d.db_bytes as f64 / 1e6,
        raw.map(|r| format!(", {:.1} MB of COPY text", r as f64 / 1e6))
            .unwrap_or_default()
    );
    human += &report::table(&rows, cores());
    human += "\n";
    human += &report::phase_lines(&rows);
    human += &report::check_lines(&checks);
    let doc = report::json(
        &rows,
        &checks,
        cores(),
        json!({
            "dataset": dataset_json(&d, raw),
            "mode": if args.restore { "restore" } else { "dump" },
            "jobs": args.jobs,
            "runs": args.runs,
            "coffer_args": args.coffer_args,
            "cores": cores(),
            "load_before": load_before,
            "load_after": loadavg(),
            "server_settings": SERVER_SETTINGS.iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>(),
        }),
    );
    emit(args.json, &human, doc);
    finish_dir(args.keep, dir);
    Ok(checks)
}

/// `--rss-scaling` passes when the median peak RSS at the large scale is at most this many
/// times the one at the small scale. Peak RSS varies from run to run with how many frames
/// happen to be in flight (±30 % seen), so the bound is loose; memory that grew with the data
/// would grow as much as the data (≈3.6× from scale 5 to 20).
const RSS_GROWTH: f64 = 1.5;

/// coffer alone at two scales, interleaved, to show whether its peak RSS grows with the data.
fn rss_scaling(args: &Args, coffer: &Path) -> Result<Vec<Check>, String> {
    let load_before = loadavg();
    let dir = out_dir(args.dir.as_deref())?;
    let binary = snapshot(coffer, dir.path())?;
    let pg = start_server()?;
    let mut sets = Vec::new();
    for scale in [args.rss_small, args.scale] {
        let spec = Spec {
            scale,
            wide_rows: Spec::default_wide_rows(scale),
            small_tables: args.small_tables,
        };
        sets.push(build(&pg, &format!("bench_s{scale}"), spec)?);
    }
    let tool = Tool::Coffer {
        jobs: args.jobs,
        level: None,
    };
    let mut results: Vec<Vec<_>> = vec![Vec::new(), Vec::new()];
    for d in &sets {
        // warm-up, unmeasured
        let sub = dir.path().join(&d.db);
        std::fs::create_dir_all(&sub).map_err(|e| e.to_string())?;
        Ctx {
            pg: &pg,
            dataset: d,
            coffer: &binary,
            dir: &sub,
            copy_batch: args.copy_batch,
            coffer_args: &args.coffer_args,
        }
        .run(&Tool::CopyFloor { jobs: args.jobs }, 0)
        .map_err(|e| format!("warm-up: {e}"))?;
    }
    for round in 0..args.runs {
        for k in 0..sets.len() {
            let i = (k + round) % sets.len();
            let d = &sets[i];
            let sub = dir.path().join(&d.db);
            let ctx = Ctx {
                pg: &pg,
                dataset: d,
                coffer: &binary,
                dir: &sub,
                copy_batch: args.copy_batch,
                coffer_args: &args.coffer_args,
            };
            let r = ctx.run(&tool, round + 1).map_err(|e| e.to_string())?;
            eprintln!(
                "compare: round {}/{}: {} on {}: {:.2} s wall, peak RSS {:.1} MB",
                round + 1,
                args.runs,
                tool.label(),
                d.db,
                r.usage.wall.as_secs_f64(),
                r.usage.max_rss as f64 / 1e6
            );
            results[i].push(r);
        }
    }
    let rows: Vec<(Dataset, Summary)> = sets
        .into_iter()
        .zip(results)
        .map(|(d, r)| (d, Summary::new(tool.clone(), r)))
        .collect();
    let median_rss = |s: &Summary| {
        report::median(
            &s.runs
                .iter()
                .map(|r| r.usage.max_rss as f64 / 1e6)
                .collect::<Vec<_>>(),
        )
    };
    let mut human = header(args, coffer, &load_before);
    human += &format!(
        "\n{:<12} {:>10} {:>10} {:>8} {:>11} {:>11} {:>9}\n",
        "database", "DB MB", "COPY MB", "wall s", "RSS MB med", "RSS MB max", "out MB"
    );
    for (d, s) in &rows {
        let raw = s.runs.iter().find_map(|r| r.raw_bytes);
        human += &format!(
            "{:<12} {:>10.1} {:>10} {:>8.2} {:>11.1} {:>11.1} {:>9.1}\n",
            d.db,
            d.db_bytes as f64 / 1e6,
            raw.map_or("-".into(), |r| format!("{:.1}", r as f64 / 1e6)),
            s.wall,
            median_rss(s),
            s.rss_mb(),
            s.output.unwrap_or(0.0) / 1e6
        );
    }
    let (small, large) = (&rows[0], &rows[1]);
    let growth = median_rss(&large.1) / median_rss(&small.1);
    let data_growth = large.0.db_bytes as f64 / small.0.db_bytes as f64;
    let checks = vec![
        Check {
            name: format!(
                "{} peak RSS not growing with database size (data x{data_growth:.1}; median peak RSS <= {RSS_GROWTH}x)",
                tool.label()
            ),
            pass: Some(growth <= RSS_GROWTH),
            detail: format!(
                "{:.1} MB at scale {} vs {:.1} MB at scale {}: {growth:.2}x",
                median_rss(&small.1),
                small.0.spec.scale,
                median_rss(&large.1),
                large.0.spec.scale
            ),
        },
        Check {
            name: format!(
                "{} peak RSS < {} MB at both scales",
                tool.label(),
                report::RSS_LIMIT_MB
            ),
            pass: Some(rows.iter().all(|(_, s)| s.rss_mb() < report::RSS_LIMIT_MB)),
            detail: format!("max {:.1} MB", small.1.rss_mb().max(large.1.rss_mb())),
        },
    ];
    human += "\n";
    human += &report::check_lines(&checks);
    let doc = json!({
        "mode": "rss-scaling",
        "jobs": args.jobs,
        "runs": args.runs,
        "cores": cores(),
        "load_before": load_before,
        "load_after": loadavg(),
        "scales": rows.iter().map(|(d, s)| json!({
            "dataset": dataset_json(d, s.runs.iter().find_map(|r| r.raw_bytes)),
            "wall_s_median": s.wall,
            "peak_rss_mb": s.rss_mb(),
            "peak_rss_mb_median": median_rss(s),
            "output_mb": s.output.map(|b| b / 1e6),
            "runs_peak_rss_mb": s.runs.iter().map(|r| r.usage.max_rss as f64 / 1e6).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "checks": checks.iter().map(|c| json!({"check": c.name, "pass": c.pass, "detail": c.detail})).collect::<Vec<_>>(),
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
                println!(
                    "{USAGE}\ntools: {TOOL_NAMES} (default {DEFAULT_TOOLS}; with --restore {DEFAULT_RESTORE_TOOLS})"
                );
                return ExitCode::SUCCESS;
            }
            eprintln!(
                "compare: {e}\n{USAGE}\ntools: {TOOL_NAMES} (default {DEFAULT_TOOLS}; with --restore {DEFAULT_RESTORE_TOOLS})"
            );
            return ExitCode::from(2);
        }
    };
    let result = coffer_binary(args.coffer.as_deref(), args.no_build).and_then(|coffer| {
        if args.rss_scaling {
            rss_scaling(&args, &coffer)
        } else {
            compare(&args, &coffer)
        }
    });
    match result {
        Ok(checks) => {
            if args.strict && checks.iter().any(|c| c.pass == Some(false)) {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => {
            eprintln!("compare: {e}");
            ExitCode::from(3)
        }
    }
}

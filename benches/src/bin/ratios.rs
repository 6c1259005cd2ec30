//! Prints coffer's rate beside its floor's for every benchmark of the last
//! `cargo bench -p coffer-benches --bench format` run, with the ratio and whether it meets
//! the target (coffer ≥ 85 % of the floor's rate), then how the multi-threaded writer scales.
//!
//! It reads criterion's `new/benchmark.json` (ids, throughput) and `new/estimates.json`
//! (times) under `$CARGO_TARGET_DIR/criterion` (default: the workspace's `target/criterion`).
//! Within a criterion group each coffer function is paired with the floor of its thread
//! setting: `verify_1t` with `floor_1t`, `verify_par` and `read_par` with `floor_par`, and
//! anything else with `floor`.
//!
//! Usage: `ratios [--stat median|mean|slope] [--dir CRITERION_DIR] [--strict]`. The default
//! statistic is the median, which is the least disturbed by other work on a busy machine.
//! `--strict` exits with status 1 if any comparison misses its target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

/// coffer must reach this fraction of its floor's rate.
const TARGET: f64 = 0.85;

/// One benchmark's result.
struct Result {
    /// Raw bytes per iteration.
    bytes: f64,
    /// Nanoseconds per iteration (the chosen statistic).
    ns: f64,
}

impl Result {
    /// Rate in MB/s (10^6 bytes per second).
    fn mb_s(&self) -> f64 {
        self.bytes / self.ns * 1e3
    }
}

fn main() -> ExitCode {
    let mut stat = "median".to_string();
    let mut dir = None;
    let mut strict = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--stat" => stat = args.next().unwrap_or_default(),
            "--dir" => dir = args.next().map(PathBuf::from),
            "--strict" => strict = true,
            _ => {
                eprintln!("usage: ratios [--stat median|mean|slope] [--dir DIR] [--strict]");
                return ExitCode::from(2);
            }
        }
    }
    let dir = dir.unwrap_or_else(|| {
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
            .join("criterion")
    });

    // group id → function id → result
    let mut groups: BTreeMap<String, BTreeMap<String, Result>> = BTreeMap::new();
    let mut files = Vec::new();
    find_benchmarks(&dir, &mut files);
    for file in files {
        match load(&file, &stat) {
            Ok(Some((group, function, r))) => {
                groups.entry(group).or_default().insert(function, r);
            }
            Ok(None) => {}
            Err(e) => eprintln!("skipping {}: {e}", file.display()),
        }
    }
    if groups.is_empty() {
        eprintln!(
            "no criterion results under {}; run `cargo bench -p coffer-benches --bench format` first",
            dir.display()
        );
        return ExitCode::from(2);
    }

    println!("statistic: {stat} time per iteration; MB/s = 10^6 bytes of raw input per second");
    println!();
    println!(
        "{:<22} {:<12} {:>11} {:>11} {:>7} {:>7}  result",
        "benchmark", "coffer", "coffer MB/s", "floor MB/s", "ratio", "target"
    );
    let mut failed = 0;
    let mut compared = 0;
    for (group, functions) in ordered(&groups) {
        for (name, r) in functions.iter().filter(|(n, _)| !n.starts_with("floor")) {
            let Some((_, floor)) = floor_for(name, functions) else {
                println!("{group:<22} {name:<12} {:>11.0} {:>11}", r.mb_s(), "-");
                continue;
            };
            let ratio = r.mb_s() / floor.mb_s();
            let pass = ratio >= TARGET;
            compared += 1;
            failed += usize::from(!pass);
            println!(
                "{group:<22} {name:<12} {:>11.0} {:>11.0} {ratio:>7.3} {:>7}  {}",
                r.mb_s(),
                floor.mb_s(),
                format!("≥{TARGET}"),
                if pass { "PASS" } else { "FAIL" }
            );
        }
    }
    println!();
    println!("{compared} comparisons, {failed} below target");

    scaling(&groups);

    if strict && failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Groups in reading order: write, write_threads, verify; frame sizes numerically.
fn ordered(
    groups: &BTreeMap<String, BTreeMap<String, Result>>,
) -> Vec<(&String, &BTreeMap<String, Result>)> {
    let mut v: Vec<_> = groups.iter().collect();
    v.sort_by_key(|(g, _)| {
        let mut parts = g.split('/');
        let kind = parts.next().unwrap_or_default();
        let rank = ["write", "write_threads", "verify"]
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(9);
        let size: u64 = parts
            .next()
            .map(|p| p.trim_end_matches("MiB").parse().unwrap_or(0))
            .unwrap_or(0);
        (rank, size, g.to_string())
    });
    v
}

/// The floor a coffer function is compared with: `floor_<suffix>` when its name ends in
/// `_<suffix>` and such a floor exists, else `floor`.
fn floor_for<'a>(
    name: &str,
    functions: &'a BTreeMap<String, Result>,
) -> Option<(String, &'a Result)> {
    let suffixed = name
        .rsplit_once('_')
        .map(|(_, suffix)| format!("floor_{suffix}"))
        .filter(|f| functions.contains_key(f));
    let floor = suffixed.unwrap_or_else(|| "floor".to_string());
    functions.get(&floor).map(|r| (floor, r))
}

/// The writer's scaling over producer threads, beside the floor's.
fn scaling(groups: &BTreeMap<String, BTreeMap<String, Result>>) {
    let mut rows: Vec<(u32, &BTreeMap<String, Result>)> = groups
        .iter()
        .filter_map(|(g, f)| Some((g.strip_prefix("write_threads/")?.parse().ok()?, f)))
        .collect();
    rows.sort_by_key(|(n, _)| *n);
    let Some(&(base_n, base)) = rows.first() else {
        return;
    };
    let rate = |f: &BTreeMap<String, Result>, name: &str| f.get(name).map(Result::mb_s);
    println!();
    println!("writer scaling (4 MiB frames, zstd 1), relative to {base_n} thread(s):");
    println!(
        "{:>8} {:>11} {:>8} {:>11} {:>8} {:>14}",
        "threads", "coffer MB/s", "scaling", "floor MB/s", "scaling", "coffer/floor"
    );
    for (n, f) in &rows {
        let (Some(c), Some(c0), Some(fl), Some(fl0)) = (
            rate(f, "coffer"),
            rate(base, "coffer"),
            rate(f, "floor"),
            rate(base, "floor"),
        ) else {
            continue;
        };
        println!(
            "{n:>8} {c:>11.0} {:>7.2}× {fl:>11.0} {:>7.2}× {:>14.3}",
            c / c0,
            fl / fl0,
            c / fl
        );
    }
}

/// Every `new/benchmark.json` under `dir`.
fn find_benchmarks(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == "new") {
                let b = p.join("benchmark.json");
                if b.is_file() {
                    out.push(b);
                }
            } else {
                find_benchmarks(&p, out);
            }
        }
    }
}

/// (group id, function id, result) from one `benchmark.json` and its `estimates.json`;
/// `None` for benchmarks without a byte throughput (not ours).
fn load(
    benchmark: &Path,
    stat: &str,
) -> std::result::Result<Option<(String, String, Result)>, String> {
    let read = |p: &Path| -> std::result::Result<Value, String> {
        let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| e.to_string())
    };
    let b = read(benchmark)?;
    let Some(bytes) = b["throughput"]["Bytes"].as_f64() else {
        return Ok(None);
    };
    let group = b["group_id"].as_str().ok_or("no group_id")?.to_string();
    let function = b["function_id"].as_str().unwrap_or_default().to_string();
    let e = read(&benchmark.with_file_name("estimates.json"))?;
    let ns = e[stat]["point_estimate"]
        .as_f64()
        .ok_or_else(|| format!("no {stat} estimate"))?;
    Ok(Some((group, function, Result { bytes, ns })))
}

//! What both comparison bins (`compare` for PostgreSQL, `compare_redis`) need around the
//! measured runs: the release coffer binary, a private copy of it, the run's directory, the
//! machine's load and cores, and printing the human and JSON reports.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's target directory (`$CARGO_TARGET_DIR` or `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The release coffer binary: `explicit` if given (`--coffer`); otherwise
/// `target/release/coffer`, after `cargo build --release -p coffer` unless `no_build` (a
/// no-op when the binary is up to date, and otherwise the guard against comparing
/// yesterday's coffer with today's code).
pub fn coffer_binary(explicit: Option<&Path>, no_build: bool) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return p
            .canonicalize()
            .map_err(|e| format!("--coffer {}: {e}", p.display()));
    }
    let path = target_dir().join("release").join("coffer");
    if !no_build {
        eprintln!("compare: cargo build --release -p coffer (a no-op when up to date)");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "-p", "coffer"])
            .current_dir(workspace())
            .status()
            .map_err(|e| format!("running cargo: {e}"))?;
        if !status.success() {
            if path.exists() {
                eprintln!(
                    "compare: WARNING: building coffer failed; using the existing {}, which may be stale",
                    path.display()
                );
            } else {
                return Err("cargo build --release -p coffer failed".into());
            }
        }
    }
    path.canonicalize().map_err(|e| {
        format!(
            "{}: {e}; run cargo build --release -p coffer",
            path.display()
        )
    })
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` prints them.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Cores this process may use.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// A new directory for the run's outputs and logs, in `dir`, else `$COFFER_BENCH_DIR`, else
/// the temp dir.
pub fn out_dir(dir: Option<&Path>) -> Result<tempfile::TempDir, String> {
    let parent = dir
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("COFFER_BENCH_DIR").map(PathBuf::from))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new()
        .prefix("coffer-compare-")
        .tempdir_in(&parent)
        .map_err(|e| format!("creating a directory in {}: {e}", parent.display()))
}

/// A private copy of the coffer binary in the run's directory, so that a rebuild by someone
/// else during the run cannot swap binaries between rounds.
pub fn snapshot(coffer: &Path, dir: &Path) -> Result<PathBuf, String> {
    let copy = dir.join("coffer-bin");
    std::fs::copy(coffer, &copy).map_err(|e| format!("copying {}: {e}", coffer.display()))?;
    Ok(copy)
}

/// Prints the report: `human` on stdout, or with `json` the JSON document on stdout and
/// `human` on stderr.
pub fn emit(json: bool, human: &str, doc: serde_json::Value) {
    if json {
        eprint!("{human}");
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("JSON serialises")
        );
    } else {
        print!("{human}");
    }
}

/// Keeps the run's directory when `keep` (printing where), else lets it be removed.
pub fn finish_dir(keep: bool, dir: tempfile::TempDir) {
    if keep {
        let p = dir.keep();
        eprintln!("compare: outputs and logs kept in {}", p.display());
    }
}

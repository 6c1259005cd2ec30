//! `coffer verify FILE`: every check of the format, without a database. FILE may also be a
//! backup set's record (`BACKUP_DIR/sets/<id>.json`): then every archive of the set is
//! verified and its BLAKE3 compared with the one recorded when it was written.

use std::collections::HashMap;
use std::path::Path;

use coffer_format::{KeySource, VerifyReport};

use super::ops::verify_and_hash;
use crate::error::CliError;
use crate::sets::{BackupDir, SetRecord};
use crate::{exit, human};

/// Verifies `path`; prints a summary (or JSON) and returns the exit code.
pub fn run(path: &Path, key: Option<&KeySource>, json: bool) -> Result<u8, CliError> {
    if path.extension().is_some_and(|x| x == "json") {
        return verify_set(path, key, json);
    }
    let report = coffer_format::verify(path, key).map_err(|e| CliError::reading(path, e))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", render(path, &report));
    }
    Ok(if report.is_intact() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

/// The human report: a verdict line, then either a summary or one line per problem.
pub fn render(path: &Path, r: &VerifyReport) -> String {
    let mut out = String::new();
    let complete = r.streams.iter().filter(|s| s.complete).count();
    let raw: u64 = r.streams.iter().map(|s| s.raw_len).sum();
    if r.is_intact() {
        out += &format!("{}: intact\n", path.display());
    } else {
        out += &format!(
            "{}: DAMAGED ({} problem{})\n",
            path.display(),
            r.problems.len(),
            plural(r.problems.len())
        );
        let names: HashMap<u32, &str> = r
            .streams
            .iter()
            .filter_map(|s| s.descriptor.as_ref().map(|d| (s.id, d.name.as_str())))
            .collect();
        for p in &r.problems {
            let what = match (p.stream, p.seq) {
                (Some(u32::MAX), Some(0)) => ", manifest frame".to_string(),
                (Some(u32::MAX), _) => ", index frame".to_string(),
                (Some(s), Some(q)) => format!(
                    ", stream {s} ({}) frame seq {q}",
                    names.get(&s).unwrap_or(&"?")
                ),
                (Some(s), None) => format!(", stream {s} ({})", names.get(&s).unwrap_or(&"?")),
                _ => String::new(),
            };
            out += &format!("  offset {}{what}: {}\n", p.offset, p.detail);
        }
    }
    out += &format!("  archive id  {}\n", human::short_hex(&r.archive_id));
    out += &format!(
        "  encrypted   {}\n",
        match (r.encrypted, r.payloads_checked) {
            (false, _) => "no",
            (true, true) => "yes (payloads authenticated)",
            (true, false) => "yes (no key given: stored bytes checked, payloads not decrypted)",
        }
    );
    out += &format!("  sealed      {}\n", if r.sealed { "yes" } else { "NO" });
    out += &format!("  streams     {} ({complete} complete)\n", r.streams.len());
    out += &format!(
        "  frames      {}, {} in file, {} of data\n",
        r.frames,
        human::bytes(r.file_len),
        human::bytes(raw)
    );
    out
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Verifies every archive of a backup set, and that each is the file the set recorded.
fn verify_set(record: &Path, key: Option<&KeySource>, json: bool) -> Result<u8, CliError> {
    let bytes = std::fs::read(record)
        .map_err(|e| CliError::new(exit::BAD_INPUT, format!("{}: {e}", record.display())))?;
    let set: SetRecord = serde_json::from_slice(&bytes).map_err(|e| {
        CliError::new(
            exit::BAD_INPUT,
            format!("{}: not a backup set record: {e}", record.display()),
        )
    })?;
    // sets/<id>.json lives in BACKUP_DIR/sets/
    let root = record
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let mut problems = Vec::new();
    let mut parts = Vec::new();
    if !set.ok {
        problems.push(format!("set {} was recorded as failed", set.id));
    }
    for part in &set.parts {
        let kind = part.kind.map_or("?", |k| k.name());
        let Some(file) = &part.file else {
            problems.push(format!(
                "{kind}: no archive ({})",
                part.error.as_deref().unwrap_or("the part failed")
            ));
            continue;
        };
        let Some(path) = BackupDir::new(root).archive_path(file) else {
            problems.push(format!(
                "{kind}: {file:?} is not an archive name coffer writes"
            ));
            continue;
        };
        if !path.exists() {
            problems.push(format!("{kind}: {} is missing", path.display()));
            continue;
        }
        let (report, hash) = verify_and_hash(&path, key)?;
        let hash_ok = part.blake3.as_deref() == Some(hash.as_str());
        if !hash_ok {
            problems.push(format!(
                "{kind}: {} is not the file the set recorded (BLAKE3 differs)",
                path.display()
            ));
        }
        if !report.is_intact() {
            problems.push(format!(
                "{kind}: {} is damaged ({} problems)",
                path.display(),
                report.problems.len()
            ));
        }
        if !json {
            print!("{}", render(&path, &report));
        }
        parts.push(serde_json::json!({"kind": kind, "file": file, "blake3_matches": hash_ok, "report": report}));
    }
    if json {
        let doc = serde_json::json!({"set": set.id, "intact": problems.is_empty(), "problems": problems, "parts": parts});
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
    } else {
        println!(
            "set {}: {}",
            set.id,
            if problems.is_empty() {
                "intact"
            } else {
                "NOT INTACT"
            }
        );
        for p in &problems {
            println!("  {p}");
        }
    }
    Ok(if problems.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}

//! `coffer verify FILE`: every check of the format, without a database.

use std::collections::HashMap;
use std::path::Path;

use coffer_format::{KeySource, VerifyReport};

use crate::error::CliError;
use crate::{exit, human};

/// Verifies `path`; prints a summary (or JSON) and returns the exit code.
pub fn run(path: &Path, key: Option<&KeySource>, json: bool) -> Result<u8, CliError> {
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

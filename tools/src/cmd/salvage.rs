//! `coffer salvage FILE -o OUT`: a new sealed archive of whatever is intact in FILE.

use std::path::Path;

use coffer_format::KeySource;

use crate::error::CliError;
use crate::exit;

/// Salvages `input` into `output`; exit 0 when nothing was lost, 1 when something was.
pub fn run(
    input: &Path,
    output: &Path,
    key: Option<KeySource>,
    level: i32,
    force: bool,
) -> Result<u8, CliError> {
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(output)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(CliError::new(
            exit::USAGE,
            "salvage never overwrites its input: choose another -o",
        ));
    }
    if output.exists() && !force {
        return Err(CliError::new(
            exit::USAGE,
            format!("{} exists; use --force to replace it", output.display()),
        ));
    }
    let report = coffer_format::salvage(input, output, key, level).map_err(|e| match e {
        coffer_format::Error::Io { output: true, .. } => CliError::writing(e),
        e => CliError::reading(input, e),
    })?;
    let lost: u64 = report
        .streams
        .iter()
        .map(|s| s.lost_seqs.len() as u64)
        .sum();
    let incomplete = report
        .streams
        .iter()
        .filter(|s| s.status != "complete")
        .count();
    println!(
        "{} -> {}: {} stream{} recovered, {} complete",
        input.display(),
        output.display(),
        report.streams.len(),
        if report.streams.len() == 1 { "" } else { "s" },
        report.streams.len() - incomplete
    );
    let names = &report.written.manifest.streams;
    for s in report.streams.iter().filter(|s| s.status != "complete") {
        let name = names
            .iter()
            .find(|n| n.id == s.id)
            .map_or("?", |n| n.descriptor.name.as_str());
        let lost = if s.lost_seqs.is_empty() {
            String::new()
        } else {
            format!(", lost frame seqs {:?}", s.lost_seqs)
        };
        println!(
            "  stream {} ({name}): {}, {} frames recovered{lost}",
            s.original_id, s.status, s.recovered_frames
        );
    }
    for p in &report.problems {
        println!("  damage: {p}");
    }
    Ok(
        if report.problems.is_empty() && lost == 0 && incomplete == 0 {
            exit::OK
        } else {
            exit::DAMAGED
        },
    )
}

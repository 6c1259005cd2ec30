//! `coffer list FILE [--json]`: what a sealed archive holds, like `pg_restore --list`.

use std::path::Path;

use coffer_format::{KeySource, MappedArchive};

use crate::error::CliError;
use crate::human;

/// Prints the archive's streams (or its manifest and header as JSON).
pub fn run(path: &Path, key: Option<&KeySource>, json: bool) -> Result<u8, CliError> {
    let a = MappedArchive::open(path, key).map_err(|e| CliError::reading(path, e))?;
    let h = a.header();
    let m = a.manifest();
    if json {
        let doc = serde_json::json!({
            "archive_id": coffer_format::hex(&h.archive_id),
            "encrypted": h.encrypted(),
            "writer": h.writer,
            "created_unix_ms": h.created_unix_ms,
            "file_len": a.file_len(),
            "manifest": m,
        });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("serialises")
        );
        return Ok(crate::exit::OK);
    }
    println!(";");
    println!("; Archive: {}", path.display());
    println!(
        "; Id: {}   Written by: {}",
        coffer_format::hex(&h.archive_id),
        h.writer
    );
    println!("; Created (ms since epoch): {}", h.created_unix_ms);
    println!("; Encrypted: {}", if h.encrypted() { "yes" } else { "no" });
    println!(
        "; Size: {}, {} streams",
        human::bytes(a.file_len()),
        m.streams.len()
    );
    if let Some(s) = &m.salvage {
        println!(
            "; Salvaged archive: {} streams recovered (see --json for what was lost)",
            s.len()
        );
    }
    println!(";");
    println!(
        "{:>5}  {:<18} {:<40} {:>7} {:>11} {:>11}",
        "id", "kind", "name", "frames", "data", "stored"
    );
    for s in &m.streams {
        println!(
            "{:>5}  {:<18} {:<40} {:>7} {:>11} {:>11}",
            s.id,
            s.descriptor.kind,
            s.descriptor.name,
            s.data_frames,
            human::bytes(s.raw_len),
            human::bytes(s.stored_len)
        );
    }
    Ok(crate::exit::OK)
}

//! Writing an archive back out as a `dump.rdb` that `redis-server` loads at start.
//!
//! The file has the source's RDB version (the raw value bytes are in that version's
//! format, so the target must be at least as new as the source), then AUX fields
//! (`redis-ver` of the source, `redis-bits`, `ctime`, `used-mem`, `aof-base`), module AUX
//! data and function libraries (`FUNCTION2`, RDB ≥ 10) as archived, then per database
//! `SELECTDB` and `RESIZEDB`, and per key `[EXPIRETIME_MS] [IDLE | FREQ] type key value`
//! with the value bytes exactly as archived (streamed piece by piece, never whole), then
//! `EOF` and the CRC-64 of everything before it.
//!
//! The file is written as `FILE.partial` (mode 0600), synced, then renamed to `FILE`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_format::MappedArchive;

use super::archive::{DbMap, RedisArchive, glob_match};
use super::crc64::Crc64;
use super::rdb::{opcodes, types};
use super::record::Record;
use crate::{Error, ErrorKind, Result};

/// What to write.
#[derive(Clone, Debug, Default)]
pub struct RdbWriteOptions {
    /// Where each database goes.
    pub db_map: DbMap,
    /// Only keys matching this glob.
    pub pattern: Option<Vec<u8>>,
    /// Leave out keys whose expiry has passed (Redis would drop them on load anyway).
    pub skip_expired: bool,
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RdbWriteSummary {
    /// RDB version of the file.
    pub rdb_version: u32,
    /// Keys written.
    pub keys: u64,
    /// Keys left out (pattern, database map, expired).
    pub skipped: u64,
    /// Function libraries written.
    pub functions: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

/// The RDB length encoding (`rdbSaveLen`).
pub fn put_len(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if let Ok(n32) = u32::try_from(n) {
        out.push(0x80);
        out.extend_from_slice(&be32(n32));
    } else {
        out.push(0x81);
        out.extend_from_slice(&be64(n));
    }
}

#[allow(
    clippy::big_endian_bytes,
    reason = "the RDB format mandates big-endian here"
)]
fn be32(n: u32) -> [u8; 4] {
    n.to_be_bytes()
}

#[allow(
    clippy::big_endian_bytes,
    reason = "the RDB format mandates big-endian here"
)]
fn be64(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

/// The 9 bytes an RDB of `version` starts with: `REDIS0012`, or Valkey's `VALKEY080`.
pub fn magic(version: u32) -> Vec<u8> {
    if super::rdb::is_valkey(version) {
        format!("VALKEY{version:03}").into_bytes()
    } else {
        format!("REDIS{version:04}").into_bytes()
    }
}

/// A raw RDB string.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_len(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// A writer that checksums what passes through it.
struct CrcWriter<W: Write> {
    w: W,
    crc: Crc64,
    bytes: u64,
}

impl<W: Write> CrcWriter<W> {
    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        self.bytes += b.len() as u64;
        self.w.write_all(b).map_err(Error::from)
    }
}

/// Writes the RDB to `path` (through `path.partial`, then a rename).
pub fn write_rdb(
    archive: &MappedArchive,
    path: &Path,
    opts: &RdbWriteOptions,
) -> Result<RdbWriteSummary> {
    let mut partial: PathBuf = path.as_os_str().to_owned().into();
    partial.as_mut_os_string().push(".partial");
    let file = create_private(&partial)?;
    let r = (|| {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let s = write_to(archive, &mut w, opts)?;
        let f = w.into_inner().map_err(|e| {
            Error::new(ErrorKind::Io, format!("writing {}: {e}", partial.display()))
        })?;
        f.sync_all()?;
        Ok(s)
    })();
    match r {
        Ok(s) => {
            std::fs::rename(&partial, path).map_err(|e| {
                let _ = std::fs::remove_file(&partial);
                Error::new(
                    ErrorKind::Io,
                    format!("renaming {} to {}: {e}", partial.display(), path.display()),
                )
            })?;
            Ok(s)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

fn create_private(path: &Path) -> Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
        .map_err(|e| Error::new(ErrorKind::Io, format!("creating {}: {e}", path.display())))
}

/// Writes the RDB to any writer.
pub fn write_to(
    archive: &MappedArchive,
    w: &mut dyn Write,
    opts: &RdbWriteOptions,
) -> Result<RdbWriteSummary> {
    let ra = RedisArchive::new(archive)?;
    let version = ra.rdb_version;
    let mut out = CrcWriter {
        w,
        crc: Crc64::new(),
        bytes: 0,
    };
    let mut summary = RdbWriteSummary {
        rdb_version: version,
        ..RdbWriteSummary::default()
    };
    let mut b = magic(version);
    let (aux, module_aux) = ra.aux()?;
    let source_ver = aux
        .iter()
        .find(|(k, _)| k == b"redis-ver")
        .map(|(_, v)| v.clone())
        .or_else(|| ra.server_version.clone().map(String::into_bytes))
        .unwrap_or_else(|| b"0.0.0".to_vec());
    let ctime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (b"redis-ver", &source_ver),
        (b"redis-bits", b"64"),
        (b"ctime", ctime.as_bytes()),
        (b"used-mem", b"0"),
    ];
    if version >= 10 {
        fields.push((b"aof-base", b"0"));
    }
    for (k, v) in fields {
        b.push(opcodes::AUX);
        put_string(&mut b, k);
        put_string(&mut b, v);
    }
    for raw in &module_aux {
        b.push(opcodes::MODULE_AUX);
        b.extend_from_slice(raw);
    }
    let functions = ra.functions()?;
    if !functions.is_empty() && version < 10 {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("the archive has function libraries but RDB version {version}"),
        ));
    }
    for code in &functions {
        b.push(opcodes::FUNCTION2);
        put_string(&mut b, code);
        summary.functions += 1;
    }
    out.put(&b)?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Databases mapped onto the same target are written under one SELECTDB each time
    // they start; Redis accepts a database selected twice.
    for d in ra.databases()? {
        let Some(target) = opts.db_map.target(d.db) else {
            summary.skipped += d.keys;
            continue;
        };
        let mut head = vec![opcodes::SELECTDB];
        put_len(&mut head, u64::from(target));
        head.push(opcodes::RESIZEDB);
        put_len(&mut head, if opts.pattern.is_none() { d.keys } else { 0 });
        put_len(&mut head, 0);
        out.put(&head)?;
        // Whether the current key is being written (false: filtered out).
        let mut keep = false;
        ra.db_records(&d, &mut |r| {
            match r {
                Record::Key {
                    type_byte,
                    meta,
                    key,
                    piece,
                    ..
                } => {
                    keep = opts.pattern.as_deref().is_none_or(|p| glob_match(p, key))
                        && !(opts.skip_expired && meta.expire_ms.is_some_and(|e| e <= now));
                    if !types_known(type_byte, version) {
                        return Err(Error::new(
                            ErrorKind::Corrupt,
                            format!("unknown type byte {type_byte} in the archive"),
                        ));
                    }
                    if !keep {
                        summary.skipped += 1;
                        return Ok(());
                    }
                    let mut h = Vec::with_capacity(key.len() + 32);
                    if let Some(e) = meta.expire_ms {
                        h.push(opcodes::EXPIRETIME_MS);
                        h.extend_from_slice(&e.to_le_bytes());
                    }
                    if let Some(i) = meta.idle_s {
                        h.push(opcodes::IDLE);
                        put_len(&mut h, i);
                    } else if let Some(f) = meta.freq {
                        h.push(opcodes::FREQ);
                        h.push(f);
                    }
                    h.push(type_byte);
                    put_string(&mut h, key);
                    out.put(&h)?;
                    out.put(piece)?;
                    summary.keys += 1;
                }
                Record::Value { piece, .. } => {
                    if keep {
                        out.put(piece)?;
                    }
                }
                _ => {
                    return Err(Error::new(
                        ErrorKind::Corrupt,
                        "a non-key record in a database stream",
                    ));
                }
            }
            Ok(())
        })?;
    }
    out.put(&[opcodes::EOF])?;
    let crc = out.crc.value();
    out.put(&crc.to_le_bytes())?;
    summary.bytes = out.bytes;
    Ok(summary)
}

fn types_known(t: u8, version: u32) -> bool {
    super::rdb::is_value_type(t, version) && t != types::MODULE_PRE_GA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        use super::super::rdb::primitives::plain_length;
        for n in [
            0u64,
            63,
            64,
            16383,
            16384,
            u32::MAX as u64,
            u32::MAX as u64 + 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_len(&mut b, n);
            assert_eq!(plain_length(&b, 0).unwrap(), Some((n, b.len())), "{n}");
        }
    }
}

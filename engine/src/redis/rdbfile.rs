//! Writing an archive back out as a `dump.rdb` that `redis-server` loads at start.
//!
//! The file has the source's RDB version (the raw value bytes are in that version's
//! format, so the target must be at least as new as the source), or the one asked for
//! ([`RdbWriteOptions::version`]: 9 for Redis 5.0–6.2, 10 for 7.0, 11 for 7.2 and Valkey
//! 7.2–8.x, 12 for Redis 7.4–8.x, 80 for Valkey 9, whose magic is `VALKEY080`). Then AUX
//! fields (`redis-ver` of the source, or `valkey-ver` in Valkey's RDB; `redis-bits`,
//! `ctime`, `used-mem`, `aof-base`), module AUX data and function libraries (`FUNCTION2`,
//! RDB ≥ 10; into an older version they are left out, and named in the summary) as
//! archived, then per database `SELECTDB` and `RESIZEDB`, and per key `[EXPIRETIME_MS]
//! [IDLE | FREQ] type key value` with the value bytes exactly as archived (streamed piece
//! by piece, never whole) when the version has the value's type, else re-encoded
//! ([`super::reencode`], the value held whole); then `EOF` and the CRC-64 of everything
//! before it. Values that cannot be written in the version (field TTLs before RDB 12
//! without [`RdbWriteOptions::drop_field_ttl`], module values) fail the write, naming
//! their keys.
//!
//! The file is written as `FILE.partial` (mode 0600), synced, then renamed to `FILE`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use coffer_format::MappedArchive;

use super::archive::{DbMap, RedisArchive, glob_match};
use super::crc64::Crc64;
use super::rdb::{self, KeyMeta, opcodes, types};
use super::record::Record;
use super::reencode::{self, FieldTtls, Reencoded, reencode};
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
    /// The RDB version to write (the archive's when `None`); see the module documentation.
    pub version: Option<u32>,
    /// Into a version without hash field TTLs, write such hashes without them (else they
    /// fail the write).
    pub drop_field_ttl: bool,
}

/// The RDB versions [`RdbWriteOptions::version`] takes.
pub const WRITABLE_VERSIONS: [u32; 5] = [9, 10, 11, 12, 80];

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
    /// Function libraries left out (RDB < 10 has none), by name.
    pub functions_left_out: Vec<String>,
    /// Values re-encoded for the version.
    pub reencoded: u64,
    /// Field TTLs left out (`drop_field_ttl`).
    pub field_ttls_dropped: u64,
    /// Keys whose field TTLs were left out.
    pub field_ttl_keys: u64,
    /// The first few of them, as `db<N> "name"`.
    pub field_ttl_sample: Vec<String>,
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
    let source = ra.rdb_version;
    let version = opts.version.unwrap_or(source);
    if !WRITABLE_VERSIONS.contains(&version) && version != source {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "RDB version {version} is not one coffer writes (9: Redis 5.0-6.2, 10: 7.0, \
                 11: 7.2 and Valkey 7.2-8, 12: Redis 7.4-8, 80: Valkey 9)"
            ),
        ));
    }
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
    let aux_of = |k: &[u8]| aux.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
    let source_valkey = rdb::is_valkey(source)
        || ra.server.as_deref() == Some("valkey")
        || aux_of(b"valkey-ver").is_some();
    // The server version AUX field of the file's family: the source's when it is of that
    // family, else what such a server would say.
    let (ver_key, ver): (&[u8], Vec<u8>) = if rdb::is_valkey(version) {
        let v = aux_of(b"valkey-ver")
            .or_else(|| source_valkey.then(|| ra.server_version.clone().map(String::into_bytes))?)
            .unwrap_or_else(|| b"9.0.0".to_vec());
        (b"valkey-ver", v)
    } else {
        let v = aux_of(b"redis-ver")
            .or_else(|| source_valkey.then(|| b"7.2.4".to_vec()))
            .or_else(|| ra.server_version.clone().map(String::into_bytes))
            .unwrap_or_else(|| b"0.0.0".to_vec());
        (b"redis-ver", v)
    };
    let ctime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .to_string();
    let mut fields: Vec<(&[u8], &[u8])> = vec![
        (ver_key, &ver),
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
    for code in &ra.functions()? {
        if version < 10 {
            summary
                .functions_left_out
                .push(super::restore::library_name(code));
            continue;
        }
        b.push(opcodes::FUNCTION2);
        put_string(&mut b, code);
        summary.functions += 1;
    }
    out.put(&b)?;

    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let ttls = if opts.drop_field_ttl {
        FieldTtls::Drop
    } else {
        FieldTtls::Refuse
    };
    // Keys that cannot be written in the version: how many, the first few with why.
    let mut impossible = 0u64;
    let mut reasons: Vec<String> = Vec::new();
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
        // The current key: written as it comes, or gathered to be re-encoded, or left out.
        let mut cur = Current::Skip;
        let mut finish = |cur: Current,
                          out: &mut CrcWriter<&mut dyn Write>,
                          summary: &mut RdbWriteSummary|
         -> Result<()> {
            let Current::Gather {
                key,
                type_byte,
                meta,
                value,
            } = cur
            else {
                return Ok(());
            };
            let show = || format!("db{target} {:?}", String::from_utf8_lossy(&key));
            match reencode(type_byte, &value, source, version, now, ttls)
                .map_err(|e| e.context(format!("key {}", show())))?
            {
                Reencoded::Value {
                    type_byte,
                    value,
                    dropped_ttls,
                } => {
                    out.put(&key_header(&meta, type_byte, &key))?;
                    out.put(&value)?;
                    summary.keys += 1;
                    summary.reencoded += 1;
                    if dropped_ttls > 0 {
                        summary.field_ttls_dropped += dropped_ttls;
                        summary.field_ttl_keys += 1;
                        if summary.field_ttl_sample.len() < MAX_NAMED {
                            summary.field_ttl_sample.push(show());
                        }
                    }
                }
                Reencoded::Expired => summary.skipped += 1,
                Reencoded::Impossible(why) => {
                    impossible += 1;
                    if reasons.len() < MAX_NAMED {
                        reasons.push(format!("{}: {why}", show()));
                    }
                }
            }
            Ok(())
        };
        ra.db_records(&d, &mut |r| {
            match r {
                Record::Key {
                    type_byte,
                    meta,
                    key,
                    piece,
                    more,
                    ..
                } => {
                    finish(
                        std::mem::replace(&mut cur, Current::Skip),
                        &mut out,
                        &mut summary,
                    )?;
                    if !types_known(type_byte, source) {
                        return Err(Error::new(
                            ErrorKind::Corrupt,
                            format!("unknown type byte {type_byte} in the archive"),
                        ));
                    }
                    let keep = opts.pattern.as_deref().is_none_or(|p| glob_match(p, key))
                        && !(opts.skip_expired && meta.expire_ms.is_some_and(|e| e <= now));
                    if !keep {
                        summary.skipped += 1;
                        return Ok(());
                    }
                    if version == source || reencode::keeps(type_byte, source, version) {
                        out.put(&key_header(&meta, type_byte, key))?;
                        out.put(piece)?;
                        summary.keys += 1;
                        cur = Current::Write;
                    } else {
                        cur = Current::Gather {
                            key: key.to_vec(),
                            type_byte,
                            meta,
                            value: piece.to_vec(),
                        };
                    }
                    if !more {
                        finish(
                            std::mem::replace(&mut cur, Current::Skip),
                            &mut out,
                            &mut summary,
                        )?;
                    }
                }
                Record::Value { piece, more } => {
                    match &mut cur {
                        Current::Write => out.put(piece)?,
                        Current::Gather { value, .. } => value.extend_from_slice(piece),
                        Current::Skip => {}
                    }
                    if !more {
                        finish(
                            std::mem::replace(&mut cur, Current::Skip),
                            &mut out,
                            &mut summary,
                        )?;
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
        finish(cur, &mut out, &mut summary)?;
    }
    if impossible > 0 {
        let more = if impossible as usize > reasons.len() {
            "; …"
        } else {
            ""
        };
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "{impossible} keys cannot be written in RDB {version}: {}{more}; nothing was \
                 written",
                reasons.join("; ")
            ),
        ));
    }
    out.put(&[opcodes::EOF])?;
    let crc = out.crc.value();
    out.put(&crc.to_le_bytes())?;
    summary.bytes = out.bytes;
    Ok(summary)
}

/// Most keys named in an error or a summary.
const MAX_NAMED: usize = 20;

/// The key being written.
enum Current {
    /// Left out (or none).
    Skip,
    /// Written piece by piece as its records come.
    Write,
    /// Gathered whole, to be re-encoded at its end.
    Gather {
        key: Vec<u8>,
        type_byte: u8,
        meta: KeyMeta,
        value: Vec<u8>,
    },
}

/// `[EXPIRETIME_MS] [IDLE | FREQ] type key`.
fn key_header(meta: &KeyMeta, type_byte: u8, key: &[u8]) -> Vec<u8> {
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
    h
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

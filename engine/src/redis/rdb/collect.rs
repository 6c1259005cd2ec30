//! Whole-RDB convenience: parse everything into memory. For tests, verification and
//! small files; the dump path streams instead.

use std::io::Read;

use super::{Event, KeyHeader, RdbParser, Value, decode_value};
use crate::Result;

/// One key with its whole raw value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdbKey {
    /// Where and what it is.
    pub header: KeyHeader,
    /// The value bytes exactly as in the RDB (a DUMP payload minus type byte and footer).
    pub raw: Vec<u8>,
}

/// A parsed RDB, everything in memory.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rdb {
    /// RDB version.
    pub version: u32,
    /// AUX fields in order.
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
    /// Function libraries.
    pub functions: Vec<Vec<u8>>,
    /// Module AUX records: (module id, when, raw).
    pub module_aux: Vec<(u64, u64, Vec<u8>)>,
    /// RESIZEDB hints: (db, size, expires).
    pub resize: Vec<(u64, u64, u64)>,
    /// SLOT_INFO hints: (slot, size, expires).
    pub slots: Vec<(u64, u64, u64)>,
    /// Keys in order.
    pub keys: Vec<RdbKey>,
    /// The checksum trailer (None for RDB < 5; Some(0): not computed).
    pub checksum: Option<u64>,
}

impl Rdb {
    /// The value of an AUX field.
    pub fn aux(&self, key: &str) -> Option<&[u8]> {
        self.aux
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }
}

impl RdbKey {
    /// Decodes the value.
    pub fn value(&self, rdb_version: u32) -> Result<Value> {
        decode_value(self.header.type_byte, &self.raw, rdb_version).map_err(|e| {
            e.context(format!(
                "key {:?} in db {}",
                String::from_utf8_lossy(&self.header.key),
                self.header.db
            ))
        })
    }
}

fn drain(
    p: &mut RdbParser,
    rdb: &mut Rdb,
    current: &mut Option<RdbKey>,
    db: &mut u64,
) -> Result<()> {
    while let Some(ev) = p.next_event()? {
        match ev {
            Event::Header { version } => rdb.version = version,
            Event::Aux { key, value } => rdb.aux.push((key, value)),
            Event::SelectDb(n) => *db = n,
            Event::ResizeDb {
                db_size,
                expires_size,
            } => rdb.resize.push((*db, db_size, expires_size)),
            Event::SlotInfo {
                slot,
                size,
                expires_size,
            } => rdb.slots.push((slot, size, expires_size)),
            Event::Function(code) => rdb.functions.push(code),
            Event::ModuleAux {
                module_id,
                when,
                raw,
            } => rdb.module_aux.push((module_id, when, raw)),
            Event::KeyStart(header) => {
                *current = Some(RdbKey {
                    header,
                    raw: Vec::new(),
                })
            }
            Event::ValueChunk(c) => {
                if let Some(k) = current.as_mut() {
                    k.raw.extend_from_slice(c);
                }
            }
            Event::KeyEnd => rdb.keys.extend(current.take()),
            Event::End { checksum } => rdb.checksum = checksum,
        }
    }
    Ok(())
}

/// Parses a whole RDB from a reader, `read_size` bytes at a time.
pub fn parse_reader(mut r: impl Read, read_size: usize) -> Result<Rdb> {
    let mut p = RdbParser::new();
    let mut rdb = Rdb::default();
    let mut current = None;
    let mut db = 0;
    let mut buf = vec![0u8; read_size.max(1)];
    loop {
        drain(&mut p, &mut rdb, &mut current, &mut db)?;
        if p.is_done() {
            break;
        }
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        p.feed(&buf[..n]);
    }
    p.finish()?;
    if !p.trailing().is_empty() || r.read(&mut buf)? > 0 {
        return Err(crate::Error::new(
            crate::ErrorKind::Corrupt,
            format!("bytes after the end of the RDB (at byte {})", p.consumed()),
        ));
    }
    Ok(rdb)
}

/// Parses a whole RDB held in memory, feeding it `piece` bytes at a time (to exercise
/// the incremental parser; any value ≥ 1 gives the same result).
pub fn parse_bytes(data: &[u8], piece: usize) -> Result<Rdb> {
    parse_reader(data, piece)
}

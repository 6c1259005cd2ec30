//! The records in the DATA frames of coffer's Redis streams.
//!
//! A Redis dump archive holds one stream per database (descriptor kind `redis.db`, name
//! `db<N>`), plus `redis.functions` (function libraries) and `redis.aux` (the RDB's AUX
//! fields and module AUX data). Each DATA frame is a sequence of whole records; a record
//! never spans two frames, so any frame can be decoded by itself. Integers are
//! little-endian.
//!
//! ```text
//! KEY       0x01 | flags u8 | type u8 | db u32 | [expire_ms i64] [idle_s u64] [freq u8]
//!                | key_len u32 | key | piece_len u32 | piece
//! VALUE     0x02 | flags u8 | piece_len u32 | piece
//! FUNCTION  0x10 | len u32 | library source code
//! AUX       0x20 | key_len u32 | key | value_len u32 | value
//! MODULE_AUX 0x21 | len u32 | raw (module id, when opcode, when, module data, EOF)
//!
//! flags: bit 0 expiry present, bit 1 idle present, bit 2 freq present (KEY only);
//!        bit 3 MORE: the value continues in the next VALUE record of this stream
//! ```
//!
//! A key's value is the concatenation of the pieces of its KEY record and the VALUE
//! records that follow it, up to the first one without MORE. It is exactly the bytes the
//! RDB holds after the key name: with the type byte in front and a DUMP footer behind, it
//! is a `RESTORE` payload. A value bigger than a frame is cut into pieces on frame
//! boundaries, so memory stays bounded by the frame size, not by the key.
//!
//! Each database's manifest entry carries an order-independent digest: the XOR over its
//! keys of [`key_digest`] = BLAKE3(u64 key length ‖ key ‖ type byte ‖ value bytes).

use crate::redis::rdb::KeyMeta;
use crate::{Error, ErrorKind, Result};

/// Record tag: start of a key.
pub const TAG_KEY: u8 = 0x01;
/// Record tag: continuation of a key's value.
pub const TAG_VALUE: u8 = 0x02;
/// Record tag: a function library.
pub const TAG_FUNCTION: u8 = 0x10;
/// Record tag: an AUX field.
pub const TAG_AUX: u8 = 0x20;
/// Record tag: module AUX data.
pub const TAG_MODULE_AUX: u8 = 0x21;

/// Flag: expiry present.
pub const FLAG_EXPIRE: u8 = 1;
/// Flag: idle time present.
pub const FLAG_IDLE: u8 = 2;
/// Flag: LFU frequency present.
pub const FLAG_FREQ: u8 = 4;
/// Flag: the value continues in a VALUE record.
pub const FLAG_MORE: u8 = 8;

/// BLAKE3 of one key, for the per-database digest: (u64 LE key length, key, type, value).
pub fn key_digest(key: &[u8], type_byte: u8, value: &[u8]) -> [u8; 32] {
    let mut h = KeyHasher::new(key, type_byte);
    h.update(value);
    h.finish()
}

/// [`key_digest`] computed over a value that arrives in pieces.
pub struct KeyHasher(blake3::Hasher);

impl KeyHasher {
    /// Starts the digest of `key` of `type_byte`.
    pub fn new(key: &[u8], type_byte: u8) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(&(key.len() as u64).to_le_bytes());
        h.update(key);
        h.update(&[type_byte]);
        KeyHasher(h)
    }

    /// Adds value bytes.
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The digest.
    pub fn finish(&self) -> [u8; 32] {
        *self.0.finalize().as_bytes()
    }
}

/// XORs `digest` into `acc`.
pub fn xor_into(acc: &mut [u8; 32], digest: &[u8; 32]) {
    for (a, d) in acc.iter_mut().zip(digest) {
        *a ^= d;
    }
}

/// Appends a KEY record header and an empty piece; returns the offsets of its flags byte
/// and of its piece length, to patch as the value arrives.
pub fn push_key(
    buf: &mut Vec<u8>,
    db: u64,
    key: &[u8],
    type_byte: u8,
    meta: &KeyMeta,
) -> Result<(usize, usize)> {
    let db = u32::try_from(db).map_err(|_| {
        Error::new(
            ErrorKind::Unsupported,
            format!("database number {db} is too large"),
        )
    })?;
    let key_len = u32::try_from(key.len())
        .map_err(|_| Error::new(ErrorKind::Unsupported, "a key longer than 4 GiB"))?;
    let mut flags = 0;
    if meta.expire_ms.is_some() {
        flags |= FLAG_EXPIRE;
    }
    if meta.idle_s.is_some() {
        flags |= FLAG_IDLE;
    }
    if meta.freq.is_some() {
        flags |= FLAG_FREQ;
    }
    buf.push(TAG_KEY);
    let flags_at = buf.len();
    buf.push(flags);
    buf.push(type_byte);
    buf.extend_from_slice(&db.to_le_bytes());
    if let Some(e) = meta.expire_ms {
        buf.extend_from_slice(&e.to_le_bytes());
    }
    if let Some(i) = meta.idle_s {
        buf.extend_from_slice(&i.to_le_bytes());
    }
    if let Some(f) = meta.freq {
        buf.push(f);
    }
    buf.extend_from_slice(&key_len.to_le_bytes());
    buf.extend_from_slice(key);
    let len_at = buf.len();
    buf.extend_from_slice(&0u32.to_le_bytes());
    Ok((flags_at, len_at))
}

/// Appends a VALUE record with an empty piece; returns the offsets as [`push_key`].
pub fn push_value(buf: &mut Vec<u8>) -> (usize, usize) {
    buf.push(TAG_VALUE);
    let flags_at = buf.len();
    buf.push(0);
    let len_at = buf.len();
    buf.extend_from_slice(&0u32.to_le_bytes());
    (flags_at, len_at)
}

/// Appends a record with one length-prefixed field (FUNCTION, MODULE_AUX).
pub fn push_blob(buf: &mut Vec<u8>, tag: u8, blob: &[u8]) {
    buf.push(tag);
    buf.extend_from_slice(&(blob.len() as u32).to_le_bytes());
    buf.extend_from_slice(blob);
}

/// Appends an AUX record.
pub fn push_aux(buf: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    buf.push(TAG_AUX);
    buf.extend_from_slice(&(key.len() as u32).to_le_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(&(value.len() as u32).to_le_bytes());
    buf.extend_from_slice(value);
}

/// One decoded record, borrowing from its frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// The start of a key.
    Key {
        /// Database.
        db: u32,
        /// RDB type byte.
        type_byte: u8,
        /// Expiry and eviction metadata.
        meta: KeyMeta,
        /// Key name.
        key: &'a [u8],
        /// The value, or its first piece.
        piece: &'a [u8],
        /// Whether VALUE records follow.
        more: bool,
    },
    /// The next piece of the current key's value.
    Value {
        /// Value bytes.
        piece: &'a [u8],
        /// Whether more VALUE records follow.
        more: bool,
    },
    /// A function library.
    Function(&'a [u8]),
    /// An AUX field.
    Aux {
        /// Field name.
        key: &'a [u8],
        /// Field value.
        value: &'a [u8],
    },
    /// Module AUX data, raw.
    ModuleAux(&'a [u8]),
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        let s = crate::redis::slice(self.b, self.at, n, "Redis archive record")?;
        self.at += n;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().expect("8")))
    }
    fn blob(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.bytes(n)
    }
}

/// Decodes every record of one DATA frame.
pub fn parse_frame(frame: &[u8]) -> Result<Vec<Record<'_>>> {
    let mut r = Reader { b: frame, at: 0 };
    let mut out = Vec::new();
    while r.at < frame.len() {
        let at = r.at;
        let rec = match r.u8()? {
            TAG_KEY => {
                let flags = r.u8()?;
                let type_byte = r.u8()?;
                let db = r.u32()?;
                let expire_ms = if flags & FLAG_EXPIRE != 0 {
                    Some(r.u64()? as i64)
                } else {
                    None
                };
                let idle_s = if flags & FLAG_IDLE != 0 {
                    Some(r.u64()?)
                } else {
                    None
                };
                let freq = if flags & FLAG_FREQ != 0 {
                    Some(r.u8()?)
                } else {
                    None
                };
                let key = r.blob()?;
                let piece = r.blob()?;
                Record::Key {
                    db,
                    type_byte,
                    meta: KeyMeta {
                        expire_ms,
                        idle_s,
                        freq,
                    },
                    key,
                    piece,
                    more: flags & FLAG_MORE != 0,
                }
            }
            TAG_VALUE => {
                let flags = r.u8()?;
                let piece = r.blob()?;
                Record::Value {
                    piece,
                    more: flags & FLAG_MORE != 0,
                }
            }
            TAG_FUNCTION => Record::Function(r.blob()?),
            TAG_AUX => Record::Aux {
                key: r.blob()?,
                value: r.blob()?,
            },
            TAG_MODULE_AUX => Record::ModuleAux(r.blob()?),
            other => {
                return Err(crate::redis::corrupt(
                    "Redis archive record",
                    at,
                    format!("unknown record tag {other:#04x}"),
                ));
            }
        };
        out.push(rec);
    }
    Ok(out)
}

/// A whole key reassembled from its records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchivedKey {
    /// Database.
    pub db: u32,
    /// RDB type byte.
    pub type_byte: u8,
    /// Expiry and eviction metadata.
    pub meta: KeyMeta,
    /// Key name.
    pub key: Vec<u8>,
    /// The value bytes as in the RDB.
    pub value: Vec<u8>,
}

/// Joins KEY and VALUE records, across frames, into whole keys (in memory: for tests,
/// verification and small restores).
#[derive(Debug, Default)]
pub struct KeyAssembler {
    current: Option<ArchivedKey>,
    done: Vec<ArchivedKey>,
}

impl KeyAssembler {
    /// A new assembler.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the records of the next frame of a `redis.db` stream.
    pub fn push_frame(&mut self, frame: &[u8]) -> Result<()> {
        let mut done = std::mem::take(&mut self.done);
        let r = self.push_frame_each(frame, &mut |k| {
            done.push(k);
            Ok(())
        });
        self.done = done;
        r
    }

    /// Adds the records of the next frame, handing each key to `f` as soon as its value
    /// is complete (nothing is kept: memory is one frame plus one key's value).
    pub fn push_frame_each(
        &mut self,
        frame: &[u8],
        f: &mut dyn FnMut(ArchivedKey) -> Result<()>,
    ) -> Result<()> {
        for rec in parse_frame(frame)? {
            match rec {
                Record::Key {
                    db,
                    type_byte,
                    meta,
                    key,
                    piece,
                    more,
                } => {
                    if self.current.is_some() {
                        return Err(broken("a KEY record inside an unfinished key"));
                    }
                    let k = ArchivedKey {
                        db,
                        type_byte,
                        meta,
                        key: key.to_vec(),
                        value: piece.to_vec(),
                    };
                    if more {
                        self.current = Some(k);
                    } else {
                        f(k)?;
                    }
                }
                Record::Value { piece, more } => {
                    let Some(k) = self.current.as_mut() else {
                        return Err(broken("a VALUE record outside a key"));
                    };
                    k.value.extend_from_slice(piece);
                    if !more {
                        if let Some(k) = self.current.take() {
                            f(k)?;
                        }
                    }
                }
                _ => return Err(broken("a non-key record in a database stream")),
            }
        }
        Ok(())
    }

    /// Whether a key is still waiting for VALUE records.
    pub fn in_key(&self) -> bool {
        self.current.is_some()
    }

    /// The keys, failing if one is unfinished.
    pub fn finish(self) -> Result<Vec<ArchivedKey>> {
        if self.current.is_some() {
            return Err(broken("the stream ends inside a key"));
        }
        Ok(self.done)
    }
}

/// A `Corrupt` error: the records of a stream do not fit together (`what`).
pub fn broken(what: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("Redis archive stream is inconsistent: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_across_frames() {
        let meta = KeyMeta {
            expire_ms: Some(-5),
            idle_s: None,
            freq: Some(7),
        };
        let mut f1 = Vec::new();
        let (_, len_at) = push_key(&mut f1, 3, b"small", 0, &KeyMeta::default()).unwrap();
        f1.extend_from_slice(b"\x01x");
        f1[len_at..len_at + 4].copy_from_slice(&2u32.to_le_bytes());
        let (flags_at, len_at) = push_key(&mut f1, 3, b"big", 2, &meta).unwrap();
        f1.extend_from_slice(b"abc");
        f1[len_at..len_at + 4].copy_from_slice(&3u32.to_le_bytes());
        f1[flags_at] |= FLAG_MORE;
        let mut f2 = Vec::new();
        let (_, len_at) = push_value(&mut f2);
        f2.extend_from_slice(b"de");
        f2[len_at..len_at + 4].copy_from_slice(&2u32.to_le_bytes());
        let mut a = KeyAssembler::new();
        a.push_frame(&f1).unwrap();
        a.push_frame(&f2).unwrap();
        let keys = a.finish().unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[1].value, b"abcde");
        assert_eq!(keys[1].meta, meta);
        assert_eq!(keys[0].value, b"\x01x");
        // Truncated frames are errors, not panics.
        for cut in 0..f1.len() {
            let _ = parse_frame(&f1[..cut]);
        }
        let mut a = KeyAssembler::new();
        a.push_frame(&f1).unwrap();
        assert!(a.finish().is_err());
    }
}

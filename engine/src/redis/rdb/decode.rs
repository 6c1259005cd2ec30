//! From a key's raw value bytes (as in the RDB, and as in a DUMP payload after its type
//! byte) to a logical value.
//!
//! This needs the whole value in memory; it serves tests, verification and export. The
//! dump path never calls it.

use std::collections::BTreeSet;

use super::primitives;
use super::types as t;
use crate::redis::{Element, corrupt, intset, listpack, slice, take, ziplist, zipmap};
use crate::{Error, ErrorKind, Result};

/// A stream entry id, `<ms>-<seq>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    /// Milliseconds part.
    pub ms: u64,
    /// Sequence part.
    pub seq: u64,
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One live stream entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamEntry {
    /// Its id.
    pub id: StreamId,
    /// Field/value pairs, in order.
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

/// One pending (delivered, unacknowledged) entry of a consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingEntry {
    /// The entry's id.
    pub id: StreamId,
    /// Last delivery, unix ms.
    pub delivery_time_ms: i64,
    /// Deliveries so far.
    pub delivery_count: u64,
}

/// A consumer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// Its name.
    pub name: Vec<u8>,
    /// Last time it was seen, unix ms.
    pub seen_time_ms: i64,
    /// Last time it read successfully, unix ms (stream v3; earlier versions: none).
    pub active_time_ms: Option<i64>,
    /// Ids of its pending entries (each is in the group's PEL).
    pub pending: Vec<StreamId>,
}

/// A consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerGroup {
    /// Its name.
    pub name: Vec<u8>,
    /// Last delivered id.
    pub last_id: StreamId,
    /// Entries read (stream v2+; `u64::MAX` means "invalid, recompute").
    pub entries_read: Option<u64>,
    /// The group's pending entries list.
    pub pel: Vec<PendingEntry>,
    /// Its consumers.
    pub consumers: Vec<Consumer>,
}

/// A stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stream {
    /// Live entries, in id order.
    pub entries: Vec<StreamEntry>,
    /// Number of live entries as recorded.
    pub length: u64,
    /// The last id ever added.
    pub last_id: StreamId,
    /// First live id (stream v2+).
    pub first_id: Option<StreamId>,
    /// Largest id ever deleted (stream v2+).
    pub max_deleted_id: Option<StreamId>,
    /// Entries ever added (stream v2+).
    pub entries_added: Option<u64>,
    /// Consumer groups.
    pub groups: Vec<ConsumerGroup>,
}

/// A hash field with its optional absolute expiry (Redis 7.4+ field TTLs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HashField {
    /// Field name.
    pub field: Vec<u8>,
    /// Value.
    pub value: Vec<u8>,
    /// Absolute expiry, unix ms.
    pub expire_ms: Option<i64>,
}

/// A decoded value.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A string.
    String(Vec<u8>),
    /// A list, head first.
    List(Vec<Vec<u8>>),
    /// A set.
    Set(BTreeSet<Vec<u8>>),
    /// A sorted set as stored (member, score).
    ZSet(Vec<(Vec<u8>, f64)>),
    /// A hash as stored.
    Hash(Vec<HashField>),
    /// A stream.
    Stream(Box<Stream>),
    /// A module value, opaque: only the module can read it.
    Module {
        /// The module type id.
        id: u64,
        /// The module type name and encoding version, e.g. `ReJSON-RL/3`.
        name: String,
        /// The raw value bytes (module id included).
        raw: Vec<u8>,
    },
}

/// A module type's 9-character name and its encoding version from its 64-bit id.
pub fn module_name(id: u64) -> String {
    const CHARSET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let version = id & 1023;
    let mut rest = id >> 10;
    let mut name = [0u8; 9];
    for slot in name.iter_mut().rev() {
        *slot = CHARSET[(rest & 63) as usize];
        rest >>= 6;
    }
    format!("{}/{version}", String::from_utf8_lossy(&name))
}

const WHAT: &str = "RDB value";

/// Reads a raw value front to back.
struct Cur<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cur<'a> {
    fn len(&mut self) -> Result<u64> {
        match primitives::plain_length(&self.b[self.at..], self.at as u64) {
            Ok(Some((n, used))) => {
                self.at += used;
                Ok(n)
            }
            Ok(None) => Err(corrupt(WHAT, self.at, "length cut short")),
            Err(e) => Err(corrupt(WHAT, self.at, e.message())),
        }
    }

    /// A count of items of at least `min_size` bytes each: bounded by what is left.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let at = self.at;
        let n = self.len()?;
        let left = (self.b.len() - self.at) / min_size.max(1);
        if n > left as u64 {
            return Err(corrupt(
                WHAT,
                at,
                format!("{n} items cannot fit in {left} bytes"),
            ));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<Vec<u8>> {
        match primitives::string(&self.b[self.at..], self.at as u64) {
            Ok(Some((s, used))) => {
                self.at += used;
                Ok(s)
            }
            Ok(None) => Err(corrupt(WHAT, self.at, "string cut short")),
            Err(e) => Err(corrupt(WHAT, self.at, e.message())),
        }
    }

    fn fixed<const N: usize>(&mut self) -> Result<[u8; N]> {
        let v = take::<N>(self.b, self.at, WHAT)?;
        self.at += N;
        Ok(v)
    }

    fn i64_le(&mut self) -> Result<i64> {
        Ok(i64::from_le_bytes(self.fixed::<8>()?))
    }

    fn dbl_str(&mut self) -> Result<f64> {
        let [n] = self.fixed::<1>()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let at = self.at;
                let text = slice(self.b, at, usize::from(n), WHAT)?;
                self.at += usize::from(n);
                parse_score(text).ok_or_else(|| corrupt(WHAT, at, "score is not a number"))
            }
        }
    }

    fn stream_id(&mut self) -> Result<StreamId> {
        Ok(StreamId {
            ms: self.len()?,
            seq: self.len()?,
        })
    }

    fn raw_id(&mut self) -> Result<StreamId> {
        let b = self.fixed::<16>()?;
        Ok(raw_stream_id(&b))
    }

    fn end(&self) -> Result<()> {
        if self.at != self.b.len() {
            return Err(corrupt(
                WHAT,
                self.at,
                format!("{} bytes after the value", self.b.len() - self.at),
            ));
        }
        Ok(())
    }
}

fn raw_stream_id(b: &[u8; 16]) -> StreamId {
    StreamId {
        ms: crate::redis::be_u64(b[..8].try_into().expect("8")),
        seq: crate::redis::be_u64(b[8..].try_into().expect("8")),
    }
}

fn parse_score(text: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(text).ok()?;
    s.parse::<f64>().ok()
}

fn score_of(e: &Element<'_>, at: usize) -> Result<f64> {
    match e {
        Element::Int(i) => Ok(*i as f64),
        Element::Bytes(b) => {
            parse_score(b).ok_or_else(|| corrupt(WHAT, at, "score is not a number"))
        }
    }
}

fn pairs<'e>(
    items: &'e [Element<'e>],
    what: &str,
) -> Result<std::slice::ChunksExact<'e, Element<'e>>> {
    if items.len() % 2 != 0 {
        return Err(corrupt(
            what,
            0,
            format!("{} elements do not form pairs", items.len()),
        ));
    }
    Ok(items.chunks_exact(2))
}

/// The elements of a ziplist or a listpack.
fn packed(blob: &[u8], is_ziplist: bool) -> Result<Vec<Element<'_>>> {
    if is_ziplist {
        ziplist::entries(blob)
    } else {
        listpack::entries(blob)
    }
}

fn insert_unique(set: &mut BTreeSet<Vec<u8>>, m: Vec<u8>, at: usize) -> Result<()> {
    if !set.insert(m) {
        return Err(corrupt(WHAT, at, "duplicate set member"));
    }
    Ok(())
}

/// Decodes the raw value bytes of a value of `type_byte` from an RDB of `rdb_version`.
///
/// The type byte alone identifies the layout, except above 21, where Redis' and Valkey's
/// types part (see [`super::is_valkey`]).
pub fn decode_value(type_byte: u8, raw: &[u8], rdb_version: u32) -> Result<Value> {
    let mut c = Cur { b: raw, at: 0 };
    let valkey = super::is_valkey(rdb_version);
    let v = match type_byte {
        t::VALKEY_HASH_2 if valkey => {
            // (field, value, expiry): at least 1 + 1 + 8 bytes each.
            let n = c.count(10)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let field = c.string()?;
                let value = c.string()?;
                let at = c.at;
                let expire_ms = match c.i64_le()? {
                    -1 => None,
                    ms if ms >= 0 => Some(ms),
                    ms => return Err(corrupt(WHAT, at, format!("field expiry {ms}"))),
                };
                out.push(HashField {
                    field,
                    value,
                    expire_ms,
                });
            }
            Value::Hash(out)
        }
        other if valkey && other > t::VALKEY_HASH_2 => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!("cannot decode Valkey RDB value type {other}"),
            ));
        }
        t::STRING => Value::String(c.string()?),
        t::LIST => {
            let n = c.count(1)?;
            Value::List((0..n).map(|_| c.string()).collect::<Result<_>>()?)
        }
        t::SET => {
            let n = c.count(1)?;
            let mut set = BTreeSet::new();
            for _ in 0..n {
                let at = c.at;
                insert_unique(&mut set, c.string()?, at)?;
            }
            Value::Set(set)
        }
        t::ZSET | t::ZSET_2 => {
            let n = c.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let m = c.string()?;
                let at = c.at;
                let s = if type_byte == t::ZSET {
                    c.dbl_str()?
                } else {
                    f64::from_le_bytes(c.fixed::<8>()?)
                };
                if s.is_nan() {
                    return Err(corrupt(WHAT, at, "NaN score"));
                }
                out.push((m, s));
            }
            Value::ZSet(out)
        }
        t::HASH => {
            let n = c.count(2)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(HashField {
                    field: c.string()?,
                    value: c.string()?,
                    expire_ms: None,
                });
            }
            Value::Hash(out)
        }
        t::MODULE_2 => {
            let id = c.len()?;
            c.at = raw.len(); // opaque: the walker delimited it
            Value::Module {
                id,
                name: module_name(id),
                raw: raw.to_vec(),
            }
        }
        t::HASH_ZIPMAP => {
            let blob = c.string()?;
            let fields = zipmap::pairs(&blob)?
                .into_iter()
                .map(|(f, v)| HashField {
                    field: f.to_vec(),
                    value: v.to_vec(),
                    expire_ms: None,
                })
                .collect();
            Value::Hash(fields)
        }
        t::LIST_ZIPLIST => {
            let blob = c.string()?;
            Value::List(
                ziplist::entries(&blob)?
                    .iter()
                    .map(Element::to_vec)
                    .collect(),
            )
        }
        t::SET_INTSET => {
            let blob = c.string()?;
            Value::Set(
                intset::values(&blob)?
                    .iter()
                    .map(|v| v.to_string().into_bytes())
                    .collect(),
            )
        }
        t::SET_LISTPACK => {
            let blob = c.string()?;
            let mut set = BTreeSet::new();
            for e in listpack::entries(&blob)? {
                insert_unique(&mut set, e.to_vec(), 0)?;
            }
            Value::Set(set)
        }
        t::ZSET_ZIPLIST | t::ZSET_LISTPACK => {
            let blob = c.string()?;
            let items = packed(&blob, type_byte == t::ZSET_ZIPLIST)?;
            let mut out = Vec::with_capacity(items.len() / 2);
            for p in pairs(&items, "sorted set")? {
                out.push((p[0].to_vec(), score_of(&p[1], 0)?));
            }
            Value::ZSet(out)
        }
        t::HASH_ZIPLIST | t::HASH_LISTPACK => {
            let blob = c.string()?;
            let items = packed(&blob, type_byte == t::HASH_ZIPLIST)?;
            let mut out = Vec::with_capacity(items.len() / 2);
            for p in pairs(&items, "hash")? {
                out.push(HashField {
                    field: p[0].to_vec(),
                    value: p[1].to_vec(),
                    expire_ms: None,
                });
            }
            Value::Hash(out)
        }
        t::LIST_QUICKLIST => {
            let n = c.count(1)?;
            let mut out = Vec::new();
            for _ in 0..n {
                let blob = c.string()?;
                out.extend(ziplist::entries(&blob)?.iter().map(Element::to_vec));
            }
            Value::List(out)
        }
        t::LIST_QUICKLIST_2 => {
            let n = c.count(2)?;
            let mut out = Vec::new();
            for _ in 0..n {
                let at = c.at;
                let container = c.len()?;
                let blob = c.string()?;
                match container {
                    1 => out.push(blob),
                    2 => out.extend(listpack::entries(&blob)?.iter().map(Element::to_vec)),
                    other => {
                        return Err(corrupt(WHAT, at, format!("quicklist container {other}")));
                    }
                }
            }
            Value::List(out)
        }
        t::HASH_METADATA_PRE_GA | t::HASH_METADATA => {
            let min_expire = if type_byte == t::HASH_METADATA {
                Some(c.i64_le()?)
            } else {
                None
            };
            let n = c.count(3)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let ttl = c.len()?;
                let field = c.string()?;
                let value = c.string()?;
                let expire_ms = match (ttl, min_expire) {
                    (0, _) => None,
                    (ttl, Some(min)) => Some((ttl as i64).wrapping_add(min).wrapping_sub(1)),
                    (ttl, None) => Some(ttl as i64),
                };
                out.push(HashField {
                    field,
                    value,
                    expire_ms,
                });
            }
            Value::Hash(out)
        }
        t::HASH_LISTPACK_EX_PRE_GA | t::HASH_LISTPACK_EX => {
            if type_byte == t::HASH_LISTPACK_EX {
                c.i64_le()?; // minExpire: a hint; each field carries its own expiry
            }
            let blob = c.string()?;
            let items = listpack::entries(&blob)?;
            if items.len() % 3 != 0 {
                return Err(corrupt("hash listpack", 0, "elements do not form triplets"));
            }
            let mut out = Vec::with_capacity(items.len() / 3);
            for tr in items.chunks_exact(3) {
                let ttl = tr[2]
                    .as_int()
                    .ok_or_else(|| corrupt("hash listpack", 0, "field TTL is not an integer"))?;
                out.push(HashField {
                    field: tr[0].to_vec(),
                    value: tr[1].to_vec(),
                    expire_ms: (ttl != 0).then_some(ttl),
                });
            }
            Value::Hash(out)
        }
        t::STREAM_LISTPACKS | t::STREAM_LISTPACKS_2 | t::STREAM_LISTPACKS_3 => {
            let v = match type_byte {
                t::STREAM_LISTPACKS => 1,
                t::STREAM_LISTPACKS_2 => 2,
                _ => 3,
            };
            Value::Stream(Box::new(stream(&mut c, v)?))
        }
        other => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "cannot decode RDB value type {other} ({})",
                    super::type_name(other, rdb_version)
                ),
            ));
        }
    };
    c.end()?;
    Ok(v)
}

fn stream(c: &mut Cur<'_>, v: u32) -> Result<Stream> {
    let mut s = Stream::default();
    let nodes = c.count(2)?;
    for _ in 0..nodes {
        let at = c.at;
        let key = c.string()?;
        let master: [u8; 16] = key
            .as_slice()
            .try_into()
            .map_err(|_| corrupt(WHAT, at, format!("stream node key of {} bytes", key.len())))?;
        let master = raw_stream_id(&master);
        let at = c.at;
        let lp = c.string()?;
        stream_node(&lp, master, &mut s.entries)
            .map_err(|e| e.context(format!("stream node at byte {at}")))?;
    }
    s.length = c.len()?;
    s.last_id = c.stream_id()?;
    if v >= 2 {
        s.first_id = Some(c.stream_id()?);
        s.max_deleted_id = Some(c.stream_id()?);
        s.entries_added = Some(c.len()?);
    }
    let groups = c.count(3)?;
    for _ in 0..groups {
        let name = c.string()?;
        let last_id = c.stream_id()?;
        let entries_read = if v >= 2 { Some(c.len()?) } else { None };
        let n = c.count(17)?;
        let mut pel = Vec::with_capacity(n);
        for _ in 0..n {
            let id = c.raw_id()?;
            let delivery_time_ms = c.i64_le()?;
            let delivery_count = c.len()?;
            pel.push(PendingEntry {
                id,
                delivery_time_ms,
                delivery_count,
            });
        }
        let n = c.count(10)?;
        let mut consumers = Vec::with_capacity(n);
        for _ in 0..n {
            let name = c.string()?;
            let seen_time_ms = c.i64_le()?;
            let active_time_ms = if v >= 3 { Some(c.i64_le()?) } else { None };
            let at = c.at;
            let p = c.count(16)?;
            let mut pending = Vec::with_capacity(p);
            for _ in 0..p {
                let id = c.raw_id()?;
                if !pel.iter().any(|e| e.id == id) {
                    return Err(corrupt(
                        WHAT,
                        at,
                        format!("consumer pending id {id} not in the group PEL"),
                    ));
                }
                pending.push(id);
            }
            consumers.push(Consumer {
                name,
                seen_time_ms,
                active_time_ms,
                pending,
            });
        }
        s.groups.push(ConsumerGroup {
            name,
            last_id,
            entries_read,
            pel,
            consumers,
        });
    }
    Ok(s)
}

fn stream_node(lp: &[u8], master: StreamId, out: &mut Vec<StreamEntry>) -> Result<()> {
    const W: &str = "stream listpack";
    let items = listpack::entries(lp)?;
    let mut it = items.iter().enumerate();
    let mut int = |what: &str| -> Result<i64> {
        let (i, e) = it
            .next()
            .ok_or_else(|| corrupt(W, 0, format!("ends before {what}")))?;
        e.as_int()
            .ok_or_else(|| corrupt(W, i, format!("{what} is not an integer")))
    };
    let count = int("the entry count")?;
    let deleted = int("the deleted count")?;
    let master_fields = int("the master field count")?;
    let mut fields_of_master = Vec::new();
    for _ in 0..master_fields.max(0) {
        let (_, e) = it
            .next()
            .ok_or_else(|| corrupt(W, 0, "ends inside the master fields"))?;
        fields_of_master.push(e.to_vec());
    }
    let mut next = |what: &str| -> Result<Element<'_>> {
        it.next()
            .map(|(_, e)| *e)
            .ok_or_else(|| corrupt(W, 0, format!("ends before {what}")))
    };
    if next("the master terminator")?.as_int() != Some(0) {
        return Err(corrupt(W, 0, "master entry not terminated by 0"));
    }
    let total = count
        .checked_add(deleted)
        .filter(|&n| n >= 0)
        .ok_or_else(|| corrupt(W, 0, "bad counts"))?;
    let mut live = 0;
    for _ in 0..total {
        let flags = next("entry flags")?
            .as_int()
            .ok_or_else(|| corrupt(W, 0, "flags"))?;
        let ms = next("the id")?
            .as_int()
            .ok_or_else(|| corrupt(W, 0, "ms diff"))?;
        let seq = next("the id")?
            .as_int()
            .ok_or_else(|| corrupt(W, 0, "seq diff"))?;
        let id = StreamId {
            ms: master.ms.wrapping_add(ms as u64),
            seq: master.seq.wrapping_add(seq as u64),
        };
        let mut fields = Vec::new();
        if flags & 2 != 0 {
            for f in &fields_of_master {
                fields.push((f.clone(), next("a value")?.to_vec()));
            }
        } else {
            let n = next("the field count")?
                .as_int()
                .ok_or_else(|| corrupt(W, 0, "field count"))?;
            for _ in 0..n.max(0) {
                let f = next("a field")?.to_vec();
                fields.push((f, next("a value")?.to_vec()));
            }
        }
        next("lp-count")?;
        if flags & 1 == 0 {
            live += 1;
            out.push(StreamEntry { id, fields });
        }
    }
    if live != count {
        return Err(corrupt(
            W,
            0,
            format!("{live} live entries, header says {count}"),
        ));
    }
    if next("the end").is_ok() {
        return Err(corrupt(W, 0, "elements after the last entry"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::listpack::tests::build;

    #[test]
    fn hash_with_field_ttls() {
        // Type 24: minExpire, then (ttl relative to minExpire + 1, field, value).
        let min = 1_700_000_000_000i64;
        let mut raw = min.to_le_bytes().to_vec();
        raw.extend_from_slice(&[2, 0, 1, b'a', 1, b'1', 0x41, 0x00, 1, b'b', 1, b'2']);
        let Value::Hash(f) = decode_value(t::HASH_METADATA, &raw, 12).unwrap() else {
            panic!()
        };
        assert_eq!(f[0].expire_ms, None);
        assert_eq!(f[1].expire_ms, Some(min + 256 - 1));
        // Type 25: minExpire, then a listpack of (field, value, absolute ttl | 0).
        let lp = build(&[
            Element::Bytes(b"f"),
            Element::Bytes(b"v"),
            Element::Int(min + 5),
            Element::Bytes(b"g"),
            Element::Int(7),
            Element::Int(0),
        ]);
        let mut raw = min.to_le_bytes().to_vec();
        raw.push(0x40 | (lp.len() >> 8) as u8); // a 14-bit string length
        raw.push(lp.len() as u8);
        raw.extend_from_slice(&lp);
        let Value::Hash(f) = decode_value(t::HASH_LISTPACK_EX, &raw, 12).unwrap() else {
            panic!()
        };
        assert_eq!(f[0].expire_ms, Some(min + 5));
        assert_eq!((f[1].value.as_slice(), f[1].expire_ms), (&b"7"[..], None));
        // Truncations fail cleanly.
        for cut in 0..raw.len() {
            assert!(decode_value(t::HASH_LISTPACK_EX, &raw[..cut], 12).is_err());
        }
    }

    #[test]
    fn valkey_hashes_with_field_ttls() {
        // As Valkey 9.1 DUMPs `HSET h a 1 b 2` + `HPEXPIREAT h 4102444800123 FIELDS 1 a`.
        let raw = b"\x02\x01a\xc0\x01\x7b\xd8\xc3\x2c\xbb\x03\x00\x00\x01b\xc0\x02\xff\xff\xff\xff\xff\xff\xff\xff";
        let Value::Hash(f) = decode_value(t::VALKEY_HASH_2, raw, 80).unwrap() else {
            panic!()
        };
        assert_eq!(
            f,
            [
                HashField {
                    field: b"a".to_vec(),
                    value: b"1".to_vec(),
                    expire_ms: Some(4_102_444_800_123)
                },
                HashField {
                    field: b"b".to_vec(),
                    value: b"2".to_vec(),
                    expire_ms: None
                },
            ]
        );
        // The same byte in a Redis RDB is the 7.4 release candidates' layout, another one.
        assert!(decode_value(t::VALKEY_HASH_2, raw, 12).is_err());
        // Nothing above 22 in Valkey's RDB 80.
        assert_eq!(
            decode_value(t::HASH_LISTPACK_EX, raw, 80)
                .unwrap_err()
                .kind(),
            ErrorKind::Unsupported
        );
        // A negative expiry other than -1 (none) is damage; truncations fail cleanly.
        let mut bad = raw.to_vec();
        let last = bad.len() - 1;
        bad[last] = 0x80;
        assert_eq!(
            decode_value(t::VALKEY_HASH_2, &bad, 80).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
        for cut in 0..raw.len() {
            assert!(decode_value(t::VALKEY_HASH_2, &raw[..cut], 80).is_err());
        }
    }

    #[test]
    fn module_names() {
        // "MBbloom--" encoding version 3, as in RedisBloom.
        let cs = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut id = 0u64;
        for ch in b"MBbloom--" {
            id = (id << 6) | cs.iter().position(|c| c == ch).unwrap() as u64;
        }
        assert_eq!(module_name((id << 10) | 3), "MBbloom--/3");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(t in 0u8..30, raw in proptest::collection::vec(proptest::num::u8::ANY, 0..80)) {
            let _ = decode_value(t, &raw, 12);
            let _ = decode_value(t, &raw, 80);
        }
    }
}

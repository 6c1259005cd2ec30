//! Values re-encoded for an older (or the other family's) RDB version, for a `dump.rdb`
//! a server that cannot read the archive's encodings is to load (`--rdb-version`).
//!
//! A value whose type the target version has is kept byte for byte. Otherwise it is
//! decoded and written in the plain types every version reads: a list as `LIST` (1), a
//! set as `SET` (2), a sorted set as `ZSET_2` (5), a hash as `HASH` (4); a hash with
//! field TTLs as Redis' `HASH_METADATA` (24, RDB 12) or Valkey's `HASH_2` (22, RDB 80), or,
//! for a version without field TTLs, as a plain hash without them when asked to
//! ([`FieldTtls::Drop`]); a stream in the older layout (v3 → v2 → v1: its nodes as they
//! are, the metadata the newer layout added left out, as the older server has none). A
//! module value can only be kept as it is.

use super::rdb::{self, HashField, Value, decode_value, types as t};
use super::rdbfile::{put_len, put_string};
use super::restore::{TargetCaps, payload_version};
use crate::{Error, ErrorKind, Result};

/// What to do with hash field TTLs the target version cannot hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldTtls {
    /// The key cannot be written.
    Refuse,
    /// The fields are written without them.
    Drop,
}

/// A re-encoded value.
#[derive(Debug, PartialEq, Eq)]
pub enum Reencoded {
    /// The new type byte and value bytes; and the field TTLs left out.
    Value {
        /// Type byte in the target version.
        type_byte: u8,
        /// The value's bytes.
        value: Vec<u8>,
        /// Field TTLs dropped ([`FieldTtls::Drop`]).
        dropped_ttls: u64,
    },
    /// Every field had expired: there is nothing left of the hash.
    Expired,
    /// The value cannot be written in the target version: why.
    Impossible(String),
}

/// The capabilities of a server that reads RDB `version` (Valkey for 80 and up).
fn reader(version: u32) -> TargetCaps {
    TargetCaps {
        rdb: version,
        valkey: rdb::is_valkey(version),
        redis_mm: (99, 0),
        field_ttls: version >= 12,
    }
}

/// Whether a value of `type_byte` from an RDB of `source` is kept as it is in an RDB of
/// `target`.
pub fn keeps(type_byte: u8, source: u32, target: u32) -> bool {
    payload_version(type_byte, source, &reader(target)).is_some()
}

/// The stream layout (1–3) of a stream type byte.
fn stream_layout(type_byte: u8) -> Option<u8> {
    match type_byte {
        t::STREAM_LISTPACKS => Some(1),
        t::STREAM_LISTPACKS_2 => Some(2),
        t::STREAM_LISTPACKS_3 => Some(3),
        _ => None,
    }
}

/// Re-encodes the value of `type_byte` (from an RDB of `source`) for an RDB of `target`;
/// fields whose TTL is before `now_ms` are left out.
pub fn reencode(
    type_byte: u8,
    raw: &[u8],
    source: u32,
    target: u32,
    now_ms: i64,
    ttls: FieldTtls,
) -> Result<Reencoded> {
    if let Some(from) = stream_layout(type_byte) {
        let to = match target {
            9 => 1,
            10 => 2,
            _ => 3,
        };
        let type_byte = [
            t::STREAM_LISTPACKS,
            t::STREAM_LISTPACKS_2,
            t::STREAM_LISTPACKS_3,
        ][usize::from(to.min(from)) - 1];
        return Ok(Reencoded::Value {
            type_byte,
            value: downgrade_stream(raw, from, to)?,
            dropped_ttls: 0,
        });
    }
    if type_byte == t::MODULE_2 {
        return Ok(Reencoded::Impossible(format!(
            "a module value ({}) is only kept as it is, and RDB {target} cannot hold it",
            rdb::module_name(decode_module_id(raw)?)
        )));
    }
    let mut out = Vec::new();
    let (type_byte, dropped_ttls) = match decode_value(type_byte, raw, source)? {
        Value::String(s) => {
            put_string(&mut out, &s);
            (t::STRING, 0)
        }
        Value::List(items) => {
            put_len(&mut out, items.len() as u64);
            items.iter().for_each(|i| put_string(&mut out, i));
            (t::LIST, 0)
        }
        Value::Set(members) => {
            put_len(&mut out, members.len() as u64);
            members.iter().for_each(|m| put_string(&mut out, m));
            (t::SET, 0)
        }
        Value::ZSet(items) => {
            put_len(&mut out, items.len() as u64);
            for (m, s) in &items {
                put_string(&mut out, m);
                out.extend_from_slice(&s.to_le_bytes());
            }
            (t::ZSET_2, 0)
        }
        Value::Hash(mut fields) => {
            let before = fields.len();
            fields.retain(|f| f.expire_ms.is_none_or(|e| e > now_ms));
            if fields.is_empty() && before > 0 {
                return Ok(Reencoded::Expired);
            }
            let with_ttl = fields.iter().filter(|f| f.expire_ms.is_some()).count() as u64;
            if with_ttl == 0 {
                plain_hash(&mut out, &fields);
                (t::HASH, 0)
            } else if rdb::is_valkey(target) {
                valkey_hash(&mut out, &fields);
                (t::VALKEY_HASH_2, 0)
            } else if target >= 12 {
                redis_hash_with_ttls(&mut out, &fields);
                (t::HASH_METADATA, 0)
            } else if ttls == FieldTtls::Drop {
                plain_hash(&mut out, &fields);
                (t::HASH, with_ttl)
            } else {
                return Ok(Reencoded::Impossible(format!(
                    "{with_ttl} fields have TTLs, which RDB {target} cannot hold \
                     (--drop-field-ttl writes them without)"
                )));
            }
        }
        Value::Stream(_) | Value::Module { .. } => unreachable!("handled above"),
    };
    Ok(Reencoded::Value {
        type_byte,
        value: out,
        dropped_ttls,
    })
}

fn decode_module_id(raw: &[u8]) -> Result<u64> {
    match rdb::primitives::plain_length(raw, 0)? {
        Some((id, _)) => Ok(id),
        None => Err(Error::new(ErrorKind::Corrupt, "a module value cut short")),
    }
}

fn plain_hash(out: &mut Vec<u8>, fields: &[HashField]) {
    put_len(out, fields.len() as u64);
    for f in fields {
        put_string(out, &f.field);
        put_string(out, &f.value);
    }
}

/// Valkey 9's `HASH_2`: (field, value, expiry ms or -1) for each field.
fn valkey_hash(out: &mut Vec<u8>, fields: &[HashField]) {
    put_len(out, fields.len() as u64);
    for f in fields {
        put_string(out, &f.field);
        put_string(out, &f.value);
        out.extend_from_slice(&f.expire_ms.unwrap_or(-1).to_le_bytes());
    }
}

/// Redis 7.4's `HASH_METADATA`: the earliest expiry, then (TTL relative to it + 1, or 0
/// for none; field; value) for each field.
fn redis_hash_with_ttls(out: &mut Vec<u8>, fields: &[HashField]) {
    let min = fields.iter().filter_map(|f| f.expire_ms).min().unwrap_or(0);
    out.extend_from_slice(&min.to_le_bytes());
    put_len(out, fields.len() as u64);
    for f in fields {
        put_len(out, f.expire_ms.map_or(0, |e| (e - min) as u64 + 1));
        put_string(out, &f.field);
        put_string(out, &f.value);
    }
}

/// Reads a raw value, copying (or skipping) what it reads.
struct Raw<'a> {
    b: &'a [u8],
    at: usize,
}

impl Raw<'_> {
    fn cut() -> Error {
        Error::new(ErrorKind::Corrupt, "a stream value cut short")
    }

    /// A length; copied to `out` when given.
    fn len(&mut self, out: Option<&mut Vec<u8>>) -> Result<u64> {
        let (n, used) = rdb::primitives::plain_length(&self.b[self.at..], self.at as u64)?
            .ok_or_else(Self::cut)?;
        if let Some(o) = out {
            o.extend_from_slice(&self.b[self.at..self.at + used]);
        }
        self.at += used;
        Ok(n)
    }

    /// A string, copied whole as it is stored.
    fn string(&mut self, out: &mut Vec<u8>) -> Result<()> {
        let h = rdb::primitives::string_header(&self.b[self.at..], self.at as u64)?
            .ok_or_else(Self::cut)?;
        let end = usize::try_from(h.body_len)
            .ok()
            .and_then(|n| (self.at + h.header_len).checked_add(n))
            .filter(|&e| e <= self.b.len())
            .ok_or_else(Self::cut)?;
        out.extend_from_slice(&self.b[self.at..end]);
        self.at = end;
        Ok(())
    }

    /// `n` raw bytes; copied to `out` when given.
    fn fixed(&mut self, n: usize, out: Option<&mut Vec<u8>>) -> Result<()> {
        let b = self.b.get(self.at..self.at + n).ok_or_else(Self::cut)?;
        if let Some(o) = out {
            o.extend_from_slice(b);
        }
        self.at += n;
        Ok(())
    }
}

/// A stream of layout `from` (1–3) in layout `to`: the nodes as they are; of the
/// metadata, what `to` has (v2 added the first id, the largest deleted id, the entries
/// added and each group's entries read; v3 each consumer's active time).
pub fn downgrade_stream(raw: &[u8], from: u8, to: u8) -> Result<Vec<u8>> {
    let mut r = Raw { b: raw, at: 0 };
    let mut out = Vec::with_capacity(raw.len());
    let o = &mut out;
    let nodes = r.len(Some(o))?;
    for _ in 0..nodes {
        r.string(o)?;
        r.string(o)?;
    }
    // length, last id
    for _ in 0..3 {
        r.len(Some(o))?;
    }
    if from >= 2 {
        // first id, largest deleted id, entries added
        for _ in 0..5 {
            r.len((to >= 2).then_some(&mut *o))?;
        }
    }
    let groups = r.len(Some(o))?;
    for _ in 0..groups {
        r.string(o)?;
        r.len(Some(o))?;
        r.len(Some(o))?;
        if from >= 2 {
            r.len((to >= 2).then_some(&mut *o))?;
        }
        let pel = r.len(Some(o))?;
        for _ in 0..pel {
            r.fixed(24, Some(o))?;
            r.len(Some(o))?;
        }
        let consumers = r.len(Some(o))?;
        for _ in 0..consumers {
            r.string(o)?;
            r.fixed(8, Some(o))?;
            if from >= 3 {
                r.fixed(8, (to >= 3).then_some(&mut *o))?;
            }
            let pending = r.len(Some(o))?;
            for _ in 0..pending {
                r.fixed(16, Some(o))?;
            }
        }
    }
    if r.at != raw.len() {
        return Err(Error::new(
            ErrorKind::Corrupt,
            format!("{} bytes after a stream value", raw.len() - r.at),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::Element;
    use crate::redis::listpack::tests::build;

    fn value(r: Reencoded) -> (u8, Vec<u8>, u64) {
        match r {
            Reencoded::Value {
                type_byte,
                value,
                dropped_ttls,
            } => (type_byte, value, dropped_ttls),
            other => panic!("{other:?}"),
        }
    }

    fn lp_string(items: &[Element<'_>]) -> Vec<u8> {
        let lp = build(items);
        let mut raw = Vec::new();
        put_string(&mut raw, &lp);
        raw
    }

    #[test]
    fn what_is_kept() {
        // A 7.0 listpack hash in RDB 9: no; in 10, 11, 12: yes; in Valkey's 80: yes.
        assert!(!keeps(t::HASH_LISTPACK, 10, 9));
        assert!(
            [10, 11, 12, 80]
                .iter()
                .all(|&v| keeps(t::HASH_LISTPACK, 10, v))
        );
        // Redis' field-TTL hashes in Valkey's RDB, Valkey's in Redis': no.
        assert!(!keeps(t::HASH_METADATA, 12, 80));
        assert!(!keeps(t::VALKEY_HASH_2, 80, 12));
        assert!(keeps(t::VALKEY_HASH_2, 80, 80));
        // Valkey's other values are Redis 7.2's.
        assert!(keeps(t::SET_LISTPACK, 80, 11) && !keeps(t::SET_LISTPACK, 80, 10));
    }

    #[test]
    fn compact_encodings_become_plain_ones() {
        let items = [Element::Bytes(b"a"), Element::Int(7), Element::Bytes(b"")];
        let raw = lp_string(&items);
        // A quicklist of one listpack node (container 2).
        let mut ql = vec![1u8, 2];
        ql.extend_from_slice(&raw);
        for (from, to, raw) in [
            (t::SET_LISTPACK, t::SET, &raw),
            (t::LIST_QUICKLIST_2, t::LIST, &ql),
        ] {
            let (tb, v, _) = value(reencode(from, raw, 11, 9, 0, FieldTtls::Refuse).unwrap());
            assert_eq!(tb, to);
            assert_eq!(
                decode_value(tb, &v, 9).unwrap(),
                decode_value(from, raw, 11).unwrap()
            );
        }
        let pairs = lp_string(&[Element::Bytes(b"m"), Element::Bytes(b"1.5")]);
        let (tb, v, _) =
            value(reencode(t::ZSET_LISTPACK, &pairs, 10, 9, 0, FieldTtls::Refuse).unwrap());
        assert_eq!(tb, t::ZSET_2);
        assert_eq!(
            decode_value(tb, &v, 9).unwrap(),
            Value::ZSet(vec![(b"m".to_vec(), 1.5)])
        );
        let (tb, v, _) =
            value(reencode(t::HASH_LISTPACK, &pairs, 10, 9, 0, FieldTtls::Refuse).unwrap());
        assert_eq!(tb, t::HASH);
        assert_eq!(
            decode_value(tb, &v, 9).unwrap(),
            decode_value(t::HASH_LISTPACK, &pairs, 10).unwrap()
        );
    }

    #[test]
    fn field_ttls_between_families_and_into_older_versions() {
        let at = 4_102_444_800_123i64;
        // Valkey: a, b with a TTL, c without.
        let mut raw = Vec::new();
        put_len(&mut raw, 3);
        for (f, ttl) in [(&b"a"[..], at), (b"b", at + 7), (b"c", -1)] {
            put_string(&mut raw, f);
            put_string(&mut raw, b"v");
            raw.extend_from_slice(&ttl.to_le_bytes());
        }
        let want = decode_value(t::VALKEY_HASH_2, &raw, 80).unwrap();
        // Into Redis' RDB 12: type 24, the same fields and TTLs; and back.
        let (tb, v, _) =
            value(reencode(t::VALKEY_HASH_2, &raw, 80, 12, 0, FieldTtls::Refuse).unwrap());
        assert_eq!(tb, t::HASH_METADATA);
        assert_eq!(decode_value(tb, &v, 12).unwrap(), want);
        let (tb2, v2, _) = value(reencode(tb, &v, 12, 80, 0, FieldTtls::Refuse).unwrap());
        assert_eq!(tb2, t::VALKEY_HASH_2);
        assert_eq!(decode_value(tb2, &v2, 80).unwrap(), want);
        // Into RDB 11: refused, or the TTLs dropped and counted.
        assert!(matches!(
            reencode(t::VALKEY_HASH_2, &raw, 80, 11, 0, FieldTtls::Refuse).unwrap(),
            Reencoded::Impossible(m) if m.contains("2 fields have TTLs")
        ));
        let (tb, v, dropped) =
            value(reencode(t::VALKEY_HASH_2, &raw, 80, 11, 0, FieldTtls::Drop).unwrap());
        assert_eq!((tb, dropped), (t::HASH, 2));
        let Value::Hash(f) = decode_value(tb, &v, 11).unwrap() else {
            panic!()
        };
        assert_eq!(f.len(), 3);
        // Fields whose TTL has passed are left out; with none left, so is the hash.
        let Value::Hash(f) =
            (match reencode(t::VALKEY_HASH_2, &raw, 80, 12, at + 1, FieldTtls::Refuse).unwrap() {
                Reencoded::Value {
                    type_byte, value, ..
                } => decode_value(type_byte, &value, 12).unwrap(),
                other => panic!("{other:?}"),
            })
        else {
            panic!()
        };
        let names: Vec<&[u8]> = f.iter().map(|f| f.field.as_slice()).collect();
        assert_eq!(names, [&b"b"[..], b"c"]);
        let mut gone = Vec::new();
        put_len(&mut gone, 1);
        put_string(&mut gone, b"a");
        put_string(&mut gone, b"v");
        gone.extend_from_slice(&at.to_le_bytes());
        assert_eq!(
            reencode(t::VALKEY_HASH_2, &gone, 80, 12, at, FieldTtls::Drop).unwrap(),
            Reencoded::Expired
        );
    }

    /// A v3 stream: one node of one entry, a group with a pending entry and a consumer.
    fn stream_v3() -> Vec<u8> {
        let master = [0u8; 15].iter().chain(&[1u8]).copied().collect::<Vec<u8>>();
        let lp = build(&[
            Element::Int(1),
            Element::Int(0),
            Element::Int(1),
            Element::Bytes(b"f"),
            Element::Int(0),
            Element::Int(2),
            Element::Int(0),
            Element::Int(0),
            Element::Bytes(b"v"),
            Element::Int(3),
        ]);
        let mut raw = Vec::new();
        put_len(&mut raw, 1);
        put_string(&mut raw, &master);
        put_string(&mut raw, &lp);
        for n in [1u64, 0, 1, 0, 1, 0, 0] {
            put_len(&mut raw, n); // length; last id; first id; max deleted id
        }
        put_len(&mut raw, 1); // entries added
        put_len(&mut raw, 1); // groups
        put_string(&mut raw, b"g");
        put_len(&mut raw, 0);
        put_len(&mut raw, 1); // last delivered id
        put_len(&mut raw, 1); // entries read
        put_len(&mut raw, 1); // PEL
        raw.extend_from_slice(&master);
        raw.extend_from_slice(&1_700_000_000_000i64.to_le_bytes());
        put_len(&mut raw, 2);
        put_len(&mut raw, 1); // consumers
        put_string(&mut raw, b"c");
        raw.extend_from_slice(&1_700_000_000_001i64.to_le_bytes());
        raw.extend_from_slice(&1_700_000_000_002i64.to_le_bytes());
        put_len(&mut raw, 1);
        raw.extend_from_slice(&master);
        raw
    }

    #[test]
    fn streams_lose_only_what_the_older_layout_lacks() {
        let raw = stream_v3();
        let Value::Stream(v3) = decode_value(t::STREAM_LISTPACKS_3, &raw, 11).unwrap() else {
            panic!()
        };
        for (target, tb) in [(10, t::STREAM_LISTPACKS_2), (9, t::STREAM_LISTPACKS)] {
            let (got_tb, v, _) = value(
                reencode(
                    t::STREAM_LISTPACKS_3,
                    &raw,
                    11,
                    target,
                    0,
                    FieldTtls::Refuse,
                )
                .unwrap(),
            );
            assert_eq!(got_tb, tb);
            let Value::Stream(s) = decode_value(tb, &v, target).unwrap() else {
                panic!()
            };
            assert_eq!(s.entries, v3.entries);
            assert_eq!((s.length, s.last_id), (v3.length, v3.last_id));
            let (g, g3) = (&s.groups[0], &v3.groups[0]);
            assert_eq!(
                (&g.name, g.last_id, &g.pel),
                (&g3.name, g3.last_id, &g3.pel)
            );
            assert_eq!(g.consumers[0].seen_time_ms, g3.consumers[0].seen_time_ms);
            assert_eq!(g.consumers[0].pending, g3.consumers[0].pending);
            assert_eq!(g.consumers[0].active_time_ms, None);
            assert_eq!(g.entries_read.is_some(), target >= 10);
            assert_eq!(s.entries_added.is_some(), target >= 10);
        }
        // Damage is refused, never a panic.
        for cut in 0..raw.len() {
            assert!(downgrade_stream(&raw[..cut], 3, 1).is_err());
        }
    }
}

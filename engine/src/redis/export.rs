//! A JSON Lines export of an archive's logical values: one object per key.
//!
//! ```json
//! {"db":0,"key":"user:1","type":"hash","expire_at_ms":4102444800123,"value":[["name","ann"]]}
//! ```
//!
//! * Binary safety: a byte string that is valid UTF-8 is a JSON string; any other is
//!   `{"base64":"…"}` (standard alphabet, padded). This applies to keys, members, fields,
//!   values, stream ids' fields and names alike.
//! * `expire_at_ms`: absolute unix milliseconds, or `null`.
//! * `value` by `type`: `string` → bytes; `list` → array (head first); `set` → array
//!   (byte order); `zset` → `[[member, score], …]` by score, where the score is a number or
//!   `"inf"`/`"-inf"`; `hash` → `[[field, value], …]`, or `[field, value, expire_at_ms]`
//!   for a field with a TTL; `stream` → `{"entries":[{"id":"ms-seq","fields":[[f,v],…]}],
//!   "length", "last_id", "first_id", "max_deleted_id", "entries_added", "groups":[{"name",
//!   "last_id", "entries_read", "pending":[{"id","consumer","delivery_time_ms",
//!   "delivery_count"}], "consumers":[{"name","seen_time_ms","active_time_ms"}]}]}`;
//!   `module` → `{"module":"name/version","raw":{"base64":…}}`.

use std::io::Write;

use coffer_format::MappedArchive;
use serde_json::{Value as J, json};

use super::archive::{RedisArchive, glob_match};
use super::rdb::{Value, decode_value};
use crate::{Error, Result};

/// What to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    /// Only keys matching this glob.
    pub pattern: Option<Vec<u8>>,
}

/// Bytes as JSON: a string if UTF-8, else `{"base64": …}`.
pub fn bytes_json(b: &[u8]) -> J {
    match std::str::from_utf8(b) {
        Ok(s) => J::String(s.to_string()),
        Err(_) => json!({ "base64": base64(b) }),
    }
}

/// Standard, padded base64.
pub fn base64(b: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for c in b.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

fn score_json(s: f64) -> J {
    if s.is_finite() {
        json!(s)
    } else if s > 0.0 {
        J::String("inf".into())
    } else {
        J::String("-inf".into())
    }
}

/// The type name and JSON of a decoded value.
pub fn value_json(v: &Value) -> (&'static str, J) {
    match v {
        Value::String(s) => ("string", bytes_json(s)),
        Value::List(items) => (
            "list",
            J::Array(items.iter().map(|i| bytes_json(i)).collect()),
        ),
        Value::Set(m) => ("set", J::Array(m.iter().map(|i| bytes_json(i)).collect())),
        Value::ZSet(items) => {
            let mut sorted: Vec<&(Vec<u8>, f64)> = items.iter().collect();
            sorted.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(&b.0)));
            (
                "zset",
                J::Array(
                    sorted
                        .into_iter()
                        .map(|(m, s)| json!([bytes_json(m), score_json(*s)]))
                        .collect(),
                ),
            )
        }
        Value::Hash(fields) => (
            "hash",
            J::Array(
                fields
                    .iter()
                    .map(|f| match f.expire_ms {
                        None => json!([bytes_json(&f.field), bytes_json(&f.value)]),
                        Some(e) => json!([bytes_json(&f.field), bytes_json(&f.value), e]),
                    })
                    .collect(),
            ),
        ),
        Value::Stream(s) => {
            let entries: Vec<J> = s
                .entries
                .iter()
                .map(|e| {
                    json!({
                        "id": e.id.to_string(),
                        "fields": e.fields.iter()
                            .map(|(f, v)| json!([bytes_json(f), bytes_json(v)]))
                            .collect::<Vec<_>>(),
                    })
                })
                .collect();
            let groups: Vec<J> = s
                .groups
                .iter()
                .map(|g| {
                    let pending: Vec<J> = g
                        .pel
                        .iter()
                        .map(|p| {
                            let owner = g
                                .consumers
                                .iter()
                                .find(|c| c.pending.contains(&p.id))
                                .map(|c| bytes_json(&c.name));
                            json!({
                                "id": p.id.to_string(),
                                "consumer": owner,
                                "delivery_time_ms": p.delivery_time_ms,
                                "delivery_count": p.delivery_count,
                            })
                        })
                        .collect();
                    json!({
                        "name": bytes_json(&g.name),
                        "last_id": g.last_id.to_string(),
                        "entries_read": g.entries_read.filter(|&n| n != u64::MAX),
                        "pending": pending,
                        "consumers": g.consumers.iter().map(|c| json!({
                            "name": bytes_json(&c.name),
                            "seen_time_ms": c.seen_time_ms,
                            "active_time_ms": c.active_time_ms,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            (
                "stream",
                json!({
                    "entries": entries,
                    "length": s.length,
                    "last_id": s.last_id.to_string(),
                    "first_id": s.first_id.map(|i| i.to_string()),
                    "max_deleted_id": s.max_deleted_id.map(|i| i.to_string()),
                    "entries_added": s.entries_added,
                    "groups": groups,
                }),
            )
        }
        Value::Module { name, raw, .. } => (
            "module",
            json!({ "module": name, "raw": { "base64": base64(raw) } }),
        ),
    }
}

/// Writes one JSON line per key; returns the number of keys written.
pub fn export_json(
    archive: &MappedArchive,
    out: &mut dyn Write,
    opts: &ExportOptions,
) -> Result<u64> {
    let ra = RedisArchive::new(archive)?;
    let mut n = 0u64;
    for d in ra.databases()? {
        ra.keys(&d, &mut |k| {
            if let Some(p) = &opts.pattern {
                if !glob_match(p, &k.key) {
                    return Ok(());
                }
            }
            let v = decode_value(k.type_byte, &k.value, ra.rdb_version).map_err(|e| {
                e.context(format!(
                    "key {:?} in db {}",
                    String::from_utf8_lossy(&k.key),
                    k.db
                ))
            })?;
            let (ty, value) = value_json(&v);
            let line = json!({
                "db": k.db,
                "key": bytes_json(&k.key),
                "type": ty,
                "expire_at_ms": k.meta.expire_ms,
                "value": value,
            });
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| Error::from(std::io::Error::other(e)))?;
            out.write_all(b"\n")?;
            n += 1;
            Ok(())
        })?;
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_bytes() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"\xff\x00\xfe\x01"), "/wD+AQ==");
        assert_eq!(bytes_json(b"abc"), json!("abc"));
        assert_eq!(bytes_json(b"\xff"), json!({"base64": "/w=="}));
        assert_eq!(score_json(f64::NEG_INFINITY), json!("-inf"));
    }
}

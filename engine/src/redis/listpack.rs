//! Listpacks (hash, zset, set and quicklist-2 payloads since Redis 7, and stream nodes).
//!
//! ```text
//! u32 LE total_bytes | u16 LE count (65535: count by walking) | entries | 0xFF
//! entry = encoding+data | backlen (1–5 bytes, the size of encoding+data, 7 bits each,
//!                                  most significant group first, continuation bit 0x80)
//! ```
//!
//! Encodings: `0xxxxxxx` 7-bit uint; `10xxxxxx` string of 6-bit length; `110xxxxx` + 1 byte
//! 13-bit signed int; `1110xxxx` + 1 byte string of 12-bit length; `0xF0` + u32 LE string
//! length; `0xF1`/`0xF2`/`0xF3`/`0xF4` int16/int24/int32/int64 LE.

use crate::Result;
use crate::redis::{Element, corrupt, slice, take};

const WHAT: &str = "listpack";

/// Bytes needed to store a backlen of `size`.
fn backlen_size(size: usize) -> usize {
    match size {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// Decodes the backlen that ends at `end` (exclusive), reading right to left.
fn read_backlen(blob: &[u8], end: usize) -> Option<usize> {
    let mut value = 0usize;
    let mut shift = 0;
    let mut at = end;
    loop {
        at = at.checked_sub(1)?;
        let b = blob[at];
        value |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Some(value);
        }
        shift += 7;
        if shift > 28 {
            return None;
        }
    }
}

/// The entries of a listpack, in order.
pub fn entries(blob: &[u8]) -> Result<Vec<Element<'_>>> {
    let total = u32::from_le_bytes(take::<4>(blob, 0, WHAT)?) as usize;
    let count = u16::from_le_bytes(take::<2>(blob, 4, WHAT)?);
    if total != blob.len() {
        return Err(corrupt(
            WHAT,
            0,
            format!("header says {total} bytes, blob has {}", blob.len()),
        ));
    }
    let mut out = Vec::new();
    let mut at = 6;
    loop {
        let &enc = blob
            .get(at)
            .ok_or_else(|| corrupt(WHAT, at, "missing end marker"))?;
        if enc == 0xFF {
            if at + 1 != blob.len() {
                return Err(corrupt(WHAT, at, "bytes after the end marker"));
            }
            break;
        }
        let start = at;
        let (element, size) = if enc & 0x80 == 0 {
            (Element::Int(i64::from(enc & 0x7f)), 1)
        } else if enc & 0xC0 == 0x80 {
            let len = usize::from(enc & 0x3f);
            (Element::Bytes(slice(blob, at + 1, len, WHAT)?), 1 + len)
        } else if enc & 0xE0 == 0xC0 {
            let b = take::<2>(blob, at, WHAT)?;
            let raw = (i64::from(b[0] & 0x1f) << 8) | i64::from(b[1]);
            let v = if raw >= 1 << 12 { raw - (1 << 13) } else { raw };
            (Element::Int(v), 2)
        } else if enc & 0xF0 == 0xE0 {
            let b = take::<2>(blob, at, WHAT)?;
            let len = (usize::from(b[0] & 0x0f) << 8) | usize::from(b[1]);
            (Element::Bytes(slice(blob, at + 2, len, WHAT)?), 2 + len)
        } else {
            match enc {
                0xF0 => {
                    let len = u32::from_le_bytes(take::<4>(blob, at + 1, WHAT)?) as usize;
                    (Element::Bytes(slice(blob, at + 5, len, WHAT)?), 5 + len)
                }
                0xF1 => (
                    Element::Int(i64::from(i16::from_le_bytes(take::<2>(
                        blob,
                        at + 1,
                        WHAT,
                    )?))),
                    3,
                ),
                0xF2 => {
                    let b = take::<3>(blob, at + 1, WHAT)?;
                    (
                        Element::Int(i64::from(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8)),
                        4,
                    )
                }
                0xF3 => (
                    Element::Int(i64::from(i32::from_le_bytes(take::<4>(
                        blob,
                        at + 1,
                        WHAT,
                    )?))),
                    5,
                ),
                0xF4 => (
                    Element::Int(i64::from_le_bytes(take::<8>(blob, at + 1, WHAT)?)),
                    9,
                ),
                other => return Err(corrupt(WHAT, at, format!("bad encoding {other:#04x}"))),
            }
        };
        let end = start
            .checked_add(size + backlen_size(size))
            .filter(|&e| e <= blob.len())
            .ok_or_else(|| corrupt(WHAT, start, "entry runs past the end"))?;
        if read_backlen(blob, end) != Some(size) {
            return Err(corrupt(
                WHAT,
                start + size,
                format!("backlen does not match the entry size {size}"),
            ));
        }
        at = end;
        out.push(element);
    }
    if count != u16::MAX && usize::from(count) != out.len() {
        return Err(corrupt(
            WHAT,
            4,
            format!("header counts {count} entries, {} found", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Encodes a listpack (test helper, shortest encodings like Redis).
    pub(crate) fn build(items: &[Element<'_>]) -> Vec<u8> {
        let mut body = Vec::new();
        for it in items {
            let mut e = Vec::new();
            match *it {
                Element::Int(v) if (0..128).contains(&v) => e.push(v as u8),
                Element::Int(v) if (-4096..4096).contains(&v) => {
                    let u = (v as u16) & 0x1fff;
                    e.push(0xC0 | (u >> 8) as u8);
                    e.push(u as u8);
                }
                Element::Int(v) => {
                    e.push(0xF4);
                    e.extend_from_slice(&v.to_le_bytes());
                }
                Element::Bytes(b) if b.len() < 64 => {
                    e.push(0x80 | b.len() as u8);
                    e.extend_from_slice(b);
                }
                Element::Bytes(b) if b.len() < 4096 => {
                    e.push(0xE0 | (b.len() >> 8) as u8);
                    e.push(b.len() as u8);
                    e.extend_from_slice(b);
                }
                Element::Bytes(b) => {
                    e.push(0xF0);
                    e.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    e.extend_from_slice(b);
                }
            }
            let size = e.len();
            let n = backlen_size(size);
            // Most significant group first; every byte after the first has the
            // continuation bit, so a right-to-left reader knows when to go on.
            for i in (0..n).rev() {
                let group = ((size >> (7 * i)) & 0x7f) as u8;
                e.push(if i == n - 1 { group } else { group | 0x80 });
            }
            body.extend_from_slice(&e);
        }
        let mut lp = Vec::new();
        lp.extend_from_slice(&((6 + body.len() + 1) as u32).to_le_bytes());
        lp.extend_from_slice(&(items.len().min(65535) as u16).to_le_bytes());
        lp.extend_from_slice(&body);
        lp.push(0xFF);
        lp
    }

    #[test]
    fn round_trips_every_encoding() {
        let big = vec![b'x'; 5000];
        let mid = vec![b'y'; 300];
        let items = [
            Element::Int(0),
            Element::Int(127),
            Element::Int(-1),
            Element::Int(-4096),
            Element::Int(4095),
            Element::Int(i64::MIN),
            Element::Bytes(b""),
            Element::Bytes(b"hello"),
            Element::Bytes(&mid),
            Element::Bytes(&big),
        ];
        assert_eq!(entries(&build(&items)).unwrap(), items);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = entries(&input);
        }
    }
}

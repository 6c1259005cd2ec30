//! Ziplists (RDB types 10, 12, 13 and quicklist nodes of type 14).
//!
//! ```text
//! u32 LE zlbytes | u32 LE zltail | u16 LE zllen (65535: count by walking) | entries | 0xFF
//! entry = prevlen (1 byte if < 254, else 0xFE + u32 LE) | encoding | data
//! ```
//!
//! Encodings: `00pppppp` string of 6-bit length; `01pppppp qqqqqqqq` 14-bit length
//! (big-endian); `10000000` + u32 BE length; `11000000` int16, `11010000` int32,
//! `11100000` int64, `11110000` int24, `11111110` int8 (all little-endian);
//! `1111xxxx` with xxxx in 1..=13: the immediate value xxxx − 1.

use crate::Result;
use crate::redis::{Element, corrupt, slice, take};

const WHAT: &str = "ziplist";

/// The entries of a ziplist, in order.
pub fn entries(blob: &[u8]) -> Result<Vec<Element<'_>>> {
    let zlbytes = u32::from_le_bytes(take::<4>(blob, 0, WHAT)?) as usize;
    let zltail = u32::from_le_bytes(take::<4>(blob, 4, WHAT)?) as usize;
    let zllen = u16::from_le_bytes(take::<2>(blob, 8, WHAT)?);
    if zlbytes != blob.len() {
        return Err(corrupt(
            WHAT,
            0,
            format!("header says {zlbytes} bytes, blob has {}", blob.len()),
        ));
    }
    let mut out = Vec::new();
    let mut at = 10;
    let mut prev_len = 0usize;
    let mut last_start = None;
    loop {
        let &first = blob
            .get(at)
            .ok_or_else(|| corrupt(WHAT, at, "missing end marker"))?;
        if first == 0xFF {
            if at + 1 != blob.len() {
                return Err(corrupt(WHAT, at, "bytes after the end marker"));
            }
            break;
        }
        let start = at;
        let prevlen = if first < 254 {
            at += 1;
            usize::from(first)
        } else if first == 254 {
            let v = u32::from_le_bytes(take::<4>(blob, at + 1, WHAT)?) as usize;
            at += 5;
            v
        } else {
            unreachable!("0xFF handled above")
        };
        if prevlen != prev_len {
            return Err(corrupt(
                WHAT,
                start,
                format!("prevlen {prevlen}, previous entry is {prev_len} bytes"),
            ));
        }
        let enc = *blob
            .get(at)
            .ok_or_else(|| corrupt(WHAT, at, "entry cut short"))?;
        let element = match enc >> 6 {
            0 => {
                let len = usize::from(enc & 0x3f);
                let s = slice(blob, at + 1, len, WHAT)?;
                at += 1 + len;
                Element::Bytes(s)
            }
            1 => {
                let b = take::<2>(blob, at, WHAT)?;
                let len = (usize::from(b[0] & 0x3f) << 8) | usize::from(b[1]);
                let s = slice(blob, at + 2, len, WHAT)?;
                at += 2 + len;
                Element::Bytes(s)
            }
            2 => {
                if enc != 0x80 {
                    return Err(corrupt(WHAT, at, format!("bad string encoding {enc:#04x}")));
                }
                let len = crate::redis::be_u32(take::<4>(blob, at + 1, WHAT)?) as usize;
                let s = slice(blob, at + 5, len, WHAT)?;
                at += 5 + len;
                Element::Bytes(s)
            }
            _ => {
                let (v, n) = match enc {
                    0xC0 => (
                        i64::from(i16::from_le_bytes(take::<2>(blob, at + 1, WHAT)?)),
                        2,
                    ),
                    0xD0 => (
                        i64::from(i32::from_le_bytes(take::<4>(blob, at + 1, WHAT)?)),
                        4,
                    ),
                    0xE0 => (i64::from_le_bytes(take::<8>(blob, at + 1, WHAT)?), 8),
                    0xF0 => {
                        let b = take::<3>(blob, at + 1, WHAT)?;
                        (i64::from(i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8), 3)
                    }
                    0xFE => (i64::from(take::<1>(blob, at + 1, WHAT)?[0] as i8), 1),
                    0xF1..=0xFD => (i64::from(enc & 0x0f) - 1, 0),
                    other => {
                        return Err(corrupt(
                            WHAT,
                            at,
                            format!("bad integer encoding {other:#04x}"),
                        ));
                    }
                };
                at += 1 + n;
                Element::Int(v)
            }
        };
        prev_len = at - start;
        last_start = Some(start);
        out.push(element);
    }
    let expected_tail = last_start.unwrap_or(10);
    if zltail != expected_tail {
        return Err(corrupt(
            WHAT,
            4,
            format!("zltail {zltail}, last entry at {expected_tail}"),
        ));
    }
    if zllen != u16::MAX && usize::from(zllen) != out.len() {
        return Err(corrupt(
            WHAT,
            8,
            format!("zllen {zllen}, {} entries found", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        let zl = [
            0x0f, 0, 0, 0, 0x0c, 0, 0, 0, 0x02, 0, 0x00, 0xf3, 0x02, 0xf6, 0xff,
        ];
        assert_eq!(
            entries(&zl).unwrap(),
            vec![Element::Int(2), Element::Int(5)]
        );
    }

    #[test]
    fn strings_and_wide_integers() {
        let mut body = Vec::new();
        let mut prev = 0u8;
        let mut push = |body: &mut Vec<u8>, entry: &[u8]| {
            body.push(prev);
            body.extend_from_slice(entry);
            prev = (entry.len() + 1) as u8;
        };
        push(&mut body, b"\x03abc");
        push(&mut body, &[0xF0, 0xFF, 0xFF, 0xFF]); // int24 -1
        push(&mut body, &[0xFE, 0x80]); // int8 -128
        push(&mut body, &[0xC0, 0x00, 0x80]); // int16 -32768
        let tail = 10 + body.len() - 4;
        let total = 10 + body.len() + 1;
        let mut zl = Vec::new();
        zl.extend_from_slice(&(total as u32).to_le_bytes());
        zl.extend_from_slice(&(tail as u32).to_le_bytes());
        zl.extend_from_slice(&4u16.to_le_bytes());
        zl.extend_from_slice(&body);
        zl.push(0xFF);
        assert_eq!(
            entries(&zl).unwrap(),
            vec![
                Element::Bytes(b"abc"),
                Element::Int(-1),
                Element::Int(-128),
                Element::Int(-32768)
            ]
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = entries(&input);
        }
    }
}

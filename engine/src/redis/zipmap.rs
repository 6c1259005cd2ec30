//! Zipmaps (RDB type 9, Redis ≤ 2.4 small hashes).
//!
//! ```text
//! u8 zmlen (≥ 254: unknown) | { len key | len u8-free value free-bytes }* | 0xFF
//! len = 1 byte if < 254, else 0xFE + u32 LE
//! ```

use crate::Result;
use crate::redis::{corrupt, slice, take};

const WHAT: &str = "zipmap";

fn read_len(blob: &[u8], at: usize) -> Result<(usize, usize)> {
    match take::<1>(blob, at, WHAT)?[0] {
        b @ 0..=253 => Ok((usize::from(b), 1)),
        254 => Ok((
            u32::from_le_bytes(take::<4>(blob, at + 1, WHAT)?) as usize,
            5,
        )),
        _ => Err(corrupt(WHAT, at, "end marker where a length was expected")),
    }
}

/// The (field, value) pairs of a zipmap, in order.
pub fn pairs(blob: &[u8]) -> Result<Vec<(&[u8], &[u8])>> {
    let zmlen = take::<1>(blob, 0, WHAT)?[0];
    let mut out = Vec::new();
    let mut at = 1;
    loop {
        if take::<1>(blob, at, WHAT)?[0] == 0xFF {
            if at + 1 != blob.len() {
                return Err(corrupt(WHAT, at, "bytes after the end marker"));
            }
            break;
        }
        let (klen, n) = read_len(blob, at)?;
        let key = slice(blob, at + n, klen, WHAT)?;
        at += n + klen;
        let (vlen, n) = read_len(blob, at)?;
        let free = usize::from(take::<1>(blob, at + n, WHAT)?[0]);
        let value = slice(blob, at + n + 1, vlen, WHAT)?;
        at += n + 1 + vlen;
        slice(blob, at, free, WHAT)?;
        at += free;
        out.push((key, value));
    }
    if zmlen < 254 && usize::from(zmlen) != out.len() {
        return Err(corrupt(
            WHAT,
            0,
            format!("header counts {zmlen} pairs, {} found", out.len()),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example() {
        let zm = b"\x02\x03foo\x03\x00bar\x05hello\x05\x00world\xff";
        assert_eq!(
            pairs(zm).unwrap(),
            vec![(&b"foo"[..], &b"bar"[..]), (&b"hello"[..], &b"world"[..])]
        );
    }

    #[test]
    fn free_bytes_are_skipped_and_damage_is_caught() {
        let zm = b"\x01\x01a\x01\x02bxx\xff";
        assert_eq!(pairs(zm).unwrap(), vec![(&b"a"[..], &b"b"[..])]);
        assert!(pairs(b"\x01\x01a\x01\x05bxx\xff").is_err());
        assert!(pairs(b"\x02\x01a\x01\x00b\xff").is_err());
        assert!(pairs(b"").is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = pairs(&input);
        }
    }
}

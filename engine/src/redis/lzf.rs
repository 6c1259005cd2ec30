//! LZF decompression, as Redis uses it for compressed RDB strings (encoding `0xC3`).
//!
//! The stream is a sequence of runs. A control byte `c < 32` is followed by `c + 1`
//! literal bytes. Otherwise `c >> 5` is a length (7 means "add the next byte"), and the
//! low 5 bits with the next byte form a distance: `len + 2` bytes are copied from
//! `distance + 1` bytes back in the output, possibly overlapping what is being written.

use crate::Result;
use crate::redis::corrupt;

/// Decompresses `input`, which must expand to exactly `expected_len` bytes.
///
/// The output never grows past `expected_len`, and it is allocated as it is produced,
/// so a hostile `expected_len` costs nothing the input does not actually expand to.
pub fn decompress(input: &[u8], expected_len: usize) -> Result<Vec<u8>> {
    // LZF expands at most ~132x (a 3-byte back-reference copies 264 bytes).
    let mut out = Vec::with_capacity(expected_len.min(input.len().saturating_mul(4) + 64));
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            let n = ctrl + 1;
            let lit = input.get(ip..ip + n).ok_or_else(|| {
                corrupt(
                    "LZF string",
                    ip,
                    format!("literal run of {n} bytes past the end"),
                )
            })?;
            if out.len() + n > expected_len {
                return Err(too_long(ip, expected_len));
            }
            out.extend_from_slice(lit);
            ip += n;
        } else {
            let mut len = ctrl >> 5;
            if len == 7 {
                let &extra = input
                    .get(ip)
                    .ok_or_else(|| corrupt("LZF string", ip, "back-reference cut short"))?;
                len += usize::from(extra);
                ip += 1;
            }
            let &low = input
                .get(ip)
                .ok_or_else(|| corrupt("LZF string", ip, "back-reference cut short"))?;
            ip += 1;
            let distance = ((ctrl & 0x1f) << 8) + usize::from(low) + 1;
            if distance > out.len() {
                return Err(corrupt(
                    "LZF string",
                    ip - 1,
                    format!(
                        "back-reference {distance} bytes back with only {} written",
                        out.len()
                    ),
                ));
            }
            let n = len + 2;
            if out.len() + n > expected_len {
                return Err(too_long(ip, expected_len));
            }
            let start = out.len() - distance;
            if distance >= n {
                out.extend_from_within(start..start + n);
            } else {
                for i in 0..n {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
    }
    if out.len() != expected_len {
        return Err(corrupt(
            "LZF string",
            input.len(),
            format!("expanded to {} bytes, declared {expected_len}", out.len()),
        ));
    }
    Ok(out)
}

fn too_long(at: usize, expected_len: usize) -> crate::Error {
    corrupt(
        "LZF string",
        at,
        format!("expands past its declared length of {expected_len} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_overlapping_back_references() {
        // "aaaaaaaaaa": literal 'a', then copy 9 bytes from distance 1.
        let input = [0x00, b'a', (7 << 5), 9 - 2 - 7, 0x00];
        assert_eq!(decompress(&input, 10).unwrap(), b"aaaaaaaaaa");
        // "abcabcabc": literal "abc", then 6 bytes from distance 3.
        let input = [0x02, b'a', b'b', b'c', (4 << 5), 0x02];
        assert_eq!(decompress(&input, 9).unwrap(), b"abcabcabc");
    }

    #[test]
    fn rejects_bad_input_without_panicking() {
        assert!(decompress(&[0x05, b'a'], 6).is_err()); // literal past the end
        assert!(decompress(&[0x20, 0x00], 3).is_err()); // reference before the start
        assert!(decompress(&[0x00, b'a'], 2).is_err()); // too short
        assert!(decompress(&[0x01, b'a', b'b'], 1).is_err()); // too long
        assert!(decompress(&[0xe0], 100).is_err()); // cut short
        assert!(decompress(&[0x00, b'a', 0xe0, 0xff, 0x00], usize::MAX).is_err());
    }

    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
                        len in 0usize..300) {
            let _ = decompress(&input, len);
        }
    }
}

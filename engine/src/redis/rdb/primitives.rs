//! The RDB's primitive encodings: lengths and strings (`rdbLoadLen`,
//! `rdbGenericLoadStringObject`).
//!
//! Every function here looks at a prefix of the bytes it is given. `Ok(None)` means "not
//! enough bytes yet" (the streaming parser then waits for more); errors name the absolute
//! byte offset, given as `at`, of what they reject.

use crate::redis::lzf;
use crate::{Error, ErrorKind, Result};

/// The largest string the parser will buffer whole (a key, an AUX value, a function
/// library): Redis' own `proto-max-bulk-len` default.
pub const MAX_BUFFERED_STRING: u64 = 512 << 20;

/// A length field, or the special string encoding it announces (`11xxxxxx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// A plain length.
    Plain(u64),
    /// A special string encoding: 0 int8, 1 int16, 2 int32, 3 LZF.
    Encoded(u8),
}

pub(crate) fn corrupt_at(at: u64, message: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("corrupt RDB at byte {at}: {message}"),
    )
}

/// Parses a length field; returns it and its size in bytes.
pub fn length(b: &[u8], at: u64) -> Result<Option<(Length, usize)>> {
    let Some(&first) = b.first() else {
        return Ok(None);
    };
    Ok(match first >> 6 {
        0 => Some((Length::Plain(u64::from(first & 0x3f)), 1)),
        1 => b.get(1).map(|&second| {
            (
                Length::Plain((u64::from(first & 0x3f) << 8) | u64::from(second)),
                2,
            )
        }),
        2 => match first {
            0x80 => b.get(1..5).map(|x| {
                (
                    Length::Plain(u64::from(crate::redis::be_u32(x.try_into().expect("4")))),
                    5,
                )
            }),
            0x81 => b.get(1..9).map(|x| {
                (
                    Length::Plain(crate::redis::be_u64(x.try_into().expect("8"))),
                    9,
                )
            }),
            other => return Err(corrupt_at(at, format!("bad length encoding {other:#04x}"))),
        },
        _ => Some((Length::Encoded(first & 0x3f), 1)),
    })
}

/// Parses a plain length (a special encoding is corruption here).
pub fn plain_length(b: &[u8], at: u64) -> Result<Option<(u64, usize)>> {
    match length(b, at)? {
        None => Ok(None),
        Some((Length::Plain(n), used)) => Ok(Some((n, used))),
        Some((Length::Encoded(e), _)) => Err(corrupt_at(
            at,
            format!("string encoding {e} where a length was expected"),
        )),
    }
}

/// How a string is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StringKind {
    /// Raw bytes.
    Raw,
    /// A little-endian signed integer of 1, 2 or 4 bytes, meaning its decimal text.
    Int,
    /// LZF-compressed; expands to this many bytes.
    Lzf(u64),
}

/// A string's header: its kind, the header's size and the body's size.
#[derive(Clone, Copy, Debug)]
pub struct StringHeader {
    /// How the body is stored.
    pub kind: StringKind,
    /// Bytes of the header.
    pub header_len: usize,
    /// Bytes of the body that follows the header.
    pub body_len: u64,
}

/// Parses a string's header.
pub fn string_header(b: &[u8], at: u64) -> Result<Option<StringHeader>> {
    let Some((len, used)) = length(b, at)? else {
        return Ok(None);
    };
    Ok(Some(match len {
        Length::Plain(n) => StringHeader {
            kind: StringKind::Raw,
            header_len: used,
            body_len: n,
        },
        Length::Encoded(e @ 0..=2) => StringHeader {
            kind: StringKind::Int,
            header_len: 1,
            body_len: 1 << e,
        },
        Length::Encoded(3) => {
            let Some((clen, a)) = plain_length(&b[1..], at + 1)? else {
                return Ok(None);
            };
            let Some((ulen, c)) = plain_length(&b[1 + a..], at + 1 + a as u64)? else {
                return Ok(None);
            };
            StringHeader {
                kind: StringKind::Lzf(ulen),
                header_len: 1 + a + c,
                body_len: clen,
            }
        }
        Length::Encoded(e) => {
            return Err(corrupt_at(at, format!("unknown string encoding {e}")));
        }
    }))
}

/// Decodes a string body of `kind`.
pub fn decode_body(kind: StringKind, body: &[u8], at: u64) -> Result<Vec<u8>> {
    match kind {
        StringKind::Raw => Ok(body.to_vec()),
        StringKind::Int => {
            let v = match body.len() {
                1 => i64::from(body[0] as i8),
                2 => i64::from(i16::from_le_bytes(body.try_into().expect("2"))),
                _ => i64::from(i32::from_le_bytes(body.try_into().expect("4"))),
            };
            Ok(v.to_string().into_bytes())
        }
        StringKind::Lzf(ulen) => {
            let ulen = usize::try_from(ulen)
                .ok()
                .filter(|&u| u as u64 <= MAX_BUFFERED_STRING.max(body.len() as u64 * 256))
                .ok_or_else(|| corrupt_at(at, format!("LZF string declares {ulen} bytes")))?;
            lzf::decompress(body, ulen).map_err(|e| e.context(format!("RDB string at byte {at}")))
        }
    }
}

/// Parses and decodes a whole string; returns it and the bytes it occupied.
pub fn string(b: &[u8], at: u64) -> Result<Option<(Vec<u8>, usize)>> {
    let Some(h) = string_header(b, at)? else {
        return Ok(None);
    };
    if h.body_len > MAX_BUFFERED_STRING {
        return Err(corrupt_at(
            at,
            format!(
                "string of {} bytes is larger than the 512 MiB Redis allows",
                h.body_len
            ),
        ));
    }
    let end = h.header_len + h.body_len as usize;
    let Some(body) = b.get(h.header_len..end) else {
        return Ok(None);
    };
    Ok(Some((decode_body(h.kind, body, at)?, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths() {
        assert_eq!(length(&[0x3f], 0).unwrap(), Some((Length::Plain(63), 1)));
        assert_eq!(
            length(&[0x41, 0x02], 0).unwrap(),
            Some((Length::Plain(258), 2))
        );
        assert_eq!(length(&[0x41], 0).unwrap(), None);
        assert_eq!(
            length(&[0x80, 0, 1, 0, 0], 0).unwrap(),
            Some((Length::Plain(65536), 5))
        );
        assert_eq!(
            length(&[0x81, 0, 0, 0, 1, 0, 0, 0, 0], 0).unwrap(),
            Some((Length::Plain(1 << 32), 9))
        );
        assert_eq!(length(&[0xC3], 0).unwrap(), Some((Length::Encoded(3), 1)));
        assert!(length(&[0x82], 0).is_err());
    }

    #[test]
    fn strings() {
        assert_eq!(string(b"\x03abcX", 0).unwrap(), Some((b"abc".to_vec(), 4)));
        assert_eq!(string(b"\x03ab", 0).unwrap(), None);
        assert_eq!(string(&[0xC0, 0xFF], 0).unwrap(), Some((b"-1".to_vec(), 2)));
        assert_eq!(
            string(&[0xC1, 0x00, 0x80], 0).unwrap(),
            Some((b"-32768".to_vec(), 3))
        );
        assert_eq!(
            string(&[0xC2, 0xD2, 0x02, 0x96, 0x49], 0).unwrap(),
            Some((b"1234567890".to_vec(), 5))
        );
        // LZF: clen 3, ulen 4, literal run "ab" then copy 2 from distance 2... as literals.
        assert_eq!(
            string(&[0xC3, 0x05, 0x04, 0x03, b'a', b'b', b'c', b'd'], 0).unwrap(),
            Some((b"abcd".to_vec(), 8))
        );
        assert!(string(&[0xC4], 0).is_err());
    }
}

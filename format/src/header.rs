//! The file header (SPEC.md §3): magic, version, feature bits, archive id, cipher suite, and
//! a TLV area holding the writer's name and the key slots.
//!
//! It is written first, even to a pipe, and carries a BLAKE3 of itself so that a reader
//! knows it can trust the version and feature bits before it acts on them.

use std::io::Read;

use crate::crypto::{KEY_SLOT_LEN, KeySlot, SUITE_CHACHA20_BLAKE3};
use crate::error::{Error, Result};
use crate::limits;

/// First bytes of every archive. The non-ASCII first byte, CR LF, ^Z and LF make text-mode
/// transfers and line-ending conversion visible at once (the PNG trick).
pub const MAGIC: [u8; 8] = *b"\x89CFR\r\n\x1a\n";
/// Bytes of the fixed part of the header.
pub const FIXED_HEADER_LEN: usize = 80;
/// Major format version this crate writes and reads.
pub const FORMAT_MAJOR: u16 = 1;
/// Minor format version this crate writes.
pub const FORMAT_MINOR: u16 = 0;
/// Required-feature bit: frames are encrypted (suite ≠ 0, at least one key slot).
pub const REQUIRED_ENCRYPTED: u64 = 1;
const KNOWN_REQUIRED: u64 = REQUIRED_ENCRYPTED;

const TLV_WRITER: u16 = 0x0001;
const TLV_KEY_SLOT: u16 = 0x8001;
const TLV_CRITICAL: u16 = 0x8000;
const MAX_WRITER_LEN: usize = 256;

/// A parsed file header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// Minor version of the writer (informational within major 1).
    pub minor: u16,
    /// Random id of this archive, repeated in the trailer and bound into every AEAD.
    pub archive_id: [u8; 16],
    /// When the archive was started, in milliseconds since the Unix epoch.
    pub created_unix_ms: u64,
    /// 0 for plain archives, 1 for ChaCha20-Poly1305 with BLAKE3 key derivation.
    pub suite: u16,
    /// Optional feature bits (unknown ones are ignored).
    pub optional_features: u64,
    /// The program that wrote the archive.
    pub writer: String,
    pub(crate) key_slots: Vec<KeySlot>,
}

impl FileHeader {
    /// True if the archive's frames are encrypted.
    pub fn encrypted(&self) -> bool {
        self.suite != 0
    }

    /// Serialises the header with its TLV area and hash.
    pub fn encode(&self) -> Vec<u8> {
        let mut tlv = Vec::new();
        let writer = self.writer.as_bytes();
        push_tlv(
            &mut tlv,
            TLV_WRITER,
            &writer[..writer.len().min(MAX_WRITER_LEN)],
        );
        for slot in &self.key_slots {
            push_tlv(&mut tlv, TLV_KEY_SLOT, &slot.encode());
        }
        let mut b = vec![0u8; FIXED_HEADER_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
        b[10..12].copy_from_slice(&self.minor.to_le_bytes());
        let header_len = u32::try_from(FIXED_HEADER_LEN + tlv.len()).expect("header fits u32");
        b[12..16].copy_from_slice(&header_len.to_le_bytes());
        let required = if self.encrypted() {
            REQUIRED_ENCRYPTED
        } else {
            0
        };
        b[16..24].copy_from_slice(&required.to_le_bytes());
        b[24..32].copy_from_slice(&self.optional_features.to_le_bytes());
        b[32..48].copy_from_slice(&self.archive_id);
        b[48..56].copy_from_slice(&self.created_unix_ms.to_le_bytes());
        b[56..58].copy_from_slice(&self.suite.to_le_bytes());
        let hash = header_hash(&b[..64], &tlv);
        b[64..80].copy_from_slice(&hash);
        b.extend_from_slice(&tlv);
        b
    }

    /// Parses a header from the start of `bytes`; returns it and its length.
    pub fn parse(bytes: &[u8]) -> Result<(Self, usize)> {
        check_magic_prefix(bytes)?;
        let fixed: &[u8; FIXED_HEADER_LEN] = bytes
            .get(..FIXED_HEADER_LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| short_header(bytes.len()))?;
        let len = header_len(fixed)?;
        let tlv = bytes
            .get(FIXED_HEADER_LEN..len)
            .ok_or_else(|| short_header(bytes.len()))?;
        Ok((Self::from_parts(fixed, tlv)?, len))
    }

    /// Reads a header from a stream; returns it and its length.
    pub fn read_from(r: &mut impl Read) -> Result<(Self, usize)> {
        let mut fixed = [0u8; FIXED_HEADER_LEN];
        let mut got = 0;
        while got < FIXED_HEADER_LEN {
            match r.read(&mut fixed[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("reading the file header", e)),
            }
        }
        check_magic_prefix(&fixed[..got])?;
        if got < FIXED_HEADER_LEN {
            return Err(short_header(got));
        }
        let len = header_len(&fixed)?;
        let mut tlv = vec![0u8; len - FIXED_HEADER_LEN];
        read_exact(r, &mut tlv, "file header extension area")?;
        Ok((Self::from_parts(&fixed, &tlv)?, len))
    }

    fn from_parts(b: &[u8; FIXED_HEADER_LEN], tlv: &[u8]) -> Result<Self> {
        if header_hash(&b[..64], tlv) != b[64..80] {
            return Err(Error::corrupt("file header", 0, "header hash mismatch"));
        }
        let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let required = u64_at(16);
        if required & !KNOWN_REQUIRED != 0 {
            return Err(Error::UnsupportedFeature {
                what: format!("required feature bits {:#x}", required & !KNOWN_REQUIRED),
            });
        }
        if b[58..64].iter().any(|&x| x != 0) {
            return Err(Error::corrupt(
                "file header",
                0,
                "reserved bytes are not zero",
            ));
        }
        let suite = u16_at(56);
        if suite > SUITE_CHACHA20_BLAKE3 {
            return Err(Error::UnsupportedFeature {
                what: format!("cipher suite {suite}"),
            });
        }
        let (writer, key_slots) = parse_tlv(tlv)?;
        let encrypted = required & REQUIRED_ENCRYPTED != 0;
        if encrypted != (suite != 0) || encrypted == key_slots.is_empty() {
            return Err(Error::corrupt(
                "file header",
                0,
                "encryption bit, cipher suite and key slots disagree",
            ));
        }
        Ok(FileHeader {
            minor: u16_at(10),
            archive_id: b[32..48].try_into().expect("16 bytes"),
            created_unix_ms: u64_at(48),
            suite,
            optional_features: u64_at(24),
            writer,
            key_slots,
        })
    }
}

/// A foreign file is "not an archive" however short it is; only a prefix of the magic
/// itself makes a short file a truncated archive.
fn check_magic_prefix(bytes: &[u8]) -> Result<()> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] || bytes.is_empty() {
        return Err(Error::NotAnArchive);
    }
    Ok(())
}

fn short_header(have: usize) -> Error {
    Error::Truncated {
        detail: format!("file ends inside the file header ({have} bytes)"),
    }
}

/// Checks magic and version, and bounds the header length before anything is allocated.
fn header_len(b: &[u8; FIXED_HEADER_LEN]) -> Result<usize> {
    if b[0..8] != MAGIC {
        return Err(Error::NotAnArchive);
    }
    let major = u16::from_le_bytes([b[8], b[9]]);
    let minor = u16::from_le_bytes([b[10], b[11]]);
    if major != FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion { major, minor });
    }
    let len = u32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
    let max = FIXED_HEADER_LEN as u32 + limits::MAX_HEADER_TLV;
    if len < FIXED_HEADER_LEN as u32 || len > max {
        return Err(Error::LimitExceeded {
            what: "file header length",
            offset: 0,
            value: len.into(),
            max: max.into(),
        });
    }
    Ok(len as usize)
}

fn header_hash(fixed: &[u8], tlv: &[u8]) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(fixed);
    h.update(tlv);
    h.finalize().as_bytes()[..16].try_into().expect("16 bytes")
}

fn push_tlv(out: &mut Vec<u8>, ty: u16, value: &[u8]) {
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&u32::try_from(value.len()).expect("small TLV").to_le_bytes());
    out.extend_from_slice(value);
}

fn parse_tlv(mut tlv: &[u8]) -> Result<(String, Vec<KeySlot>)> {
    let mut writer = String::new();
    let mut slots = Vec::new();
    let mut offset = FIXED_HEADER_LEN as u64;
    while !tlv.is_empty() {
        let bad = |d: &str| Error::corrupt("file header extension", offset, d.to_string());
        if tlv.len() < 6 {
            return Err(bad("entry header cut short"));
        }
        let ty = u16::from_le_bytes([tlv[0], tlv[1]]);
        let len = u32::from_le_bytes(tlv[2..6].try_into().expect("4 bytes")) as usize;
        let value = tlv
            .get(6..6 + len)
            .ok_or_else(|| bad("entry runs past the header"))?;
        match ty {
            TLV_WRITER => writer = String::from_utf8_lossy(value).into_owned(),
            TLV_KEY_SLOT => {
                if len != KEY_SLOT_LEN {
                    return Err(bad("key slot of the wrong length"));
                }
                slots.push(KeySlot::parse(value, offset + 6)?);
            }
            t if t & TLV_CRITICAL != 0 => {
                return Err(Error::UnsupportedFeature {
                    what: format!("critical header extension {t:#06x}"),
                });
            }
            _ => {} // ancillary and unknown: skipped, as SPEC.md §3.2 says
        }
        tlv = &tlv[6 + len..];
        offset += 6 + len as u64;
    }
    Ok((writer, slots))
}

fn read_exact(r: &mut impl Read, buf: &mut [u8], what: &str) -> Result<()> {
    r.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::Truncated {
                detail: format!("input ends inside the {what}"),
            }
        } else {
            Error::io(format!("reading the {what}"), e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain() -> FileHeader {
        FileHeader {
            minor: 0,
            archive_id: [3; 16],
            created_unix_ms: 1_700_000_000_000,
            suite: 0,
            optional_features: 0,
            writer: "coffer test".into(),
            key_slots: vec![],
        }
    }

    #[test]
    fn round_trips_through_slice_and_reader() {
        let h = plain();
        let bytes = h.encode();
        assert_eq!(FileHeader::parse(&bytes).unwrap(), (h.clone(), bytes.len()));
        assert_eq!(
            FileHeader::read_from(&mut &bytes[..]).unwrap(),
            (h, bytes.len())
        );
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let bytes = plain().encode();
        for bit in 0..bytes.len() * 8 {
            let mut b = bytes.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(FileHeader::parse(&b).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn huge_header_length_is_refused_before_allocating() {
        let mut b = plain().encode();
        b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            FileHeader::read_from(&mut &b[..]),
            Err(Error::LimitExceeded { .. })
        ));
    }
}

//! The trailer (SPEC.md §11): the last 64 bytes of a sealed archive. It is the seal: no
//! valid trailer means "unsealed", never "empty".

use crate::crypto::ArchiveKeys;
use crate::error::{Error, Result};

/// Bytes of the trailer.
pub const TRAILER_LEN: usize = 64;
/// Last four bytes of a sealed archive.
pub const TRAILER_MAGIC: [u8; 4] = *b"CFR$";
const TRAILER_VERSION: u16 = 1;

/// Where the manifest and index are, and how many frames the index lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// Offset of the INDEX frame header.
    pub index_offset: u64,
    /// Stored length of the INDEX frame payload.
    pub index_stored_len: u32,
    /// Offset of the MANIFEST frame header.
    pub manifest_offset: u64,
    /// Stored length of the MANIFEST frame payload.
    pub manifest_stored_len: u32,
    /// Number of index records (stream frames).
    pub frame_count: u64,
    /// Must equal the file header's archive id.
    pub archive_id: [u8; 16],
}

impl Trailer {
    /// Serialises the trailer with its check value: a BLAKE3 prefix for plain archives, a
    /// keyed BLAKE3 (trailer-MAC subkey) for encrypted ones.
    pub(crate) fn encode(&self, keys: Option<&ArchiveKeys>) -> [u8; TRAILER_LEN] {
        let mut b = [0u8; TRAILER_LEN];
        b[0..8].copy_from_slice(&self.index_offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.index_stored_len.to_le_bytes());
        b[12..20].copy_from_slice(&self.manifest_offset.to_le_bytes());
        b[20..24].copy_from_slice(&self.manifest_stored_len.to_le_bytes());
        b[24..32].copy_from_slice(&self.frame_count.to_le_bytes());
        b[32..48].copy_from_slice(&self.archive_id);
        b[50..52].copy_from_slice(&TRAILER_VERSION.to_le_bytes());
        let check = check_value(&b[..52], keys);
        b[52..60].copy_from_slice(&check);
        b[60..64].copy_from_slice(&TRAILER_MAGIC);
        b
    }

    /// Parses the trailer at `offset` (= file length − 64). With `keys` absent on an
    /// encrypted archive, the MAC cannot be checked; `mac_checked` in the result says so.
    pub(crate) fn parse(
        b: &[u8; TRAILER_LEN],
        offset: u64,
        encrypted: bool,
        keys: Option<&ArchiveKeys>,
    ) -> Result<(Self, bool)> {
        let bad = |d: &str| Error::corrupt("trailer", offset, d.to_string());
        if b[60..64] != TRAILER_MAGIC {
            return Err(Error::Truncated {
                detail: "no trailer at the end of the file: the archive was never sealed or is cut short"
                    .into(),
            });
        }
        let mac_checked = !encrypted || keys.is_some();
        if mac_checked && check_value(&b[..52], keys.filter(|_| encrypted)) != b[52..60] {
            return Err(bad("trailer check value mismatch"));
        }
        if b[48..50] != [0, 0] || u16::from_le_bytes([b[50], b[51]]) != TRAILER_VERSION {
            return Err(bad("unknown trailer flags or version"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let t = Trailer {
            index_offset: u64_at(0),
            index_stored_len: u32_at(8),
            manifest_offset: u64_at(12),
            manifest_stored_len: u32_at(20),
            frame_count: u64_at(24),
            archive_id: b[32..48].try_into().expect("16 bytes"),
        };
        let frame_hdr = crate::frame::FRAME_HEADER_LEN as u64;
        // offsets are untrusted (and unauthenticated when no key was given): no arithmetic
        // on them may overflow
        let manifest_end = t
            .manifest_offset
            .checked_add(frame_hdr + u64::from(t.manifest_stored_len));
        let index_end = t
            .index_offset
            .checked_add(frame_hdr + u64::from(t.index_stored_len));
        if manifest_end != Some(t.index_offset) || index_end != Some(offset) {
            return Err(bad("manifest and index do not sit just before the trailer"));
        }
        // Every index record stands for a frame of at least a header's size.
        if t.frame_count > offset / frame_hdr {
            return Err(Error::LimitExceeded {
                what: "trailer frame count",
                offset,
                value: t.frame_count,
                max: offset / frame_hdr,
            });
        }
        Ok((t, mac_checked))
    }
}

fn check_value(bytes: &[u8], keys: Option<&ArchiveKeys>) -> [u8; 8] {
    let full = match keys {
        Some(k) => k.trailer_check(bytes),
        None => *blake3::hash(bytes).as_bytes(),
    };
    full[..8].try_into().expect("8 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `index_trailer` fuzz target: a huge manifest offset in a trailer whose
    /// MAC cannot be checked (encrypted archive, no key) overflowed the layout check.
    #[test]
    fn huge_offsets_are_refused_not_overflowed() {
        let mut b = [0u8; TRAILER_LEN];
        b[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
        b[50..52].copy_from_slice(&TRAILER_VERSION.to_le_bytes());
        b[60..64].copy_from_slice(&TRAILER_MAGIC);
        assert!(Trailer::parse(&b, 1000, true, None).is_err());
        b[0..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Trailer::parse(&b, 1000, true, None).is_err());
    }
}

//! The 128-byte frame header (SPEC.md §4).
//!
//! Headers are plaintext so that an archive can be scanned, indexed and scrubbed without a
//! key; when the archive is encrypted they are authenticated as part of the AEAD's
//! associated data. The CRC-32C at the end is checked before any length in the header is
//! trusted, so salvage can reject garbage cheaply while it scans for the sync marker.

use crate::error::{Error, Result};
use crate::limits;

/// Bytes of a frame header on disk.
pub const FRAME_HEADER_LEN: usize = 128;
/// Sync marker that starts every frame; salvage scans for it.
pub const SYNC: [u8; 4] = [0xC0, 0xFF, 0xEE, 0xF7];
/// Layout version of the frame header.
pub const HEADER_VERSION: u8 = 1;
/// Stream id reserved for the MANIFEST and INDEX frames.
pub const META_STREAM: u32 = u32::MAX;
/// The part of the header bound into the AEAD associated data: everything before the hashes.
pub const AAD_HEADER_LEN: usize = 44;

/// Frame types (SPEC.md §4.2). Types with bit 7 set are ancillary: readers skip unknown ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrameType {
    /// Opens a stream; payload is the JSON stream descriptor.
    StreamBegin,
    /// Stream content.
    Data,
    /// Closes a stream; payload is the 48-byte stream summary.
    StreamEnd,
    /// The archive manifest (JSON).
    Manifest,
    /// The archive index (fixed-width records).
    Index,
    /// An ancillary type this reader does not know; skipped after its checks.
    Ancillary(u8),
}

impl FrameType {
    /// The byte stored in the header.
    pub fn code(self) -> u8 {
        match self {
            FrameType::StreamBegin => 0x01,
            FrameType::Data => 0x02,
            FrameType::StreamEnd => 0x03,
            FrameType::Manifest => 0x10,
            FrameType::Index => 0x11,
            FrameType::Ancillary(c) => c,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0x01 => FrameType::StreamBegin,
            0x02 => FrameType::Data,
            0x03 => FrameType::StreamEnd,
            0x10 => FrameType::Manifest,
            0x11 => FrameType::Index,
            c if c & 0x80 != 0 => FrameType::Ancillary(c),
            _ => return None,
        })
    }

    /// True for the frames that belong to a stream (and so to the index).
    pub fn is_stream_frame(self) -> bool {
        matches!(
            self,
            FrameType::StreamBegin | FrameType::Data | FrameType::StreamEnd
        )
    }

    fn max_raw(self) -> u32 {
        match self {
            FrameType::Manifest | FrameType::Index => limits::MAX_META_RAW,
            _ => limits::MAX_FRAME_RAW,
        }
    }
}

/// Header flag: the payload is sealed with the archive's AEAD.
pub const FLAG_ENCRYPTED: u16 = 1 << 0;
/// Header flag: the last frame of its stream (STREAM_END, and INDEX for the meta stream).
pub const FLAG_LAST: u16 = 1 << 1;
const KNOWN_FLAGS: u16 = FLAG_ENCRYPTED | FLAG_LAST;

/// How a payload is compressed. Ids are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    /// Stored as is (compression did not shrink it).
    Stored,
    /// One zstd frame.
    Zstd,
}

impl Codec {
    fn code(self) -> u8 {
        match self {
            Codec::Stored => 0,
            Codec::Zstd => 1,
        }
    }
}

/// A parsed, structurally valid frame header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// What the frame holds.
    pub frame_type: FrameType,
    /// `FLAG_*` bits.
    pub flags: u16,
    /// Payload compression.
    pub codec: Codec,
    /// Stream the frame belongs to.
    pub stream_id: u32,
    /// Position of the frame in its stream, from 0 (STREAM_BEGIN).
    pub seq: u64,
    /// Offset of this frame's raw bytes in its stream's data.
    pub raw_offset: u64,
    /// Payload length on disk.
    pub stored_len: u32,
    /// Payload length after decryption and decompression.
    pub raw_len: u32,
    /// BLAKE3 of the stored payload.
    pub stored_hash: [u8; 32],
    /// BLAKE3 (keyed when encrypted) of the raw payload.
    pub raw_hash: [u8; 32],
}

impl FrameHeader {
    /// True if the payload is encrypted.
    pub fn encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    /// True if this is the last frame of its stream.
    pub fn last(&self) -> bool {
        self.flags & FLAG_LAST != 0
    }

    /// Total bytes of the frame on disk, header included.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.stored_len)
    }

    /// Serialises the header, CRC included.
    pub fn encode(&self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&SYNC);
        b[4] = self.frame_type.code();
        b[5] = HEADER_VERSION;
        b[6..8].copy_from_slice(&self.flags.to_le_bytes());
        b[8] = self.codec.code();
        b[12..16].copy_from_slice(&self.stream_id.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.raw_offset.to_le_bytes());
        b[32..36].copy_from_slice(&self.stored_len.to_le_bytes());
        b[36..40].copy_from_slice(&self.raw_len.to_le_bytes());
        b[44..76].copy_from_slice(&self.stored_hash);
        b[76..108].copy_from_slice(&self.raw_hash);
        let crc = crc32c::crc32c(&b[..124]);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a header found at `offset` (SPEC.md §4.4 steps 1–2): sync, CRC,
    /// version, type, flags, codec, reserved bytes and length limits. The payload is not
    /// touched.
    pub fn parse(b: &[u8; FRAME_HEADER_LEN], offset: u64) -> Result<Self> {
        let bad = |detail: String| Error::corrupt("frame header", offset, detail);
        if b[0..4] != SYNC {
            return Err(bad("no frame sync marker".into()));
        }
        let stored_crc = u32::from_le_bytes(b[124..128].try_into().expect("4 bytes"));
        if crc32c::crc32c(&b[..124]) != stored_crc {
            return Err(bad("header CRC-32C mismatch".into()));
        }
        if b[5] != HEADER_VERSION {
            return Err(bad(format!("unknown header version {}", b[5])));
        }
        let frame_type = FrameType::from_code(b[4])
            .ok_or_else(|| bad(format!("unknown frame type {:#04x}", b[4])))?;
        let flags = u16::from_le_bytes([b[6], b[7]]);
        if flags & !KNOWN_FLAGS != 0 {
            return Err(bad(format!(
                "unknown flag bits {:#06x}",
                flags & !KNOWN_FLAGS
            )));
        }
        let codec = match b[8] {
            0 => Codec::Stored,
            1 => Codec::Zstd,
            c => return Err(bad(format!("unknown codec {c}"))),
        };
        if b[9..12]
            .iter()
            .chain(&b[40..44])
            .chain(&b[108..124])
            .any(|&x| x != 0)
        {
            return Err(bad("reserved bytes are not zero".into()));
        }
        let u32_at = |i: usize| u32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let header = FrameHeader {
            frame_type,
            flags,
            codec,
            stream_id: u32_at(12),
            seq: u64_at(16),
            raw_offset: u64_at(24),
            stored_len: u32_at(32),
            raw_len: u32_at(36),
            stored_hash: b[44..76].try_into().expect("32 bytes"),
            raw_hash: b[76..108].try_into().expect("32 bytes"),
        };
        header.check_lengths(offset)?;
        Ok(header)
    }

    fn check_lengths(&self, offset: u64) -> Result<()> {
        let max_raw = self.frame_type.max_raw();
        if self.raw_len > max_raw {
            return Err(Error::LimitExceeded {
                what: "frame raw length",
                offset,
                value: self.raw_len.into(),
                max: max_raw.into(),
            });
        }
        let tag = if self.encrypted() {
            crate::crypto::TAG_LEN as u64
        } else {
            0
        };
        let stored = u64::from(self.stored_len);
        let ok = match self.codec {
            Codec::Stored => stored == u64::from(self.raw_len) + tag,
            Codec::Zstd => stored > tag && stored <= limits::max_stored_len(self.raw_len),
        };
        if !ok {
            return Err(Error::corrupt(
                "frame header",
                offset,
                format!(
                    "stored length {} impossible for raw length {} ({:?})",
                    self.stored_len, self.raw_len, self.codec
                ),
            ));
        }
        let meta = matches!(self.frame_type, FrameType::Manifest | FrameType::Index);
        if meta != (self.stream_id == META_STREAM) {
            return Err(Error::corrupt(
                "frame header",
                offset,
                format!(
                    "frame type {:?} cannot be in stream {}",
                    self.frame_type, self.stream_id
                ),
            ));
        }
        Ok(())
    }

    /// The bytes bound into the AEAD associated data (the header before the hashes).
    pub(crate) fn aad_prefix(&self) -> [u8; AAD_HEADER_LEN] {
        let full = self.encode();
        full[..AAD_HEADER_LEN].try_into().expect("44 bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FrameHeader {
        FrameHeader {
            frame_type: FrameType::Data,
            flags: 0,
            codec: Codec::Zstd,
            stream_id: 7,
            seq: 3,
            raw_offset: 1 << 33,
            stored_len: 100,
            raw_len: 1000,
            stored_hash: [1; 32],
            raw_hash: [2; 32],
        }
    }

    #[test]
    fn round_trips() {
        let h = sample();
        assert_eq!(FrameHeader::parse(&h.encode(), 0).unwrap(), h);
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let bytes = sample().encode();
        for bit in 0..FRAME_HEADER_LEN * 8 {
            let mut b = bytes;
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(
                FrameHeader::parse(&b, 0).is_err(),
                "bit {bit} flip accepted"
            );
        }
    }

    #[test]
    fn hostile_lengths_are_refused_even_with_a_valid_crc() {
        let mut h = sample();
        h.raw_len = u32::MAX;
        assert!(matches!(
            FrameHeader::parse(&h.encode(), 9),
            Err(Error::LimitExceeded { .. })
        ));
        let mut h = sample();
        h.stored_len = u32::MAX;
        assert!(FrameHeader::parse(&h.encode(), 9).is_err());
    }
}

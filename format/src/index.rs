//! The INDEX frame payload (SPEC.md §10): one fixed-width record per stream frame, sorted by
//! (stream, seq), so a reader can find any frame without scanning.

use crate::error::{Error, Result};
use crate::frame::{FrameHeader, FrameType};

/// Bytes of one index record.
pub const INDEX_RECORD_LEN: usize = 48;

/// Where one stream frame is, and what it must look like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// Stream of the frame.
    pub stream_id: u32,
    /// Frame type (STREAM_BEGIN, DATA or STREAM_END).
    pub frame_type: FrameType,
    /// Sequence number in the stream.
    pub seq: u64,
    /// Offset of the frame header in the file.
    pub file_offset: u64,
    /// Stored payload length.
    pub stored_len: u32,
    /// Raw payload length.
    pub raw_len: u32,
    /// Raw offset in the stream.
    pub raw_offset: u64,
    /// First 8 bytes of the frame's stored hash: ties the record to the exact frame.
    pub stored_hash_prefix: [u8; 8],
}

impl IndexEntry {
    /// The record for a frame written at `file_offset`.
    pub fn for_frame(h: &FrameHeader, file_offset: u64) -> Self {
        IndexEntry {
            stream_id: h.stream_id,
            frame_type: h.frame_type,
            seq: h.seq,
            file_offset,
            stored_len: h.stored_len,
            raw_len: h.raw_len,
            raw_offset: h.raw_offset,
            stored_hash_prefix: h.stored_hash[..8].try_into().expect("8 bytes"),
        }
    }

    /// Total bytes of the frame, header included.
    pub fn frame_len(&self) -> u64 {
        crate::frame::FRAME_HEADER_LEN as u64 + u64::from(self.stored_len)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.stream_id.to_le_bytes());
        out.extend_from_slice(&[self.frame_type.code(), 0, 0, 0]);
        out.extend_from_slice(&self.seq.to_le_bytes());
        out.extend_from_slice(&self.file_offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
        out.extend_from_slice(&self.raw_offset.to_le_bytes());
        out.extend_from_slice(&self.stored_hash_prefix);
    }
}

/// Serialises entries, sorting them as the format requires.
pub fn encode_index(entries: &mut [IndexEntry]) -> Vec<u8> {
    entries.sort_unstable_by_key(|e| (e.stream_id, e.seq));
    let mut out = Vec::with_capacity(entries.len() * INDEX_RECORD_LEN);
    for e in entries.iter() {
        e.encode_into(&mut out);
    }
    out
}

/// Parses an index payload and checks its shape: whole records, known stream frame types,
/// zero reserved bytes, strictly increasing (stream, seq). Stream-level density is checked
/// by the readers against STREAM_END.
pub fn parse_index(raw: &[u8], offset: u64) -> Result<Vec<IndexEntry>> {
    let bad = |d: String| Error::corrupt("index", offset, d);
    if raw.len() % INDEX_RECORD_LEN != 0 {
        return Err(bad(format!(
            "{} bytes is not a whole number of records",
            raw.len()
        )));
    }
    let mut entries = Vec::with_capacity(raw.len() / INDEX_RECORD_LEN);
    for (i, r) in raw.chunks_exact(INDEX_RECORD_LEN).enumerate() {
        let u32_at = |o: usize| u32::from_le_bytes(r[o..o + 4].try_into().expect("4 bytes"));
        let u64_at = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().expect("8 bytes"));
        let frame_type = match r[4] {
            0x01 => FrameType::StreamBegin,
            0x02 => FrameType::Data,
            0x03 => FrameType::StreamEnd,
            t => {
                return Err(bad(format!(
                    "record {i}: frame type {t:#04x} cannot be indexed"
                )));
            }
        };
        if r[5..8] != [0, 0, 0] {
            return Err(bad(format!("record {i}: reserved bytes are not zero")));
        }
        let e = IndexEntry {
            stream_id: u32_at(0),
            frame_type,
            seq: u64_at(8),
            file_offset: u64_at(16),
            stored_len: u32_at(24),
            raw_len: u32_at(28),
            raw_offset: u64_at(32),
            stored_hash_prefix: r[40..48].try_into().expect("8 bytes"),
        };
        if let Some(prev) = entries.last().map(|p: &IndexEntry| (p.stream_id, p.seq)) {
            if prev >= (e.stream_id, e.seq) {
                return Err(bad(format!("record {i} is out of order")));
            }
        }
        entries.push(e);
    }
    Ok(entries)
}

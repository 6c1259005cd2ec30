//! The MANIFEST frame payload (SPEC.md §9): JSON, so that tools and people can read it.
//!
//! The format owns `streams` (cross-checked against the index and STREAM_END frames by
//! every reader: redundant metadata must agree or the archive is refused). The engine owns
//! `app`: the PostgreSQL TOC, Redis source details, per-table checksums.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::stream::{StreamDescriptor, StreamEnd};

/// The archive manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// "1.0" for this version of SPEC.md.
    pub format_version: String,
    /// The program that wrote the archive.
    pub writer: String,
    /// When writing started (ms since the Unix epoch).
    pub created_unix_ms: u64,
    /// Every stream in the archive, by id.
    pub streams: Vec<StreamSummary>,
    /// Present in archives written by `salvage`: what was recovered from what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub salvage: Option<Vec<SalvagedStream>>,
    /// The engine's part: whatever the producer passed to `ArchiveWriter::finish`.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub app: serde_json::Value,
}

/// One stream as the manifest records it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Stream id.
    pub id: u32,
    /// The stream's descriptor (same as its STREAM_BEGIN payload).
    pub descriptor: StreamDescriptor,
    /// Number of DATA frames.
    pub data_frames: u64,
    /// Raw bytes of data.
    pub raw_len: u64,
    /// Stored bytes of the stream's frames, headers included.
    pub stored_len: u64,
    /// Hex of the STREAM_END digest.
    pub digest: String,
}

impl StreamSummary {
    /// Whether this summary agrees with a stream's END frame.
    pub fn agrees_with(&self, end: &StreamEnd) -> bool {
        self.data_frames == end.data_frames
            && self.raw_len == end.raw_len
            && self.digest == hex(&end.digest)
    }
}

/// What salvage found of one stream of the damaged input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SalvagedStream {
    /// Stream id in the salvaged archive.
    pub id: u32,
    /// Stream id in the damaged input.
    pub original_id: u32,
    /// `complete`, `truncated` (no valid end) or `holes` (frames missing in the middle).
    pub status: String,
    /// DATA frames recovered.
    pub recovered_frames: u64,
    /// Sequence numbers (in the input) of DATA frames that were lost.
    pub lost_seqs: Vec<u64>,
}

impl Manifest {
    pub(crate) fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }

    pub(crate) fn parse(raw: &[u8]) -> Result<Self> {
        let m: Manifest =
            serde_json::from_slice(raw).map_err(|e| Error::Manifest(e.to_string()))?;
        if !m.format_version.starts_with("1.") {
            return Err(Error::Manifest(format!(
                "format version {:?}",
                m.format_version
            )));
        }
        Ok(m)
    }
}

/// Lower-case hex, for digests in JSON.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

//! Streams: their descriptors (STREAM_BEGIN payload), summaries (STREAM_END payload) and
//! the per-stream bookkeeping that both writer and readers do (SPEC.md §7).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::frame::{FrameHeader, FrameType};

/// What a stream holds; the STREAM_BEGIN payload (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamDescriptor {
    /// Content kind, e.g. `pg.table_data`, `redis.rdb`. Meaningful to the engine.
    pub kind: String,
    /// Human-readable name, e.g. a qualified table name.
    pub name: String,
    /// Anything else the producer wants a reader to know before the data arrives.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
}

impl StreamDescriptor {
    /// A descriptor without metadata.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        StreamDescriptor {
            kind: kind.into(),
            name: name.into(),
            meta: serde_json::Value::Null,
        }
    }

    pub(crate) fn parse(raw: &[u8], stream: u32) -> Result<Self> {
        serde_json::from_slice(raw)
            .map_err(|e| Error::Manifest(format!("stream {stream} descriptor: {e}")))
    }
}

/// Bytes of the STREAM_END payload.
pub const STREAM_END_LEN: usize = 48;

/// The STREAM_END payload: how much the stream held, and a digest over its frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamEnd {
    /// Number of DATA frames.
    pub data_frames: u64,
    /// Total raw bytes of the DATA frames.
    pub raw_len: u64,
    /// BLAKE3 over the concatenated raw hashes of the DATA frames, in order.
    pub digest: [u8; 32],
}

impl StreamEnd {
    /// The 48-byte payload.
    pub fn encode(&self) -> [u8; STREAM_END_LEN] {
        let mut b = [0u8; STREAM_END_LEN];
        b[..8].copy_from_slice(&self.data_frames.to_le_bytes());
        b[8..16].copy_from_slice(&self.raw_len.to_le_bytes());
        b[16..].copy_from_slice(&self.digest);
        b
    }

    /// Parses the payload.
    pub fn parse(raw: &[u8], stream: u32, offset: u64) -> Result<Self> {
        if raw.len() != STREAM_END_LEN {
            return Err(Error::corrupt(
                "stream end",
                offset,
                format!(
                    "stream {stream}: payload of {} bytes, expected {STREAM_END_LEN}",
                    raw.len()
                ),
            ));
        }
        Ok(StreamEnd {
            data_frames: u64::from_le_bytes(raw[..8].try_into().expect("8 bytes")),
            raw_len: u64::from_le_bytes(raw[8..16].try_into().expect("8 bytes")),
            digest: raw[16..].try_into().expect("32 bytes"),
        })
    }
}

/// Tracks one stream's frames in order and checks the SPEC.md §7 invariants: BEGIN at seq
/// 0, DATA at dense seqs with a contiguous raw-offset chain, END last and agreeing.
#[derive(Clone, Debug)]
pub(crate) struct StreamTally {
    next_seq: u64,
    raw_len: u64,
    data_frames: u64,
    digest: blake3::Hasher,
    ended: bool,
}

impl StreamTally {
    pub(crate) fn new() -> Self {
        StreamTally {
            next_seq: 0,
            raw_len: 0,
            data_frames: 0,
            digest: blake3::Hasher::new(),
            ended: false,
        }
    }

    /// Checks that `h` is the next frame of this stream and accounts for it.
    pub(crate) fn accept(&mut self, h: &FrameHeader) -> std::result::Result<(), String> {
        if self.ended {
            return Err(format!("frame seq {} after the stream's end", h.seq));
        }
        if h.seq != self.next_seq {
            return Err(format!(
                "seq {} where {} was expected",
                h.seq, self.next_seq
            ));
        }
        let expect_type = matches!(
            (h.seq, h.frame_type),
            (0, FrameType::StreamBegin) | (1.., FrameType::Data | FrameType::StreamEnd)
        );
        if !expect_type {
            return Err(format!("{:?} frame at seq {}", h.frame_type, h.seq));
        }
        let last_expected = h.frame_type == FrameType::StreamEnd;
        if h.last() != last_expected {
            return Err(format!("last-frame flag wrong on seq {}", h.seq));
        }
        let expect_offset = if h.frame_type == FrameType::StreamBegin {
            0
        } else {
            self.raw_len
        };
        if h.raw_offset != expect_offset {
            return Err(format!(
                "raw offset {} where {expect_offset} was expected",
                h.raw_offset
            ));
        }
        if h.frame_type == FrameType::Data {
            if h.raw_len == 0 {
                return Err(format!("empty data frame at seq {}", h.seq));
            }
            self.raw_len += u64::from(h.raw_len);
            self.data_frames += 1;
            self.digest.update(&h.raw_hash);
        }
        self.ended = last_expected;
        self.next_seq += 1;
        Ok(())
    }

    /// The summary this stream's END frame must carry.
    pub(crate) fn summary(&self) -> StreamEnd {
        StreamEnd {
            data_frames: self.data_frames,
            raw_len: self.raw_len,
            digest: *self.digest.finalize().as_bytes(),
        }
    }

    pub(crate) fn ended(&self) -> bool {
        self.ended
    }

    /// Frames seen so far (the next expected seq).
    pub(crate) fn frames_seen(&self) -> u64 {
        self.next_seq
    }
}

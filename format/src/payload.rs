//! The per-frame payload pipeline (SPEC.md §5): raw → zstd (or stored) → AEAD → stored, and
//! back, with every check in the order SPEC.md §8.1 gives.

use std::cell::RefCell;

use chacha20poly1305::ChaCha20Poly1305;

use crate::crypto::{self, ArchiveKeys};
use crate::error::{Error, Result};
use crate::frame::{Codec, FLAG_ENCRYPTED, FLAG_LAST, FrameHeader, FrameType};
use crate::limits;

/// A frame ready to be appended: its header and stored payload.
#[derive(Debug)]
pub struct SealedFrame {
    /// The frame header (its CRC is computed when encoded).
    pub header: FrameHeader,
    /// Stored payload bytes.
    pub payload: Vec<u8>,
}

/// Seals frames of one stream. Owned by one producer thread: it keeps that thread's zstd
/// context and the stream's cipher so neither is rebuilt per frame.
pub(crate) struct FrameSealer {
    stream_id: u32,
    archive_id: [u8; 16],
    compressor: zstd::bulk::Compressor<'static>,
    crypto: Option<(ChaCha20Poly1305, blake3::Hasher)>,
}

impl FrameSealer {
    pub(crate) fn new(
        stream_id: u32,
        archive_id: [u8; 16],
        zstd_level: i32,
        keys: Option<&ArchiveKeys>,
    ) -> Result<Self> {
        let compressor = zstd::bulk::Compressor::new(zstd_level)
            .map_err(|e| Error::Usage(format!("zstd level {zstd_level}: {e}")))?;
        Ok(FrameSealer {
            stream_id,
            archive_id,
            compressor,
            crypto: keys.map(|k| (k.stream_cipher(stream_id), k.raw_hasher())),
        })
    }

    /// Compresses, hashes and (when the archive is encrypted) seals one frame.
    pub(crate) fn seal(
        &mut self,
        frame_type: FrameType,
        seq: u64,
        raw_offset: u64,
        last: bool,
        raw: &[u8],
    ) -> Result<SealedFrame> {
        let raw_len = u32::try_from(raw.len())
            .ok()
            .filter(|&n| n <= limits::MAX_META_RAW)
            .ok_or_else(|| Error::Usage(format!("frame of {} bytes is too large", raw.len())))?;
        let raw_hash = match &self.crypto {
            Some((_, keyed)) => *keyed.clone().update(raw).finalize().as_bytes(),
            None => *blake3::hash(raw).as_bytes(),
        };
        let compressed = self
            .compressor
            .compress(raw)
            .map_err(|e| Error::Usage(format!("zstd compression failed: {e}")))?;
        let (codec, mut payload) = if compressed.len() < raw.len() {
            // zstd sized the buffer for the worst case (the whole raw frame); a frame
            // waiting in the writer's queue should hold only what it stores
            let mut c = compressed;
            if c.capacity() > 2 * c.len() + crate::crypto::TAG_LEN {
                c.shrink_to(c.len() + crate::crypto::TAG_LEN);
            }
            (Codec::Zstd, c)
        } else {
            (Codec::Stored, raw.to_vec())
        };
        let mut flags = if last { FLAG_LAST } else { 0 };
        let tag = if self.crypto.is_some() {
            flags |= FLAG_ENCRYPTED;
            crypto::TAG_LEN
        } else {
            0
        };
        let mut header = FrameHeader {
            frame_type,
            flags,
            codec,
            stream_id: self.stream_id,
            seq,
            raw_offset,
            stored_len: u32::try_from(payload.len() + tag).expect("bounded by compress_bound"),
            raw_len,
            stored_hash: [0; 32],
            raw_hash,
        };
        if let Some((cipher, _)) = &self.crypto {
            let aad = crypto::frame_aad(&self.archive_id, &header.aad_prefix(), &raw_hash);
            crypto::seal(cipher, &crypto::frame_nonce(seq, last), &aad, &mut payload)?;
        }
        header.stored_hash = *blake3::hash(&payload).as_bytes();
        Ok(SealedFrame { header, payload })
    }
}

/// How far `open_payload` can check a frame.
pub(crate) enum Opened {
    /// Every check passed; the raw bytes.
    Raw(Vec<u8>),
    /// The stored hash matched, but the frame is encrypted and no key was given.
    StoredHashOnly,
}

/// Checks and decodes a frame payload (SPEC.md §8.1 steps 3–6). `keys` is `None` for a
/// plain archive, or for a key-less scrub of an encrypted one.
pub(crate) fn open_payload(
    header: &FrameHeader,
    stored: &[u8],
    offset: u64,
    archive_id: &[u8; 16],
    archive_encrypted: bool,
    keys: Option<&ArchiveKeys>,
) -> Result<Opened> {
    let damaged = |detail: &str| Error::DamagedFrame {
        stream: header.stream_id,
        seq: header.seq,
        offset,
        detail: detail.to_string(),
    };
    if stored.len() != header.stored_len as usize {
        return Err(damaged("payload cut short"));
    }
    if header.encrypted() != archive_encrypted {
        // A plain frame in an encrypted archive would bypass authentication: refuse it.
        return Err(damaged("encryption flag disagrees with the archive header"));
    }
    if *blake3::hash(stored).as_bytes() != header.stored_hash {
        return Err(damaged("stored-bytes BLAKE3 mismatch"));
    }
    let plain;
    let compressed: &[u8] = if header.encrypted() {
        let Some(keys) = keys else {
            return Ok(Opened::StoredHashOnly);
        };
        let aad = crypto::frame_aad(archive_id, &header.aad_prefix(), &header.raw_hash);
        let nonce = crypto::frame_nonce(header.seq, header.last());
        plain = crypto::open(&keys.stream_cipher(header.stream_id), &nonce, &aad, stored)
            .ok_or_else(|| damaged("authentication failed (tampered, or moved from elsewhere)"))?;
        &plain
    } else {
        stored
    };
    let raw = match header.codec {
        Codec::Stored => compressed.to_vec(),
        Codec::Zstd => decompress(compressed, header.raw_len).map_err(|d| damaged(&d))?,
    };
    let raw_hash = match keys {
        Some(k) if header.encrypted() => *k.raw_hasher().update(&raw).finalize().as_bytes(),
        _ => *blake3::hash(&raw).as_bytes(),
    };
    if raw_hash != header.raw_hash {
        return Err(damaged("raw-bytes hash mismatch after decoding"));
    }
    Ok(Opened::Raw(raw))
}

thread_local! {
    /// One zstd decompression context per thread: creating one per frame costs more than
    /// decoding a small frame.
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// Decodes one zstd frame into a buffer of exactly `raw_len` bytes; anything else is an
/// error (a decoder never writes past what the header promised).
fn decompress(src: &[u8], raw_len: u32) -> std::result::Result<Vec<u8>, String> {
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut d = zstd::bulk::Decompressor::new().map_err(|e| e.to_string())?;
            d.window_log_max(limits::ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| e.to_string())?;
            *slot = Some(d);
        }
        let d = slot.as_mut().expect("just set");
        let mut out = Vec::with_capacity(raw_len as usize);
        let n = d
            .decompress_to_buffer(src, &mut out)
            .map_err(|e| format!("zstd decoding failed: {e}"))?;
        if n != raw_len as usize {
            return Err(format!("zstd produced {n} bytes, header says {raw_len}"));
        }
        Ok(out)
    })
}

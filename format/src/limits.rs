//! Limits a reader enforces before it allocates or hashes (SPEC.md §9).
//!
//! Length fields are untrusted input: every one is checked against these before it is used
//! to size a buffer, so a hostile archive cannot make a reader allocate more than a frame's
//! worth of memory.

/// Largest raw (uncompressed) length of a stream frame (STREAM_BEGIN, DATA, STREAM_END).
pub const MAX_FRAME_RAW: u32 = 64 << 20;
/// Largest raw length of a MANIFEST or INDEX frame. An INDEX frame is further held to
/// exactly 48 bytes per frame that precedes it (so by the file size).
pub const MAX_META_RAW: u32 = 256 << 20;
/// Largest TLV extension area of the file header.
pub const MAX_HEADER_TLV: u32 = 64 << 10;
/// Largest Argon2id memory cost (KiB) a reader accepts from a key slot.
pub const MAX_ARGON2_M_KIB: u32 = 1 << 20;
/// Largest Argon2id time cost a reader accepts.
pub const MAX_ARGON2_T: u32 = 16;
/// Largest Argon2id parallelism a reader accepts.
pub const MAX_ARGON2_P: u32 = 16;
/// zstd window log a decoder accepts: frames are at most 64 MiB, so 2^27 is ample.
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;
/// Default raw frame size producers are expected to cut at.
pub const DEFAULT_FRAME_SIZE: usize = 4 << 20;

/// Upper bound of the stored length of a frame whose raw length is `raw_len` (zstd's
/// worst-case expansion plus an AEAD tag). Used to reject impossible sizes early.
pub fn max_stored_len(raw_len: u32) -> u64 {
    zstd::zstd_safe::compress_bound(raw_len as usize) as u64 + crate::crypto::TAG_LEN as u64
}

//! Redis: the replica handshake, the streaming RDB parser and its decoders.
//!
//! * Blob decoders and checksums, pure functions over `&[u8]` that never panic and bound
//!   every allocation by the bytes they are given: [`crc64`], [`lzf`], [`intset`],
//!   [`ziplist`], [`listpack`], [`zipmap`].
//! * [`rdb`]: the incremental RDB parser ([`rdb::RdbParser`]), fed bytes as they arrive,
//!   emitting events with each key's raw value bytes in bounded chunks; and the logical
//!   decoder ([`rdb::decode_value`]) from raw value bytes to a [`rdb::Value`].
//! * [`replica`]: joining a master as a replica and receiving its RDB off the wire.
//! * [`dump`]: the dump pipeline from a live server into an archive, and the record layout
//!   of the archive's Redis streams ([`record`]).
//! * [`archive`]: reading such an archive back key by key; [`restore`]: into a live server
//!   (pipelined `RESTORE`, or type commands); [`rdbfile`]: as a `dump.rdb`, of the
//!   archive's RDB version or, with values [`reencode`]d, an older one; [`export`]: as
//!   JSON Lines. [`conn`]: the blocking client connection restores use; [`tls`]: TLS for
//!   both (`rediss://`).
//! * [`elements`]: values decoded element by element as their pieces arrive (restores of
//!   big values, and their logical digests for restore tests).
//! * [`fuzzing`]: entry points for the fuzz targets.

pub mod archive;
pub mod conn;
pub mod crc64;
pub mod dump;
pub mod elements;
pub mod export;
pub mod fuzzing;
pub mod intset;
pub mod listpack;
pub mod lzf;
pub mod rdb;
pub mod rdbfile;
pub mod record;
pub mod reencode;
pub mod replica;
pub mod restore;
pub mod tls;
pub mod ziplist;
pub mod zipmap;

pub use dump::{DbSummary, Progress, RedisDumpOptions, RedisDumpSummary, dump};
pub use replica::ReplicaOptions;
pub use restore::{RedisRestoreOptions, RedisRestoreSummary, RestoreProgress, restore};

use crate::error::{Error, ErrorKind};

/// One element of a ziplist or listpack: a byte string or an integer (which Redis turns
/// into its decimal text whenever it is used as a member, field or value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Element<'a> {
    /// A byte string, borrowed from the blob.
    Bytes(&'a [u8]),
    /// An integer encoding.
    Int(i64),
}

impl Element<'_> {
    /// The element as bytes: integers become their decimal text.
    pub fn to_vec(&self) -> Vec<u8> {
        match self {
            Element::Bytes(b) => b.to_vec(),
            Element::Int(i) => i.to_string().into_bytes(),
        }
    }

    /// The element as an integer: an integer encoding, or a string that is a canonical
    /// decimal integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Element::Int(i) => Some(*i),
            Element::Bytes(b) => std::str::from_utf8(b).ok()?.parse().ok(),
        }
    }
}

/// A `Corrupt` error for `what` (e.g. "ziplist") at byte `offset` of it.
pub(crate) fn corrupt(what: &str, offset: usize, message: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("corrupt {what} at byte {offset}: {message}"),
    )
}

/// Reads `N` bytes at `at`, or fails as corrupt `what`.
pub(crate) fn take<const N: usize>(blob: &[u8], at: usize, what: &str) -> crate::Result<[u8; N]> {
    blob.get(at..)
        .and_then(|rest| rest.get(..N))
        .map(|b| b.try_into().expect("N bytes"))
        .ok_or_else(|| {
            corrupt(
                what,
                at,
                format!("{N} bytes needed, {} left", blob.len().saturating_sub(at)),
            )
        })
}

/// `len` bytes at `at`, or fails as corrupt `what`.
pub(crate) fn slice<'a>(
    blob: &'a [u8],
    at: usize,
    len: usize,
    what: &str,
) -> crate::Result<&'a [u8]> {
    at.checked_add(len)
        .and_then(|end| blob.get(at..end))
        .ok_or_else(|| {
            corrupt(
                what,
                at,
                format!("{len} bytes needed, {} left", blob.len().saturating_sub(at)),
            )
        })
}

/// A big-endian u32. The RDB format is little-endian except in a few places its spec
/// fixes as big-endian (32/64-bit lengths, ziplist 32-bit string lengths, stream ids);
/// the workspace lint against big-endian reads is lifted here, and only here.
#[allow(
    clippy::big_endian_bytes,
    reason = "the RDB format mandates big-endian here"
)]
pub(crate) fn be_u32(b: [u8; 4]) -> u32 {
    u32::from_be_bytes(b)
}

/// A big-endian u64; see [`be_u32`].
#[allow(
    clippy::big_endian_bytes,
    reason = "the RDB format mandates big-endian here"
)]
pub(crate) fn be_u64(b: [u8; 8]) -> u64 {
    u64::from_be_bytes(b)
}

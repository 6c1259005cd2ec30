//! The coffer archive format: bytes only, no database code, no async.
//!
//! SPEC.md at the workspace root is the normative description; this crate implements it.
//!
//! # Brief overview
//!
//! An archive is a file header, then frames interleaved from many *streams* (one per table,
//! schema section or Redis database), then a manifest, an index and a trailer. Every frame
//! is independently compressed (zstd), hashed (BLAKE3, before and after compression) and,
//! when the archive is encrypted, sealed with ChaCha20-Poly1305 under a key that depends
//! only on its stream and sequence number.
//!
//! * Writing: [`ArchiveWriter`] hands out [`StreamWriter`]s to producer threads; each seals
//!   its own frames and sends them through a bounded channel to one appender thread.
//! * Reading front to back (a pipe): [`StreamReader`] yields [`Event`]s and checks
//!   everything, without an index.
//! * Reading at random (a file): [`MappedArchive`] maps the file, reads the index and hands
//!   out frames, in parallel with [`MappedArchive::par_map`].
//! * Checking: [`verify`] reports every problem with its stream, sequence and offset;
//!   [`salvage`] writes a new sealed archive of whatever is intact.

#![deny(missing_docs)]

mod crypto;
mod error;
mod frame;
pub mod fuzzing;
mod header;
mod index;
pub mod limits;
mod manifest;
mod mapped;
mod payload;
mod salvage;
mod scan;
mod stream;
mod stream_reader;
mod trailer;
mod verify;
mod writer;

pub use crypto::{KdfParams, KeySource};
pub use error::{Error, Result};
pub use frame::{FRAME_HEADER_LEN, FrameType};
pub use header::FileHeader;
pub use index::IndexEntry;
pub use manifest::{Manifest, SalvagedStream, StreamSummary, hex};
pub use mapped::{MappedArchive, StreamInfo};
pub use salvage::{SalvageReport, salvage};
pub use stream::{StreamDescriptor, StreamEnd};
pub use stream_reader::{Event, StreamReader};
pub use verify::{Problem, StreamStatus, VerifyReport, verify, verify_bytes};
pub use writer::{ArchiveWriter, StreamWriter, WriteSummary, WriterOptions};

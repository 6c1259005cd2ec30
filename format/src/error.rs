//! The one error type of the format crate.
//!
//! Every variant that concerns a place in an archive says where: the byte offset, and the
//! stream and sequence number when the damage is inside a frame. That is what lets
//! `coffer verify` name each damaged frame instead of saying "corrupt".

use std::io;

/// Convenient alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while writing, reading, verifying or salvaging an archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An I/O error, with what was being done when it happened.
    #[error("{context}: {source}")]
    Io {
        /// What coffer was doing ("writing archive /x/y.partial", …).
        context: String,
        /// The operating system's error.
        #[source]
        source: io::Error,
        /// True when writing the output failed (the archive being written), false when
        /// reading the input did: callers report the two differently.
        output: bool,
    },
    /// The file does not start with the coffer magic: not an archive at all.
    #[error("not a coffer archive (bad magic at offset 0)")]
    NotAnArchive,
    /// A format major version this reader does not know.
    #[error("unsupported archive format version {major}.{minor} (this build reads 1.x)")]
    UnsupportedVersion {
        /// Major version found in the file header.
        major: u16,
        /// Minor version found in the file header.
        minor: u16,
    },
    /// Required feature bits, a critical TLV entry or a cipher suite this reader does not know.
    #[error("archive needs a feature this build does not have: {what}")]
    UnsupportedFeature {
        /// Human description of the feature (bits, TLV type, suite number).
        what: String,
    },
    /// A structure failed its own consistency check (header hash, header CRC, trailer check,
    /// a field that must be zero, a length outside the file…).
    #[error("corrupt {what} at offset {offset}: {detail}")]
    Corrupt {
        /// Which structure ("file header", "frame header", "trailer", "index", …).
        what: &'static str,
        /// Byte offset of the structure in the archive.
        offset: u64,
        /// What exactly is wrong.
        detail: String,
    },
    /// A frame's payload failed a check: stored hash, authentication, decompression or raw
    /// hash.
    #[error("damaged frame: stream {stream} seq {seq} at offset {offset}: {detail}")]
    DamagedFrame {
        /// Stream id from the frame header.
        stream: u32,
        /// Sequence number from the frame header.
        seq: u64,
        /// Byte offset of the frame header.
        offset: u64,
        /// Which check failed.
        detail: String,
    },
    /// A length field asks for more than the format allows. Checked before allocating.
    #[error("{what} at offset {offset} is {value}, above the limit of {max}")]
    LimitExceeded {
        /// Which field.
        what: &'static str,
        /// Byte offset of the structure holding it.
        offset: u64,
        /// The value found.
        value: u64,
        /// The largest value allowed.
        max: u64,
    },
    /// The archive ends before it is sealed.
    #[error("archive is truncated: {detail}")]
    Truncated {
        /// Where and how the data ends.
        detail: String,
    },
    /// The archive is encrypted and no key was given.
    #[error("archive is encrypted: give a passphrase or key file")]
    KeyRequired,
    /// No key slot opens with the key given.
    #[error("wrong passphrase or key file: no key slot of this archive opens with it")]
    WrongKey,
    /// A key file that cannot be used.
    #[error("unusable key file: {0}")]
    BadKeyFile(String),
    /// The archive writer stopped (an earlier I/O error, or it was finished); the cause is
    /// returned by `ArchiveWriter::finish`.
    #[error("archive writer has stopped; see the error returned when finishing it")]
    WriterClosed,
    /// A caller broke an API contract (stream finished twice, empty frame, …).
    #[error("invalid use of the archive writer: {0}")]
    Usage(String),
    /// The manifest is not valid JSON of the expected shape.
    #[error("manifest: {0}")]
    Manifest(String),
}

impl Error {
    /// Wraps an I/O error with what was being done.
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
            output: false,
        }
    }

    /// Wraps an I/O error met while writing an archive.
    pub(crate) fn io_output(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
            output: true,
        }
    }

    pub(crate) fn corrupt(what: &'static str, offset: u64, detail: impl Into<String>) -> Self {
        Error::Corrupt {
            what,
            offset,
            detail: detail.into(),
        }
    }
}

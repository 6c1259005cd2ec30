//! coffer's engine: PostgreSQL and Redis sources and sinks, and the dump and restore
//! pipelines that connect them to the archive format (`coffer-format`).
//!
//! * [`pg`]: connecting like libpq, one consistent snapshot, schema from the catalogs,
//!   parallel COPY streaming into archive frames cut on row boundaries.
//! * [`redis`]: the replica handshake, the streaming RDB parser and its decoders, and
//!   restore through RESTORE or type commands.
//!
//! The engine never prints: progress is reported as events, and errors carry what the
//! CLI needs to say and which exit code applies.

pub mod client_cert;
pub mod error;
pub mod pg;
pub mod redis;

pub use error::{Error, ErrorKind, Result};

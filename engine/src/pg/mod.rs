//! PostgreSQL: connecting like libpq, one consistent snapshot, the schema read from the
//! catalogs into a TOC, COPY streaming into archive frames, and rendering an archive as a
//! plain SQL script.

pub mod catalog;
pub mod check;
pub mod conn;
pub mod content;
pub mod copy_out;
pub mod dump;
pub mod restore;
mod restore_sched;
pub mod restore_stream;
pub mod session;
pub mod sql;
pub mod tls;
pub mod toc;

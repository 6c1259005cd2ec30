//! The comparison harness behind `cargo run --release -p coffer-benches --bin compare`:
//! builds a dataset on a throwaway PostgreSQL server and runs coffer beside `pg_dump` and
//! the COPY floor, round after round, measuring each run as a child process. See
//! `benches/README.md` for what the rows mean and the caveats.

pub mod common;
pub mod dataset;
pub mod measure;
pub mod redis;
pub mod report;
pub mod tools;

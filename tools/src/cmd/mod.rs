//! One module per subcommand.

pub mod backup;
pub mod config;
pub mod demo;
pub mod list;
pub mod ops;
pub mod output;
pub mod pg;
pub mod prune;
pub mod redis;
pub mod restore_test;
pub mod salvage;
pub mod schedule;
pub mod status;
pub mod verify;

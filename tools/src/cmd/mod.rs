//! One module per subcommand.

pub mod config;
pub mod demo;
pub mod list;
pub mod output;
pub mod pg;
pub mod redis;
pub mod restore_test;
pub mod salvage;
pub mod verify;

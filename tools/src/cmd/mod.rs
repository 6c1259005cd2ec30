//! One module per subcommand.

pub mod demo;
pub mod list;
pub mod pg;
pub mod salvage;
pub mod verify;

//! One module per subcommand.

pub mod demo;
pub mod list;
pub mod salvage;
pub mod verify;

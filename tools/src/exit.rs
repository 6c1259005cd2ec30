//! Exit codes: part of coffer's interface, so that scripts and monitoring can tell a
//! damaged archive from a typo or a wrong key. `coffer --help` lists them; keep it true.

use std::process::ExitCode;

/// Success: the command did everything it was asked, and found nothing wrong.
pub const OK: u8 = 0;
/// The command ran, and found damage (verify), or could recover only part (salvage).
pub const DAMAGED: u8 = 1;
/// Bad command line (clap's own code for usage errors).
pub const USAGE: u8 = 2;
/// The input cannot be used: missing, unreadable, not an archive, unsealed where a sealed
/// archive is needed, or from an unsupported format version.
pub const BAD_INPUT: u8 = 3;
/// The archive is encrypted and no key was given, or the key is wrong.
pub const KEY: u8 = 4;
/// Writing the output failed (disk full, permission denied…); nothing was published.
pub const OUTPUT: u8 = 5;
/// Cannot connect to the database: unreachable, wrong password, no such database.
pub const CONNECT: u8 = 6;
/// The database refused or broke off the work: permission denied, a conflicting lock, DDL
/// during the dump, the server going away mid-way.
pub const DATABASE: u8 = 7;
/// Another `coffer backup` or `prune` is running on the same BACKUP_DIR.
pub const BUSY: u8 = 8;

/// The help text's table of exit codes.
pub const HELP: &str = "\
Exit codes:
  0  success, nothing wrong
  1  damage found (verify), or only part recovered (salvage)
  2  bad command line
  3  input unusable: missing, unreadable, not an archive, unsealed, unsupported version
  4  archive encrypted and no key given, or the key is wrong
  5  writing the output failed (disk full, permissions); nothing was published
  6  cannot connect to the database: unreachable, wrong password, no such database
  7  the database refused or broke off the work: permission denied, lock conflict,
     DDL during the dump, server gone mid-way
  8  another coffer backup or prune is running on the same BACKUP_DIR";

pub fn code(c: u8) -> ExitCode {
    ExitCode::from(c)
}

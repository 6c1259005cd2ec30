//! Helpers shared by the `coffer` binary's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `coffer` binary with a clean environment: no `PG*` variables and no
/// `COFFER_PASSPHRASE` from the developer's shell leak into a test.
pub fn coffer_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("COFFER_PASSPHRASE").stdin(Stdio::null());
    cmd
}

/// Runs `coffer` with `args` and returns what it did.
pub fn coffer(args: &[&str]) -> Output {
    coffer_command().args(args).output().expect("run coffer")
}

/// Everything a command printed, for assertion messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

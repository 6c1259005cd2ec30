//! Helpers shared by the `coffer` binary's integration tests.

#![allow(dead_code)] // each test binary uses a different subset

pub mod pg;

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The `coffer` binary with a clean environment: no `PG*` variables, no
/// `COFFER_PASSPHRASE` and no Redis TLS files from the developer's shell leak into a test.
pub fn coffer_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (name, _) in std::env::vars_os() {
        if name.as_encoded_bytes().starts_with(b"PG") {
            cmd.env_remove(name);
        }
    }
    cmd.env_remove("COFFER_PASSPHRASE")
        .env_remove("COFFER_PASSPHRASE_FILE")
        .env_remove("COFFER_KEY_FILE")
        .env_remove("COFFER_REDIS_CACERT")
        .env_remove("COFFER_REDIS_CERT")
        .env_remove("COFFER_REDIS_KEY")
        .stdin(Stdio::null());
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

/// A local HTTP server that records each POST body and answers with the given statuses
/// in turn (200 once they run out).
pub fn webhook(statuses: Vec<u16>) -> (String, std::sync::mpsc::Receiver<serde_json::Value>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", server.server_addr().to_ip().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            req.as_reader().read_to_string(&mut body).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
            let _ = tx.send(v);
            let code = statuses.next().unwrap_or(200);
            let _ = req.respond(tiny_http::Response::empty(code));
        }
    });
    (url, rx)
}

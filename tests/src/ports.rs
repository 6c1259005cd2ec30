use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::{Mutex, PoisonError};

use crate::HarnessError;

/// Ports this process already handed out. The kernel may return a port again
/// as soon as our probe listener closes, and tests run in parallel threads;
/// remembering them keeps two servers of one test binary from racing for the
/// same port. Collisions with other processes are handled by the callers,
/// which retry on a new port when the server reports "address in use".
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A loopback TCP port that was free a moment ago and that this process has
/// not handed out before.
pub fn free_port() -> Result<u16, HarnessError> {
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(HarnessError::io("binding 127.0.0.1:0 to find a free port"))?;
        let port = listener
            .local_addr()
            .map_err(HarnessError::io("reading the probe listener's port"))?
            .port();
        let mut handed_out = HANDED_OUT.lock().unwrap_or_else(PoisonError::into_inner);
        if handed_out.insert(port) {
            return Ok(port);
        }
    }
    Err(HarnessError::Io {
        context: "finding a free port".into(),
        source: std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "the kernel kept returning ports this process already uses",
        ),
    })
}

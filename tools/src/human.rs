//! Human-readable sizes and rates for reports.

/// `1.5 MiB`-style size.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Hex of the first bytes of an id, for display.
pub fn short_hex(hex: &str) -> &str {
    &hex[..hex.len().min(16)]
}

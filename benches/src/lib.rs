//! Shared helpers for the benchmarks: test data that looks like what coffer really archives,
//! the *floors* each benchmark is compared with, and the coffer side of each comparison.
//!
//! A floor is the work the format cannot avoid, done with nothing but the libraries it is
//! built on, on the same bytes and the same number of threads: for writing, zstd compression
//! of each frame plus BLAKE3 of its raw and of its stored bytes; for verifying, BLAKE3 of each
//! stored frame, zstd decompression and BLAKE3 of the result. Whatever coffer spends beyond
//! the floor (framing, channels, the appender, copies, file I/O) is its own overhead, and the
//! targets (README.md) bound it: coffer should run at ≥ 85 % of its floor's rate.

use std::cell::RefCell;
use std::hint::black_box;
use std::io::Write;
use std::ops::Range;
use std::path::Path;

use coffer_format::{
    ArchiveWriter, FRAME_HEADER_LEN, MappedArchive, StreamDescriptor, WriteSummary, WriterOptions,
};
use rayon::prelude::*;

pub mod compare;

// ---------------------------------------------------------------------------------------------
// Deterministic data
// ---------------------------------------------------------------------------------------------

/// SplitMix64 (Steele, Lea & Flood 2014): a tiny, fast, seeded PRNG. It is written out here
/// rather than taken from `rand` so the benchmark data is the same on every machine and every
/// `rand` release, without a dependency; its statistical quality is far more than data
/// generation needs.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0), by multiply-shift (Lemire); the bias is far below
    /// anything that matters here.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// True with probability `percent` / 100.
    pub fn percent(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One element of `items`, uniformly.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

// Vocabularies the rows pick from; a repeated entry is picked more often, as in real tables.
#[rustfmt::skip]
const STATUSES: [&str; 6] = [
    "delivered", "delivered", "shipped", "paid", "pending", "cancelled",
];
#[rustfmt::skip]
const CURRENCIES: [&str; 6] = [
    "USD", "USD", "USD", "EUR", "EUR", "GBP",
];
#[rustfmt::skip]
const SIZES: [&str; 6] = [
    "XS", "S", "M", "L", "XL", "XXL",
];
#[rustfmt::skip]
const FIRST: [&str; 24] = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "david",
    "elizabeth", "william", "barbara", "sofia", "lucas", "emma", "noah", "olivia", "liam",
    "mia", "yuki", "chen", "amara", "ivan", "fatima",
];
#[rustfmt::skip]
const LAST: [&str; 24] = [
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "tanaka", "kowalski", "okafor",
];
#[rustfmt::skip]
const DOMAINS: [&str; 6] = [
    "example.com", "mail.example.org", "corp.example.net", "example.co.uk", "inbox.example.io",
    "example.de",
];
#[rustfmt::skip]
const WORDS: [&str; 64] = [
    "the", "customer", "asked", "for", "delivery", "before", "noon", "please", "leave",
    "parcel", "at", "front", "door", "gift", "wrap", "with", "card", "reading", "happy",
    "birthday", "replacement", "order", "previous", "item", "arrived", "damaged", "refund",
    "issued", "via", "original", "payment", "method", "contact", "support", "if", "not",
    "received", "within", "five", "business", "days", "warehouse", "note", "fragile", "handle",
    "care", "backorder", "expected", "next", "week", "and", "a", "to", "of", "on", "in", "is",
    "was", "by", "address", "updated", "phone", "call", "signature",
];

/// Writes to a `Vec`, which cannot fail.
fn put(out: &mut Vec<u8>, args: std::fmt::Arguments<'_>) {
    out.write_fmt(args).expect("writing to a Vec cannot fail");
}

/// Rows as `COPY public.orders TO STDOUT` (text format) prints them, for a plausible orders
/// table: a sequential bigint id, a customer id, a status word, a `timestamptz` with
/// microseconds, a `numeric(10,2)` amount, a quantity, a currency code, a boolean, a SKU, an
/// e-mail address, and a free-text note that is usually `\N` and sometimes a sentence (with
/// the occasional COPY-escaped tab or newline).
///
/// Why this shape: what coffer compresses and hashes is overwhelmingly PostgreSQL COPY output,
/// and both zstd's speed and its ratio depend on the data. Random bytes would not compress
/// (zstd falls back to storing them and runs far faster than on real data); a repeated
/// pattern would compress absurdly well. Rows like these compress about 3–6× with zstd -1,
/// as real table data does, so the measured rates are the ones users will see.
#[derive(Clone, Debug)]
pub struct CopyRows {
    rng: SplitMix64,
    id: u64,
    /// Microseconds since the Unix epoch of the last row's `created_at`.
    ts_us: i64,
}

impl CopyRows {
    /// Rows fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        CopyRows {
            rng: SplitMix64::new(seed),
            id: 1_000_000,
            ts_us: 1_704_067_200_000_000, // 2024-01-01 00:00:00 UTC
        }
    }

    /// Appends the next row, newline included.
    pub fn push_row(&mut self, out: &mut Vec<u8>) {
        let r = &mut self.rng;
        self.id += 1 + u64::from(r.percent(3)); // the odd gap from a rolled-back insert
        self.ts_us += r.below(4_000_000) as i64;
        let customer = 1 + r.below(40_000);
        let status = r.pick(&STATUSES);
        let cents = 50 + r.below(2_000) * (1 + r.below(50));
        let quantity = if r.percent(80) {
            1 + r.below(4)
        } else {
            1 + r.below(50)
        };
        let currency = r.pick(&CURRENCIES);
        let gift = if r.percent(10) { 't' } else { 'f' };
        let product = 10_000 + r.below(5_000);
        let size = r.pick(&SIZES);
        let first = r.pick(&FIRST);
        let last = r.pick(&LAST);
        let n = r.below(100);
        let domain = r.pick(&DOMAINS);
        put(out, format_args!("{}\t{customer}\t{status}\t", self.id));
        push_timestamp(out, self.ts_us);
        put(
            out,
            format_args!(
                "\t{}.{:02}\t{quantity}\t{currency}\t{gift}\tSKU-{product}-{size}\t\
                 {first}.{last}{n}@{domain}\t",
                cents / 100,
                cents % 100
            ),
        );
        if r.percent(20) {
            let words = 4 + r.below(36);
            for i in 0..words {
                if i > 0 {
                    // COPY text escapes tabs and newlines inside values.
                    out.extend_from_slice(match r.below(200) {
                        0 => b"\\n",
                        1 => b"\\t",
                        _ => b" ",
                    });
                }
                out.extend_from_slice(r.pick(&WORDS).as_bytes());
            }
        } else {
            out.extend_from_slice(b"\\N");
        }
        out.push(b'\n');
    }
}

/// Appends a `timestamptz` as PostgreSQL prints it in UTC: `2024-03-15 12:34:56.123456+00`.
fn push_timestamp(out: &mut Vec<u8>, unix_us: i64) {
    let secs = unix_us.div_euclid(1_000_000);
    let micros = unix_us.rem_euclid(1_000_000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    put(
        out,
        format_args!(
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{micros:06}+00",
            s / 3600,
            s / 60 % 60,
            s % 60
        ),
    );
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `count` frames of COPY text from one seeded row sequence, each cut on a row boundary (as
/// the engine cuts PostgreSQL frames, so that any frame loads by itself) and so at most
/// `frame_size` bytes, and within one row (< 1 KiB) of it. The same seed gives the same rows
/// whatever the frame size, so every frame size benchmarks the same bytes.
pub fn copy_frames(seed: u64, frame_size: usize, count: usize) -> Vec<Vec<u8>> {
    assert!(frame_size >= 4096, "frames must hold many rows");
    let mut rows = CopyRows::new(seed);
    let mut row = Vec::with_capacity(1024);
    (0..count)
        .map(|_| {
            let mut frame = Vec::with_capacity(frame_size);
            loop {
                if row.is_empty() {
                    rows.push_row(&mut row);
                }
                if frame.len() + row.len() > frame_size {
                    return frame;
                }
                frame.extend_from_slice(&row);
                row.clear();
            }
        })
        .collect()
}

/// Total bytes of `frames`: the throughput every benchmark reports is of these raw bytes.
pub fn total_len(frames: &[Vec<u8>]) -> u64 {
    frames.iter().map(|f| f.len() as u64).sum()
}

/// `1 MiB` → `"1MiB"`, for benchmark names.
pub fn size_name(bytes: usize) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{}MiB", bytes >> 20)
    } else {
        format!("{}KiB", bytes >> 10)
    }
}

/// The frames producer `t` of `threads` handles: every `threads`-th, starting at `t`. Both
/// the floor and coffer split work this way, so they see the same frames per thread.
pub fn share(frames: &[Vec<u8>], threads: usize, t: usize) -> impl Iterator<Item = &[u8]> {
    frames.iter().skip(t).step_by(threads).map(Vec::as_slice)
}

// ---------------------------------------------------------------------------------------------
// Write: floor and coffer
// ---------------------------------------------------------------------------------------------

/// The write floor for one producer: for each frame, zstd at `level` (one reused context,
/// as coffer's `FrameSealer` keeps one per stream) plus BLAKE3 of the raw and of the
/// compressed bytes (the format records both). Returns the compressed total.
pub fn write_floor_one(frames: impl Iterator<Item = impl AsRef<[u8]>>, level: i32) -> u64 {
    let mut zstd = zstd::bulk::Compressor::new(level).expect("zstd level");
    let mut stored = 0;
    for frame in frames {
        let raw = frame.as_ref();
        let raw_hash = blake3::hash(raw);
        let compressed = zstd.compress(raw).expect("zstd compression");
        let stored_hash = blake3::hash(&compressed);
        black_box((raw_hash, stored_hash));
        stored += compressed.len() as u64;
    }
    stored
}

/// The write floor with `threads` producers, each doing [`write_floor_one`] on its
/// [`share`] of the frames at once.
pub fn write_floor(frames: &[Vec<u8>], level: i32, threads: usize) -> u64 {
    if threads == 1 {
        return write_floor_one(frames.iter(), level);
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || write_floor_one(share(frames, threads, t), level)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("floor thread"))
            .sum()
    })
}

/// Writer options for a plain archive at `level`, otherwise the defaults.
pub fn writer_options(level: i32) -> WriterOptions {
    WriterOptions {
        zstd_level: level,
        ..WriterOptions::default()
    }
}

/// Writes `frames` through `writer` with `threads` producer threads, each with its own
/// stream and its [`share`] of the frames, then finishes the archive.
pub fn write_coffer(writer: ArchiveWriter, frames: &[Vec<u8>], threads: usize) -> WriteSummary {
    std::thread::scope(|s| {
        for t in 0..threads {
            let writer = &writer;
            s.spawn(move || {
                let mut w = writer
                    .stream(StreamDescriptor::new(
                        "bench.copy",
                        format!("public.orders_{t}"),
                    ))
                    .expect("open stream");
                for frame in share(frames, threads, t) {
                    w.write_frame(frame).expect("write_frame");
                }
                w.finish().expect("finish stream");
            });
        }
    });
    writer
        .finish(serde_json::json!({ "bench": true }))
        .expect("finish archive")
}

/// Writes `frames` to a new archive at `path` with one producer: the archives `verify` reads.
pub fn write_archive(path: &Path, frames: &[Vec<u8>], level: i32) -> WriteSummary {
    let writer = ArchiveWriter::create(path, writer_options(level)).expect("create archive");
    write_coffer(writer, frames, 1)
}

// ---------------------------------------------------------------------------------------------
// Verify: floor
// ---------------------------------------------------------------------------------------------

/// Where one DATA frame's stored payload lies in an archive file, and its raw length.
#[derive(Clone, Debug)]
pub struct StoredFrame {
    /// Byte range of the stored payload (after the frame header).
    pub range: Range<usize>,
    /// Bytes it decompresses to.
    pub raw_len: usize,
}

/// The archive at `path` read into memory, with its DATA frames' payloads located through
/// its index: the verify floor runs on exactly the bytes `verify` checks.
pub fn stored_frames(path: &Path) -> (Vec<u8>, Vec<StoredFrame>) {
    let archive = MappedArchive::open(path, None).expect("open archive");
    let mut frames = Vec::new();
    for s in archive.streams() {
        for e in archive.data_entries(s) {
            assert!(
                e.stored_len < e.raw_len,
                "benchmark data must compress (the floor assumes zstd frames)"
            );
            let start = e.file_offset as usize + FRAME_HEADER_LEN;
            frames.push(StoredFrame {
                range: start..start + e.stored_len as usize,
                raw_len: e.raw_len as usize,
            });
        }
    }
    let bytes = std::fs::read(path).expect("read archive");
    (bytes, frames)
}

thread_local! {
    /// One decompression context per thread, reused as coffer reuses its own.
    static DECOMPRESSOR: RefCell<zstd::bulk::Decompressor<'static>> =
        RefCell::new(zstd::bulk::Decompressor::new().expect("zstd decompressor"));
}

/// The verify floor: for each stored frame, on the current rayon pool, BLAKE3 of the stored
/// bytes, zstd decompression, and BLAKE3 of the raw bytes. Returns the raw total.
pub fn verify_floor(bytes: &[u8], frames: &[StoredFrame]) -> u64 {
    frames
        .par_iter()
        .map(|f| {
            let stored = &bytes[f.range.clone()];
            let stored_hash = blake3::hash(stored);
            let raw = DECOMPRESSOR
                .with(|d| d.borrow_mut().decompress(stored, f.raw_len))
                .expect("zstd decompression");
            let raw_hash = blake3::hash(&raw);
            black_box((stored_hash, raw_hash));
            raw.len() as u64
        })
        .sum()
}

/// Reads every DATA frame of the archive at `path` through [`MappedArchive::par_map`] (all
/// checks, decoded into owned buffers), as restore does. Returns the raw total.
pub fn read_mapped(path: &Path) -> u64 {
    let archive = MappedArchive::open(path, None).expect("open archive");
    archive
        .streams()
        .iter()
        .flat_map(|s| archive.par_map(archive.data_entries(s), |_, raw| raw.len() as u64))
        .map(|r| r.expect("intact frame"))
        .sum()
}

/// CPU time (user + system) this process has used, every thread included, finished ones
/// too, from `/proc/self/stat`; 0 where that is unreadable (not Linux). Resolution is one
/// clock tick (10 ms on Linux), so measure runs of a second or more. std has no CPU clock,
/// and this keeps the crate free of `libc` and `unsafe`.
pub fn process_cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name, which may itself hold spaces: state is
    // field 3 of proc(5), utime 14 and stime 15.
    let Some((_, rest)) = stat.rsplit_once(") ") else {
        return 0.0;
    };
    let ticks: u64 = rest
        .split(' ')
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    ticks as f64 / 100.0 // USER_HZ is 100 on every Linux ABI
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_look_like_copy_text_and_are_deterministic() {
        let a = copy_frames(7, 64 << 10, 3);
        assert_eq!(a, copy_frames(7, 64 << 10, 3));
        assert_ne!(a, copy_frames(8, 64 << 10, 3));
        for f in &a {
            assert!(f.len() <= 64 << 10 && f.len() > (64 << 10) - 1024);
            assert!(f.ends_with(b"\n"));
            for row in f.split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
                assert_eq!(
                    row.iter().filter(|&&b| b == b'\t').count(),
                    10,
                    "11 columns"
                );
            }
        }
        let text = String::from_utf8(a[0].clone()).expect("ASCII");
        assert!(text.starts_with("100000"), "{}", &text[..200]);
        assert!(text.contains("2024-01-01 00:00:0"));
    }

    #[test]
    fn frame_sizes_share_one_row_sequence() {
        let small = copy_frames(1, 16 << 10, 8).concat();
        let large = copy_frames(1, 256 << 10, 1).concat();
        // Both are prefixes of the same row sequence.
        let n = small.len().min(large.len());
        assert!(n > 100 << 10);
        assert_eq!(small[..n], large[..n]);
    }

    #[test]
    fn dates_are_civil() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn compresses_like_table_data() {
        let frames = copy_frames(42, 1 << 20, 2);
        let raw = total_len(&frames);
        let stored = write_floor(&frames, 1, 1);
        let ratio = raw as f64 / stored as f64;
        assert!((3.0..=6.0).contains(&ratio), "zstd -1 ratio {ratio:.2}");
    }
}

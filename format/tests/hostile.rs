//! Hostile length fields never make a reader allocate beyond the format's limits.
//!
//! A counting global allocator records the largest single allocation while each crafted
//! input is read; every case must fail with a clear error *and* stay under a bound far
//! below what the hostile field asked for.

#![allow(unsafe_code)] // the GlobalAlloc impl below only forwards to the system allocator

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use coffer_format::{Error, MappedArchive, StreamReader, verify_bytes};

struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LARGEST.fetch_max(new, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns the largest single allocation it made. The cases run one after
/// another in one test, so no other test thread disturbs the count.
fn largest_alloc(f: impl FnOnce()) -> usize {
    LARGEST.store(0, Ordering::SeqCst);
    f();
    LARGEST.load(Ordering::SeqCst)
}

fn small_archive() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.coffer");
    common::write(&path, &common::small_content(), 1, common::options(None));
    std::fs::read(path).unwrap()
}

fn fix_crc(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[..124]);
    b[124..128].copy_from_slice(&crc.to_le_bytes());
}

const BOUND: usize = 2 << 20; // 2 MiB: a few buffers of ordinary size

#[test]
fn hostile_lengths_never_allocate_beyond_the_limits() {
    let good = small_archive();
    let header_len = coffer_format::FileHeader::parse(&good).unwrap().1;

    // 1. a file header claiming a 4 GiB extension area
    let mut b = good.clone();
    b[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
    let n = largest_alloc(|| {
        assert!(matches!(
            StreamReader::new(&b[..], None),
            Err(Error::LimitExceeded { .. })
        ));
    });
    assert!(n < BOUND, "header: {n} bytes");

    // 2. a frame claiming a 256 MiB manifest (the metadata cap) on a 200-byte input: the
    //    reader must not allocate the claimed size up front
    let mut b = good[..header_len + 128].to_vec();
    let f = header_len;
    b[f + 4] = 0x10; // MANIFEST
    b[f + 6] = 0;
    b[f + 8] = 1; // zstd
    b[f + 12..f + 16].copy_from_slice(&u32::MAX.to_le_bytes()); // meta stream
    b[f + 16..f + 24].copy_from_slice(&0u64.to_le_bytes());
    b[f + 36..f + 40].copy_from_slice(&(256u32 << 20).to_le_bytes());
    b[f + 32..f + 36].copy_from_slice(&(256u32 << 20).to_le_bytes());
    fix_crc(&mut b[f..f + 128]);
    b.extend_from_slice(&[0u8; 100]);
    let n = largest_alloc(|| {
        let mut r = StreamReader::new(&b[..], None).unwrap();
        assert!(matches!(r.next_event(), Err(Error::Truncated { .. })));
        let _ = verify_bytes(&b, None).unwrap();
    });
    assert!(n < BOUND, "claimed payload: {n} bytes");

    // 3. a zstd bomb: a DATA frame whose payload inflates to 64 MiB while its header says
    //    4096 (so the stored length passes the plausibility bound); the decoder writes into
    //    a buffer of exactly 4096 bytes and fails
    let bomb = zstd::bulk::compress(&vec![0u8; 64 << 20], 19).unwrap();
    let mut b = good.clone();
    let f = header_len + {
        // skip the first frame (a STREAM_BEGIN) to the first DATA frame
        let stored = u32::from_le_bytes(good[header_len + 32..header_len + 36].try_into().unwrap());
        128 + stored as usize
    };
    assert_eq!(b[f + 4], 0x02, "second frame is DATA");
    let old_stored = u32::from_le_bytes(b[f + 32..f + 36].try_into().unwrap()) as usize;
    b.splice(f + 128..f + 128 + old_stored, bomb.iter().copied());
    b[f + 8] = 1;
    b[f + 32..f + 36].copy_from_slice(&(bomb.len() as u32).to_le_bytes());
    b[f + 36..f + 40].copy_from_slice(&4096u32.to_le_bytes());
    let h = blake3::hash(&bomb);
    b[f + 44..f + 76].copy_from_slice(h.as_bytes());
    fix_crc(&mut b[f..f + 128]);
    let n = largest_alloc(|| {
        let mut r = StreamReader::new(&b[..], None).unwrap();
        r.next_event().unwrap(); // BEGIN
        let err = r.next_event().unwrap_err();
        assert!(matches!(err, Error::DamagedFrame { .. }), "{err}");
        let report = verify_bytes(&b, None).unwrap();
        assert!(
            report.problems.iter().any(|p| p.detail.contains("zstd")),
            "{:?}",
            report.problems
        );
    });
    assert!(n < BOUND + bomb.len(), "zstd bomb: {n} bytes");

    // 4. a trailer whose frame count exceeds what the file could hold
    let mut b = good.clone();
    let t = b.len() - 64;
    b[t + 24..t + 32].copy_from_slice(&u64::MAX.to_le_bytes());
    let check = blake3::hash(&b[t..t + 52]);
    b[t + 52..t + 60].copy_from_slice(&check.as_bytes()[..8]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.coffer");
    std::fs::write(&p, &b).unwrap();
    let n = largest_alloc(|| {
        assert!(matches!(
            MappedArchive::open(&p, None),
            Err(Error::LimitExceeded { .. })
        ));
    });
    assert!(n < BOUND, "trailer frame count: {n} bytes");

    // 5. an index frame whose raw length disagrees with the trailer's frame count is
    //    refused before it is decoded
    let a = MappedArchive::from_vec(good.clone(), None).unwrap();
    let frames = a.entries().len() as u64;
    let mut b = good.clone();
    let t = b.len() - 64;
    b[t + 24..t + 32].copy_from_slice(&(frames - 1).to_le_bytes());
    let check = blake3::hash(&b[t..t + 52]);
    b[t + 52..t + 60].copy_from_slice(&check.as_bytes()[..8]);
    let err = MappedArchive::from_vec(b, None).err().expect("refused");
    assert!(err.to_string().contains("records need"), "{err}");
}

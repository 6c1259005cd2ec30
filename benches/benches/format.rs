//! Archive writer and verify throughput, each beside its floor measured in the same run on
//! the same bytes (see the crate docs and README.md for what a floor is). Every benchmark's
//! throughput is of the raw (uncompressed) bytes, so rates compare directly.
//!
//! Groups (criterion ids are `group/function`):
//!
//! * `write/<frame size>/L<level>`: `floor` (one thread), `coffer` (one stream into a new
//!   file, `create` to `finish`, fsync and rename included) and `coffer_sink` (the same into
//!   `io::sink()`: no file I/O, so the difference is what the file costs).
//! * `write_threads/<n>` (4 MiB frames, level 1): `floor` with n threads and `coffer` with n
//!   producer threads, one stream each, into a real file; same total bytes.
//! * `verify/<frame size>/L<level>`: on one archive written in setup, `floor_par` and
//!   `verify_par` (`coffer_format::verify`) on the global rayon pool, `read_par`
//!   (`MappedArchive::open` + `par_map`, as restore reads), and `floor_1t` / `verify_1t`
//!   inside a one-thread rayon pool.
//!
//! `cargo run -p coffer-benches --bin ratios` turns the results into a coffer/floor table.
//! Set `COFFER_BENCH_DIR` to put the archives somewhere other than the system temp dir
//! (which decides what the `coffer` write figure's fsync costs).

use std::path::Path;
use std::time::Duration;

use coffer_benches::{
    copy_frames, read_mapped, size_name, stored_frames, total_len, verify_floor, write_archive,
    write_coffer, write_floor, writer_options,
};
use coffer_format::ArchiveWriter;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

/// Raw bytes per iteration of every benchmark: large against per-archive costs (thread
/// start, header, manifest, fsync) yet quick enough for a suite of a few minutes.
const TOTAL: usize = 64 << 20;
const FRAME_SIZES: [usize; 3] = [1 << 20, 4 << 20, 16 << 20];
const LEVELS: [i32; 2] = [1, 3];
const SEED: u64 = 0xC0FF_EE00_DA7A;

fn bench_dir() -> tempfile::TempDir {
    match std::env::var_os("COFFER_BENCH_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("benchmark temp dir")
}

/// Removes the previous iteration's archive, in untimed setup: each timed write creates a
/// new file, as a backup does, rather than paying for freeing the old file's blocks and
/// cached pages when `finish` renames over it.
fn remove_archive(path: &Path) {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("removing {}: {e}", path.display()),
    }
}

fn write(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.path().join("write.coffer");
    for size in FRAME_SIZES {
        let frames = copy_frames(SEED, size, TOTAL / size);
        for level in LEVELS {
            let mut g = c.benchmark_group(format!("write/{}/L{level}", size_name(size)));
            g.sampling_mode(SamplingMode::Flat);
            g.throughput(Throughput::Bytes(total_len(&frames)));
            g.bench_function("floor", |b| b.iter(|| write_floor(&frames, level, 1)));
            g.bench_function("coffer", |b| {
                b.iter_batched(
                    || remove_archive(&path),
                    |()| {
                        let w =
                            ArchiveWriter::create(&path, writer_options(level)).expect("create");
                        write_coffer(w, &frames, 1)
                    },
                    BatchSize::PerIteration,
                )
            });
            g.bench_function("coffer_sink", |b| {
                b.iter(|| {
                    let w =
                        ArchiveWriter::to_writer(Box::new(std::io::sink()), writer_options(level))
                            .expect("to_writer");
                    write_coffer(w, &frames, 1)
                })
            });
            g.finish();
        }
    }
}

fn write_threads(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.path().join("threads.coffer");
    let frames = copy_frames(SEED, 4 << 20, TOTAL / (4 << 20));
    for threads in [1, 2] {
        let mut g = c.benchmark_group(format!("write_threads/{threads}"));
        g.sampling_mode(SamplingMode::Flat);
        g.throughput(Throughput::Bytes(total_len(&frames)));
        g.bench_function("floor", |b| b.iter(|| write_floor(&frames, 1, threads)));
        g.bench_function("coffer", |b| {
            b.iter_batched(
                || remove_archive(&path),
                |()| {
                    let w = ArchiveWriter::create(&path, writer_options(1)).expect("create");
                    write_coffer(w, &frames, threads)
                },
                BatchSize::PerIteration,
            )
        });
        g.finish();
    }
}

fn verify(c: &mut Criterion) {
    let dir = bench_dir();
    let path = dir.path().join("verify.coffer");
    let one_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .expect("one-thread rayon pool");
    for size in FRAME_SIZES {
        let frames = copy_frames(SEED, size, TOTAL / size);
        let raw = total_len(&frames);
        for level in LEVELS {
            let summary = write_archive(&path, &frames, level);
            let report = coffer_format::verify(&path, None).expect("verify");
            assert!(report.is_intact(), "{:?}", report.problems);
            let (bytes, stored) = stored_frames(&path);
            assert_eq!(verify_floor(&bytes, &stored), raw);
            eprintln!(
                "verify/{}/L{level}: {raw} raw bytes in {} frames, archive {} bytes (zstd ratio {:.2})",
                size_name(size),
                stored.len(),
                summary.bytes,
                raw as f64 / summary.bytes as f64
            );

            let mut g = c.benchmark_group(format!("verify/{}/L{level}", size_name(size)));
            g.sampling_mode(SamplingMode::Flat);
            g.throughput(Throughput::Bytes(raw));
            g.bench_function("floor_par", |b| b.iter(|| verify_floor(&bytes, &stored)));
            g.bench_function("verify_par", |b| {
                b.iter(|| coffer_format::verify(&path, None).expect("verify"))
            });
            g.bench_function("read_par", |b| b.iter(|| read_mapped(&path)));
            g.bench_function("floor_1t", |b| {
                b.iter(|| one_thread.install(|| verify_floor(&bytes, &stored)))
            });
            g.bench_function("verify_1t", |b| {
                b.iter(|| {
                    one_thread.install(|| coffer_format::verify(&path, None).expect("verify"))
                })
            });
            g.finish();
        }
    }
}

/// Few samples and short windows: each iteration handles 64 MiB, and the suite should run in
/// a few minutes. Command-line flags (`--sample-size`, `--measurement-time`,
/// `--warm-up-time`) override these for steadier final figures.
fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots()
}

criterion_group! {
    name = benches;
    config = config();
    targets = write, write_threads, verify
}
criterion_main!(benches);

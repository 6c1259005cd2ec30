//! A cross-check of the criterion figures for a busy machine: runs each floor and its coffer
//! counterpart alternately, round after round, so that other load hits both alike, and
//! reports wall-clock rates and rates per CPU-second (the process's user + system time, from
//! `/proc/self/stat`; Linux only, 10 ms ticks, so use several rounds).
//!
//! Criterion measures one benchmark after another; when others compile on the same cores,
//! a floor and its coffer run can see very different shares of the CPU, and their ratio
//! means little. Here they see the same conditions, and CPU-time rates ignore waiting for a
//! core altogether (not waiting for the disk, which is wall time only: compare `coffer`
//! with `coffer_sink` to see what the file costs).
//!
//! `cargo run --release -p coffer-benches --example interleave -- [write|verify] [FRAME_MIB]
//! [LEVEL] [THREADS] [ROUNDS]` (defaults: write 1 1 1 6). `THREADS` is the number of
//! producers for `write`, the rayon pool size for `verify`.

use std::hint::black_box;
use std::time::Instant;

use coffer_benches::{
    copy_frames, process_cpu_seconds, read_mapped, stored_frames, total_len, verify_floor,
    write_archive, write_coffer, write_floor, writer_options,
};
use coffer_format::ArchiveWriter;

type Run<'a> = (&'static str, Box<dyn Fn() + 'a>);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg =
        |i: usize, default: usize| args.get(i).map_or(default, |a| a.parse().expect("number"));
    let mode = args.first().map_or("write", String::as_str);
    let (size, level, threads, rounds) = (arg(1, 1) << 20, arg(2, 1) as i32, arg(3, 1), arg(4, 6));
    let frames = copy_frames(0xC0FF_EE00_DA7A, size, (64 << 20) / size);
    let raw = total_len(&frames) as f64;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("interleave.coffer");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("rayon pool");

    let stored;
    let runs: Vec<Run<'_>> = match mode {
        "write" => vec![
            (
                "floor",
                Box::new(|| {
                    black_box(write_floor(&frames, level, threads));
                }),
            ),
            (
                "coffer_sink",
                Box::new(|| {
                    let w =
                        ArchiveWriter::to_writer(Box::new(std::io::sink()), writer_options(level));
                    write_coffer(w.expect("to_writer"), &frames, threads);
                }),
            ),
            (
                "coffer",
                Box::new(|| {
                    let w = ArchiveWriter::create(&path, writer_options(level)).expect("create");
                    write_coffer(w, &frames, threads);
                }),
            ),
        ],
        "verify" => {
            write_archive(&path, &frames, level);
            stored = stored_frames(&path);
            let (bytes, stored) = (&stored.0, &stored.1);
            let (pool, path) = (&pool, &path);
            vec![
                (
                    "floor",
                    Box::new(move || {
                        black_box(pool.install(|| verify_floor(bytes, stored)));
                    }),
                ),
                (
                    "verify",
                    Box::new(move || {
                        black_box(
                            pool.install(|| coffer_format::verify(path, None))
                                .expect("verify"),
                        );
                    }),
                ),
                (
                    "read",
                    Box::new(move || {
                        black_box(pool.install(|| read_mapped(path)));
                    }),
                ),
            ]
        }
        _ => panic!("mode is write or verify"),
    };

    let mut wall = vec![0.0; runs.len()];
    let mut cpu = vec![0.0; runs.len()];
    for _ in 0..rounds {
        for (i, (_, run)) in runs.iter().enumerate() {
            if mode == "write" {
                // Each archive is written as a new file, as in the criterion benchmark: the
                // old one's blocks and cached pages are freed here, untimed.
                let _ = std::fs::remove_file(&path);
            }
            let (c0, t0) = (process_cpu_seconds(), Instant::now());
            run();
            wall[i] += t0.elapsed().as_secs_f64();
            cpu[i] += process_cpu_seconds() - c0;
        }
    }
    let mb = raw * rounds as f64 / 1e6;
    println!(
        "{mode} {}MiB frames, zstd {level}, {threads} thread(s), {rounds} rounds",
        size >> 20
    );
    println!(
        "{:<12} {:>9} {:>7} {:>13} {:>7}",
        "", "wall MB/s", "ratio", "MB/CPU-second", "ratio"
    );
    for (i, (name, _)) in runs.iter().enumerate() {
        println!(
            "{name:<12} {:>9.0} {:>7.3} {:>13.0} {:>7.3}",
            mb / wall[i],
            wall[0] / wall[i],
            mb / cpu[i],
            cpu[0] / cpu[i]
        );
    }
}

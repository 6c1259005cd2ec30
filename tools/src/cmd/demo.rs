//! `coffer demo`: the README's "main job". It exercises, on generated data and on
//! throwaway PostgreSQL and Redis servers, everything coffer can do so far and prints a
//! report; it grows as features land.

use std::path::{Path, PathBuf};
use std::time::Instant;

use coffer_format::{ArchiveWriter, KeySource, StreamDescriptor, WriterOptions};

use crate::error::CliError;
use crate::{exit, human};

/// Rows of COPY-text per generated table, and tables written in parallel.
const ROWS: usize = 150_000;
const TABLES: [&str; 3] = [
    "public.accounts",
    "public.history",
    "billing.\"Invoices ü\"",
];
const FRAME: usize = 1 << 20;

pub fn run(dir: Option<PathBuf>) -> Result<u8, CliError> {
    let tmp;
    let dir = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .map_err(|e| CliError::new(exit::OUTPUT, format!("{}: {e}", d.display())))?;
            d
        }
        None => {
            tmp = tempfile::tempdir()
                .map_err(|e| CliError::new(exit::OUTPUT, format!("temporary directory: {e}")))?;
            tmp.path().to_path_buf()
        }
    };
    let mut steps: Vec<(String, bool)> = Vec::new();
    println!("coffer demo in {}\n", dir.display());

    // 1. parallel write
    let plain = dir.join("demo.coffer");
    let t = Instant::now();
    let raw = write_sample(&plain, None)?;
    let secs = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&plain).map(|m| m.len()).unwrap_or(0);
    println!(
        "== wrote {} of COPY-text from {} tables on {} threads in {secs:.2} s ({:.0} MB/s), archive {} ({:.1}x smaller)\n",
        human::bytes(raw),
        TABLES.len(),
        TABLES.len(),
        raw as f64 / secs / 1e6,
        human::bytes(size),
        raw as f64 / size.max(1) as f64
    );
    steps.push(("parallel write of 3 streams".into(), true));

    println!("== coffer verify {}", plain.display());
    let code = crate::cmd::verify::run(&plain, None, false)?;
    steps.push((
        "verify of the intact archive says intact".into(),
        code == exit::OK,
    ));

    println!("\n== coffer list {}", plain.display());
    crate::cmd::list::run(&plain, None, false)?;

    // 2. encryption
    let key_path = dir.join("demo.key");
    let key_bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(11))
        .collect();
    std::fs::write(&key_path, &key_bytes)
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let enc = dir.join("demo-encrypted.coffer");
    write_sample(
        &enc,
        Some(KeySource::key_file(&key_path).map_err(|e| CliError::new(exit::KEY, e.to_string()))?),
    )?;
    println!(
        "\n== coffer verify --key-file {} {}",
        key_path.display(),
        enc.display()
    );
    let key =
        KeySource::key_file(&key_path).map_err(|e| CliError::new(exit::KEY, e.to_string()))?;
    let code = crate::cmd::verify::run(&enc, Some(&key), false)?;
    steps.push((
        "encrypted archive verifies with its key".into(),
        code == exit::OK,
    ));
    println!("\n== coffer verify (wrong passphrase) {}", enc.display());
    let wrong = crate::cmd::verify::run(&enc, Some(&KeySource::passphrase("not the key")), false);
    if let Err(e) = &wrong {
        println!("error: {e} (exit {})", e.code);
    }
    steps.push((
        "wrong key is refused with exit code 4".into(),
        matches!(wrong, Err(ref e) if e.code == exit::KEY),
    ));

    // 3. damage
    let damaged = dir.join("demo-damaged.coffer");
    let mut bytes =
        std::fs::read(&plain).map_err(|e| CliError::new(exit::BAD_INPUT, e.to_string()))?;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x20;
    std::fs::write(&damaged, &bytes).map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    println!(
        "\n== one byte flipped at offset {mid}: coffer verify {}",
        damaged.display()
    );
    let code = crate::cmd::verify::run(&damaged, None, false)?;
    steps.push((
        "a flipped byte is found and its frame named".into(),
        code == exit::DAMAGED,
    ));

    // 4. truncation and salvage
    let cut = dir.join("demo-truncated.coffer");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10])
        .map_err(|e| CliError::new(exit::OUTPUT, e.to_string()))?;
    let salvaged = dir.join("demo-salvaged.coffer");
    println!(
        "\n== the damaged copy cut at 60 %: coffer salvage {} -o {}",
        cut.display(),
        salvaged.display()
    );
    let code = crate::cmd::salvage::run(&cut, &salvaged, None, 3, true)?;
    steps.push((
        "salvage recovers the intact frames and says what was lost".into(),
        code == exit::DAMAGED,
    ));
    println!("\n== coffer verify {}", salvaged.display());
    let code = crate::cmd::verify::run(&salvaged, None, false)?;
    steps.push((
        "the salvaged archive verifies clean".into(),
        code == exit::OK,
    ));

    pg_demo(&dir, &mut steps);
    redis_demo(&dir, &mut steps);
    nightly_demo(&dir, &mut steps);

    println!("\n== report");
    let mut all = true;
    for (what, ok) in &steps {
        println!("  [{}] {what}", if *ok { "ok" } else { "FAILED" });
        all &= ok;
    }
    Ok(if all { exit::OK } else { exit::DAMAGED })
}

/// Writes generated COPY-text tables, one producer thread each; returns raw bytes written.
fn write_sample(path: &Path, key: Option<KeySource>) -> Result<u64, CliError> {
    let options = WriterOptions {
        encryption: key,
        ..WriterOptions::default()
    };
    let w = ArchiveWriter::create(path, options).map_err(CliError::writing)?;
    let total = std::thread::scope(|s| {
        let handles: Vec<_> = TABLES
            .iter()
            .enumerate()
            .map(|(t, name)| {
                let w = &w;
                s.spawn(move || -> coffer_format::Result<u64> {
                    let mut sw = w.stream(StreamDescriptor::new("demo.copy_text", *name))?;
                    let mut buf = Vec::with_capacity(FRAME + 256);
                    let mut total = 0;
                    for i in 0..ROWS {
                        let n = i * (t + 3);
                        buf.extend_from_slice(
                            format!("{i}\t{}\t{}.{:02}\tcustomer {} of region {}\t2026-11-{:02} 0{}:{:02}:00+00\n",
                                n % 100_000, n % 9973, n % 100, n % 5000, n % 17, 1 + n % 28, n % 10, n % 60).as_bytes(),
                        );
                        if buf.len() >= FRAME {
                            sw.write_frame(&buf)?;
                            total += buf.len() as u64;
                            buf.clear();
                        }
                    }
                    if !buf.is_empty() {
                        sw.write_frame(&buf)?;
                        total += buf.len() as u64;
                    }
                    sw.finish()?;
                    Ok(total)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("producer thread")).sum::<coffer_format::Result<u64>>()
    })
    .map_err(CliError::writing)?;
    w.finish(serde_json::json!({"demo": true}))
        .map_err(CliError::writing)?;
    Ok(total)
}

/// The PostgreSQL part: a throwaway server with a pgbench dataset, dumped over two
/// connections, verified, restored in parallel into a fresh database, and checked against
/// the archive. Skipped, and said so, where PostgreSQL is not installed.
fn pg_demo(dir: &Path, steps: &mut Vec<(String, bool)>) {
    use coffer_engine::pg::{check, conn, dump, restore, sql};
    println!("\n== PostgreSQL: starting a throwaway server");
    let pg = match coffer_testkit::PgServer::start() {
        Ok(pg) => pg,
        Err(e) => {
            println!("skipped: {e}");
            steps.push(("PostgreSQL part (server could not start)".into(), false));
            return;
        }
    };
    let load = pg
        .create_database("shop")
        .map_err(|e| e.to_string())
        .and_then(|()| {
            let o = pg
                .client("pgbench")
                .args(["-i", "-q", "-s", "5", "shop"])
                .output()
                .map_err(|e| e.to_string())?;
            if o.status.success() {
                Ok(())
            } else {
                Err(String::from_utf8_lossy(&o.stderr).into_owned())
            }
        });
    if let Err(e) = load {
        println!("loading pgbench data failed: {e}");
        steps.push(("PostgreSQL sample data".into(), false));
        return;
    }
    let options = |db: &str| conn::ConnectOptions {
        dbname: Some(db.into()),
        host: Some(pg.host().into()),
        port: Some(pg.port()),
        user: Some(pg.user().into()),
    };
    let result = (|| -> Result<(), String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let target = options("shop")
            .resolve(&conn::ProcessEnv)
            .map_err(|e| e.to_string())?;
        let path = dir.join("shop.coffer");
        let writer = std::sync::Arc::new(
            ArchiveWriter::create(&path, WriterOptions::default()).map_err(|e| e.to_string())?,
        );
        let t = Instant::now();
        let opts = dump::DumpOptions {
            jobs: 2,
            ..dump::DumpOptions::default()
        };
        let summary = runtime
            .block_on(dump::dump(
                &target,
                &opts,
                writer.clone(),
                std::sync::Arc::new(|_| {}),
            ))
            .map_err(|e| e.to_string())?;
        let writer =
            std::sync::Arc::try_unwrap(writer).map_err(|_| "writer still in use".to_string())?;
        let written = writer
            .finish(serde_json::to_value(&summary.manifest).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        println!(
            "== coffer dump pg -j 2: {} tables, {} rows, {} of data into {} in {:.2} s",
            summary.manifest.tables.len(),
            summary.rows,
            human::bytes(summary.raw_bytes),
            human::bytes(written.bytes),
            t.elapsed().as_secs_f64()
        );
        steps.push((
            "PostgreSQL dump over 2 connections from one snapshot".into(),
            true,
        ));
        let ok = crate::cmd::verify::run(&path, None, false).map_err(|e| e.message)? == exit::OK;
        steps.push(("the PostgreSQL archive verifies".into(), ok));
        pg.create_database("shop_restored")
            .map_err(|e| e.to_string())?;
        let archive = std::sync::Arc::new(
            coffer_format::MappedArchive::open(&path, None).map_err(|e| e.to_string())?,
        );
        let restored = options("shop_restored")
            .resolve(&conn::ProcessEnv)
            .map_err(|e| e.to_string())?;
        let t = Instant::now();
        let ropts = restore::RestoreOptions {
            jobs: 2,
            ..restore::RestoreOptions::default()
        };
        runtime
            .block_on(restore::restore(
                archive.clone(),
                &restored,
                &ropts,
                std::sync::Arc::new(|_| {}),
            ))
            .map_err(|e| e.to_string())?;
        println!(
            "== coffer restore pg -j 2 into shop_restored: {:.2} s",
            t.elapsed().as_secs_f64()
        );
        let pga = sql::PgArchive::read(&archive).map_err(|e| e.to_string())?;
        let report = runtime
            .block_on(async {
                let client = conn::connect(&restored).await?;
                check::check(&client, &pga).await
            })
            .map_err(|e| e.to_string())?;
        for t in &report.tables {
            println!(
                "   {:<28} {:>9} rows  {}  {}",
                t.table,
                t.rows,
                t.checksum,
                if t.ok { "ok" } else { "MISMATCH" }
            );
        }
        steps.push((
            "the restored database matches the archive, table by table".into(),
            report.ok,
        ));
        Ok(())
    })();
    if let Err(e) = result {
        println!("PostgreSQL part failed: {e}");
        steps.push(("PostgreSQL dump and restore".into(), false));
    }
}

/// The Redis part: two throwaway servers; the first, loaded with keys of several types
/// (one with a TTL), is dumped as a replica and restored into the second, and the two
/// datasets are compared with `DEBUG DIGEST`, which covers every key, value and expiry.
fn redis_demo(dir: &Path, steps: &mut Vec<(String, bool)>) {
    use coffer_testkit::{RedisServer, RespValue};
    println!("\n== Redis: starting two throwaway servers");
    // a master waits repl-diskless-sync-delay (5 s by default) for more replicas to join
    let start = || {
        RedisServer::builder()
            .config("enable-debug-command yes")
            .config("repl-diskless-sync-delay 0")
            .start()
    };
    let (src, dst) = match (start(), start()) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            println!("skipped: {e}");
            steps.push(("Redis part (server could not start)".into(), false));
            return;
        }
    };
    let result = (|| -> Result<bool, String> {
        let mut c = src.connect().map_err(|e| e.to_string())?;
        for i in 0..2000 {
            let (k, v) = (
                format!("user:{i}"),
                format!("{{\"id\":{i},\"plan\":\"pro\"}}"),
            );
            c.command(&[b"SET", k.as_bytes(), v.as_bytes()])
                .map_err(|e| e.to_string())?;
        }
        for cmd in [
            &[&b"RPUSH"[..], b"queue", b"a", b"b", b"c"][..],
            &[b"HSET", b"cart:1", b"item", b"42", b"qty", b"2"],
            &[b"SADD", b"tags", b"red", b"green", b"1", b"2"],
            &[b"ZADD", b"scores", b"1.5", b"ann", b"+inf", b"bob"],
            &[b"XADD", b"events", b"*", b"kind", b"login"],
            &[b"SET", b"session", b"xyz", b"PX", b"600000"],
        ] {
            c.command(cmd).map_err(|e| e.to_string())?;
        }
        let path = dir.join("redis.coffer");
        let t = Instant::now();
        let code = crate::cmd::redis::dump(
            crate::cmd::redis::DumpArgs {
                url: src.url(),
                file: Some(path.clone()),
                level: 3,
                json: false,
            },
            None,
        )
        .map_err(|e| e.message)?;
        println!(
            "== coffer dump redis: {} keys as a replica in {:.2} s",
            2006,
            t.elapsed().as_secs_f64()
        );
        steps.push((
            "Redis dump through the replication stream".into(),
            code == exit::OK,
        ));
        let code = crate::cmd::redis::restore(
            crate::cmd::redis::RestoreArgs {
                archive: path,
                url: Some(dst.url()),
                rdb: None,
                rdb_version: None,
                replace: false,
                db: None,
                pattern: None,
                flush: false,
                yes_i_really_mean_it: false,
                no_restore_command: false,
                drop_field_ttl: false,
                json: false,
            },
            None,
        )
        .map_err(|e| e.message)?;
        steps.push((
            "Redis restore through pipelined RESTORE".into(),
            code == exit::OK,
        ));
        let digest = |s: &RedisServer| match s.command(&[b"DEBUG", b"DIGEST"]) {
            Ok(RespValue::Simple(d)) => Ok(d),
            Ok(RespValue::Bulk(d)) => Ok(String::from_utf8_lossy(&d).into_owned()),
            other => Err(format!("DEBUG DIGEST: {other:?}")),
        };
        let (a, b) = (digest(&src)?, digest(&dst)?);
        println!("== DEBUG DIGEST: source {a}, restored {b}");
        Ok(a == b)
    })();
    match result {
        Ok(same) => steps.push((
            "the restored Redis has the same keys, values and expiries".into(),
            same,
        )),
        Err(e) => {
            println!("Redis part failed: {e}");
            steps.push(("Redis dump and restore".into(), false));
        }
    }
}

/// The nightly job as cron would run it: a backup.conf, `coffer backup` of a PostgreSQL
/// and a Redis server together, `coffer restore-test --latest`, `coffer status`, and the
/// schedule that would run them.
fn nightly_demo(dir: &Path, steps: &mut Vec<(String, bool)>) {
    println!("\n== the nightly job: throwaway PostgreSQL and Redis, a backup.conf");
    let servers = coffer_testkit::PgServer::start()
        .map_err(|e| e.to_string())
        .and_then(|pg| {
            pg.create_database("shop").map_err(|e| e.to_string())?;
            pg.psql(
                "shop",
                "CREATE TABLE orders (id int PRIMARY KEY, total numeric, note text);
                 INSERT INTO orders SELECT g, g * 0.25, 'order ' || g FROM generate_series(1, 50000) g;",
            )
            .map_err(|e| e.to_string())?;
            let redis = coffer_testkit::RedisServer::start().map_err(|e| e.to_string())?;
            redis
                .command(&[b"SET", b"session:1", b"alice"])
                .map_err(|e| e.to_string())?;
            Ok((pg, redis))
        });
    let (pg, redis) = match servers {
        Ok(s) => s,
        Err(e) => {
            println!("skipped: {e}");
            steps.push(("the nightly job (servers could not start)".into(), false));
            return;
        }
    };
    let conf = dir.join("backup.conf");
    let text = format!(
        "BACKUP_DIR={}\nRETENTION_DAYS=30\nDB_HOST={}\nDB_PORT={}\nPOSTGRES_DB=shop\nPOSTGRES_USER={}\nREDIS_HOST=127.0.0.1\nREDIS_PORT={}\nENVIRONMENT=demo\nMETRICS_FILE={}\n",
        dir.join("backups").display(),
        pg.host(),
        pg.port(),
        pg.user(),
        redis.port(),
        dir.join("coffer.prom").display(),
    );
    if let Err(e) = std::fs::write(&conf, text) {
        println!("writing {}: {e}", conf.display());
        steps.push(("the nightly job (backup.conf)".into(), false));
        return;
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            println!("cannot find the coffer binary: {e}");
            steps.push(("the nightly job".into(), false));
            return;
        }
    };
    let conf = conf.display().to_string();
    for (args, what, want) in [
        (
            vec!["backup"],
            "coffer backup: both databases at once into a verified set",
            0,
        ),
        (
            vec!["restore-test", "--latest"],
            "coffer restore-test --latest: the set restored into throwaway servers and checked",
            0,
        ),
        (
            vec!["status", "--min-free", "0"],
            "coffer status: every alert check OK",
            0,
        ),
        (
            vec!["schedule", "--format", "cron"],
            "coffer schedule: the cron lines for it",
            0,
        ),
    ] {
        println!("\n== coffer {} --config {conf}", args.join(" "));
        let code = std::process::Command::new(&exe)
            .args(&args)
            .args(["--config", &conf])
            .status()
            .map(|s| s.code());
        steps.push((what.into(), code.ok().flatten() == Some(want)));
    }
}

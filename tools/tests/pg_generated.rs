//! Generated schemas (the test kit's `schemagen`): random but valid object graphs, each
//! loaded into a database with others of its batch, dumped with `coffer dump pg -j 4`,
//! restored with `coffer restore pg -j 4` (and every few batches rendered with `-f` and
//! loaded by psql), and judged by `pg_dump --schema-only` and every table's rows.
//!
//! The environment picks the run (`scripts/schemagen` sets it for long runs):
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `COFFER_GEN_MAJOR` | the server: 13..18 from the version matrix | Debian's PostgreSQL |
//! | `COFFER_GEN_SEED` | the first seed | 1 |
//! | `COFFER_GEN_CASES` | how many cases (seeds `SEED..SEED+CASES`) | [`CI_CASES`] |
//! | `COFFER_GEN_BATCH` | cases per database | 20 |
//! | `COFFER_GEN_SQL_EVERY` | every Nth batch also goes through `restore -f` and psql | 3 |
//! | `COFFER_GEN_LOAD_ONLY` | only load the cases (checks the generator) | unset |
//!
//! A case that does not load is a bug of the generator: the test fails with its seed and
//! the server's error. A difference after a round trip is coffer's: the batch is split
//! until the cases that differ on their own are found, each is printed as
//! `seed=<n> major=<m>` with its diff and written to
//! `tests/fixtures/pg/generated/<major>-<seed>.sql`, and the test fails once every batch
//! has run. Every saved case is round-tripped again by
//! `saved_regression_cases_round_trip_exactly`.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use coffer_testkit::schemagen::{self, Case};
use coffer_testkit::{PgServer, oracle};
use common::coffer_command;
use common::pg::{conn_args, major};
use common::text;

/// Cases in the CI run: what a debug build round-trips in about two minutes on two
/// cores.
const CI_CASES: u64 = 300;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v}: not a number"))
        })
        .unwrap_or(default)
}

fn server() -> PgServer {
    let builder = PgServer::builder().setting("max_connections", "60");
    let pg = match std::env::var("COFFER_GEN_MAJOR")
        .ok()
        .filter(|v| !v.is_empty())
    {
        Some(m) => builder.major(m.parse().expect("COFFER_GEN_MAJOR")).start(),
        None => builder.start(),
    }
    .expect("start PostgreSQL");
    pg.psql("postgres", schemagen::ROLES_SQL).unwrap();
    pg
}

/// Loads `sql` into `db` with psql (stopping at the first error).
fn load(pg: &PgServer, db: &str, sql: &str, dir: &Path) -> Result<(), String> {
    let file = dir.join(format!("{db}.load.sql"));
    std::fs::write(&file, sql).unwrap();
    let out = pg
        .client("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(text(&out))
    }
}

fn drop_db(pg: &PgServer, db: &str) {
    pg.psql(
        "postgres",
        &format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"),
    )
    .unwrap();
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// `coffer restore pg -d`
    Native,
    /// `coffer restore pg -f`, loaded by psql
    Sql,
}

/// Dumps `src` with coffer, restores it into a new database by `mode`, and compares
/// the two: `Err` with what differed (or what failed).
fn round_trip(pg: &PgServer, src: &str, mode: Mode, dir: &Path) -> Result<(), String> {
    let archive = dir.join(format!("{src}.coffer"));
    let o = coffer_command()
        .args(["dump", "pg", "-j", "4", "-f"])
        .arg(&archive)
        .args(conn_args(pg, src))
        .output()
        .unwrap();
    if !o.status.success() {
        return Err(format!("coffer dump pg failed:\n{}", text(&o)));
    }
    let dst = format!("{src}_{}", if mode == Mode::Native { "n" } else { "s" });
    drop_db(pg, &dst);
    pg.create_database(&dst).unwrap();
    let result = (|| {
        match mode {
            Mode::Native => {
                let o = coffer_command()
                    .args(["restore", "pg"])
                    .arg(&archive)
                    .args(["-j", "4"])
                    .args(conn_args(pg, &dst))
                    .output()
                    .unwrap();
                if !o.status.success() {
                    return Err(format!("coffer restore pg -j 4 failed:\n{}", text(&o)));
                }
            }
            Mode::Sql => {
                let sql = archive.with_extension("sql");
                let o = coffer_command()
                    .args(["restore", "pg"])
                    .arg(&archive)
                    .arg("-f")
                    .arg(&sql)
                    .output()
                    .unwrap();
                if !o.status.success() {
                    return Err(format!("coffer restore pg -f failed:\n{}", text(&o)));
                }
                let out = pg
                    .client("psql")
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &dst, "-f"])
                    .arg(&sql)
                    .output()
                    .unwrap();
                if !out.status.success() {
                    return Err(format!(
                        "psql failed to load what coffer restore pg -f wrote:\n{}",
                        text(&out)
                    ));
                }
            }
        }
        let (a, b) = (
            oracle::schema(pg, src, &[]).unwrap(),
            oracle::schema(pg, &dst, &[]).unwrap(),
        );
        if let Some(d) = oracle::difference(&a, &b) {
            return Err(format!("pg_dump --schema-only differs:\n{d}"));
        }
        let (a, b) = (
            oracle::catalog(pg, src).unwrap(),
            oracle::catalog(pg, &dst).unwrap(),
        );
        if let Some(d) = oracle::difference(&a, &b) {
            return Err(format!(
                "the catalogs differ where pg_dump does not look:\n{d}"
            ));
        }
        let (a, b) = (
            oracle::data(pg, src).unwrap(),
            oracle::data(pg, &dst).unwrap(),
        );
        if let Some(d) = oracle::difference(&a, &b) {
            return Err(format!("the rows differ:\n{d}"));
        }
        Ok(())
    })();
    drop_db(pg, &dst);
    let _ = std::fs::remove_file(&archive);
    let _ = std::fs::remove_file(archive.with_extension("sql"));
    result
}

/// Loads `cases` into a new database `db` and round-trips it; the database is dropped.
fn batch_round_trip(
    pg: &PgServer,
    db: &str,
    cases: &[&Case],
    mode: Mode,
    dir: &Path,
) -> Result<(), Fail> {
    drop_db(pg, db);
    pg.create_database(db).unwrap();
    for case in cases {
        if let Err(e) = load(pg, db, &case.sql, dir) {
            drop_db(pg, db);
            return Err(Fail::Load(case.seed, e));
        }
    }
    let r = round_trip(pg, db, mode, dir).map_err(Fail::Differs);
    drop_db(pg, db);
    r
}

/// Why a batch failed.
enum Fail {
    /// The case of this seed does not load: a bug of the generator.
    Load(u64, String),
    /// What differed after the round trip (or what failed in it).
    Differs(String),
}

/// The cases of a failing batch that fail on their own, with what differed; the whole
/// batch when none does alone.
fn culprits<'a>(
    pg: &PgServer,
    cases: &[&'a Case],
    mode: Mode,
    dir: &Path,
    whole: &str,
) -> Vec<(&'a Case, String)> {
    fn split<'a>(
        pg: &PgServer,
        cases: &[&'a Case],
        mode: Mode,
        dir: &Path,
        out: &mut Vec<(&'a Case, String)>,
    ) {
        let db = format!("bisect_{}_{}", cases[0].seed, cases.len());
        if let Err(Fail::Differs(e) | Fail::Load(_, e)) =
            batch_round_trip(pg, &db, cases, mode, dir)
        {
            if cases.len() == 1 {
                out.push((cases[0], e));
            } else {
                let (a, b) = cases.split_at(cases.len() / 2);
                split(pg, a, mode, dir, out);
                split(pg, b, mode, dir, out);
            }
        }
    }
    let mut out = Vec::new();
    if cases.len() == 1 {
        out.push((cases[0], whole.to_string()));
    } else {
        let (a, b) = cases.split_at(cases.len() / 2);
        split(pg, a, mode, dir, &mut out);
        split(pg, b, mode, dir, &mut out);
    }
    if out.is_empty() {
        eprintln!(
            "schemagen: the batch from seed {} differs only as a whole",
            cases[0].seed
        );
        out.extend(cases.iter().map(|c| (*c, whole.to_string())));
    }
    out
}

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pg/generated")
}

/// Keeps a failing case as a regression case; returns where.
fn keep(case: &Case, mode: Mode, diff: &str) -> PathBuf {
    let dir = fixtures_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{}.sql", case.major, case.seed));
    let mut head = format!(
        "-- schemagen regression case: seed={} major={} ({})\n-- what differed:\n",
        case.seed,
        case.major,
        if mode == Mode::Native {
            "coffer restore pg -j 4"
        } else {
            "coffer restore pg -f, loaded by psql"
        }
    );
    for line in diff.lines().take(40) {
        let _ = writeln!(head, "--   {}", line.replace(['\r'], " "));
    }
    std::fs::write(&path, head + &case.sql).unwrap();
    path
}

#[test]
fn generated_schemas_round_trip_exactly() {
    let first = env_u64("COFFER_GEN_SEED", 1);
    let count = env_u64("COFFER_GEN_CASES", CI_CASES);
    let batch = env_u64("COFFER_GEN_BATCH", 20).max(1);
    let sql_every = env_u64("COFFER_GEN_SQL_EVERY", 3).max(1);
    let load_only = std::env::var("COFFER_GEN_LOAD_ONLY").is_ok_and(|v| !v.is_empty());
    let pg = server();
    let major = major(&pg);
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let mut failures: Vec<String> = Vec::new();
    let seeds: Vec<u64> = (first..first + count).collect();
    for (b, chunk) in seeds.chunks(batch as usize).enumerate() {
        let cases: Vec<Case> = chunk
            .iter()
            .map(|&s| schemagen::generate(s, major))
            .collect();
        let refs: Vec<&Case> = cases.iter().collect();
        let db = format!("gen_{}", chunk[0]);
        if load_only {
            drop_db(&pg, &db);
            pg.create_database(&db).unwrap();
            for case in &refs {
                if let Err(e) = load(&pg, &db, &case.sql, dir.path()) {
                    failures.push(format!("GENERATOR BUG seed={} major={major}", case.seed));
                    eprintln!(
                        "GENERATOR BUG seed={} major={major}: does not load:\n{e}",
                        case.seed
                    );
                    // the next cases still load in a database without this one
                    drop_db(&pg, &db);
                    pg.create_database(&db).unwrap();
                }
            }
            drop_db(&pg, &db);
        } else {
            let mut modes = vec![Mode::Native];
            if b as u64 % sql_every == 0 {
                modes.push(Mode::Sql);
            }
            let mut refs = refs;
            for mode in modes {
                let whole = loop {
                    match batch_round_trip(&pg, &db, &refs, mode, dir.path()) {
                        Ok(()) => break None,
                        Err(Fail::Differs(d)) => break Some(d),
                        Err(Fail::Load(seed, e)) => {
                            // loudly, and the rest of the batch still runs
                            eprintln!(
                                "GENERATOR BUG seed={seed} major={major}: the case does not load:\n{e}"
                            );
                            failures.push(format!("GENERATOR BUG seed={seed} major={major}"));
                            refs.retain(|c| c.seed != seed);
                        }
                    }
                };
                if let Some(whole) = whole {
                    for (case, diff) in culprits(&pg, &refs, mode, dir.path(), &whole) {
                        let kept = keep(case, mode, &diff);
                        eprintln!(
                            "seed={} major={major} ({mode:?}) differs; kept as {}:\n{diff}",
                            case.seed,
                            kept.display()
                        );
                        failures.push(format!("seed={} major={major} ({mode:?})", case.seed));
                    }
                }
            }
        }
        let done = (b as u64 + 1) * batch;
        eprintln!(
            "schemagen: {} of {count} cases, PostgreSQL {major}, {:.0?}, {} failing",
            done.min(count),
            started.elapsed(),
            failures.len()
        );
    }
    let last = first + count.saturating_sub(1);
    println!(
        "schemagen summary: {count} cases, seeds {first}..={last}, PostgreSQL {major}, {} failing, {:.0?}",
        failures.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} generated cases differ after a round trip through coffer (seeds {first}..={last}, PostgreSQL {major}):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn saved_regression_cases_round_trip_exactly() {
    let dir = fixtures_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        return;
    }
    let pg = server();
    let major = major(&pg);
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    for f in files {
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        // <major>-<seed> or <major>-<what>: a case of a newer major needs that server
        let made_for: u32 = name
            .split('-')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(13);
        if made_for > major {
            continue;
        }
        let sql = std::fs::read_to_string(&f).unwrap();
        for mode in [Mode::Native, Mode::Sql] {
            let db = format!("saved_{}", name.replace('-', "_"));
            drop_db(&pg, &db);
            pg.create_database(&db).unwrap();
            if let Err(e) = load(&pg, &db, &sql, tmp.path()) {
                panic!(
                    "{}: does not load into PostgreSQL {major}:\n{e}",
                    f.display()
                );
            }
            let r = round_trip(&pg, &db, mode, tmp.path());
            drop_db(&pg, &db);
            if let Err(d) = r {
                eprintln!(
                    "{} ({mode:?}) differs on PostgreSQL {major}:\n{d}",
                    f.display()
                );
                failures.push(format!("{} ({mode:?})", f.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "saved schemagen cases differ after a round trip on PostgreSQL {major}:\n{}",
        failures.join("\n")
    );
}

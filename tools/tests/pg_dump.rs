//! PostgreSQL dump against a real server, checked by oracles: the rich fixture is dumped
//! with `-j 4`, rendered to SQL, loaded with `psql` into a fresh database, and then
//! `pg_dump --schema-only` of source and copy must be identical after normalisation, and
//! every table's rows and every sequence's value equal.

mod common;

use common::pg::conn_args;
use common::{coffer, text};

use coffer_testkit::{PgServer, oracle};

/// Rows in the large table: "a table of a few million rows" (override with
/// COFFER_TEST_BIG_ROWS for quick local runs).
fn big_rows() -> u64 {
    std::env::var("COFFER_TEST_BIG_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000_000)
}

/// A server with the fixture (and what PostgreSQL 14 and 15 added to it) in `src`.
fn loaded_server() -> PgServer {
    let pg = PgServer::builder()
        .setting("max_connections", "50")
        .start()
        .expect("start postgres");
    common::pg::load_rich(&pg, "src", big_rows());
    pg
}

fn schema_of(pg: &PgServer, db: &str) -> String {
    oracle::schema(pg, db, &[]).unwrap()
}

fn data_of(pg: &PgServer, db: &str) -> String {
    oracle::data(pg, db).unwrap()
}

fn diff(a: &str, b: &str) -> String {
    oracle::difference(a, b).unwrap_or_default()
}

#[test]
fn rich_fixture_round_trips_through_sql() {
    let pg = loaded_server();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("src.coffer");
    // a small split threshold so the big table is copied as page ranges by several workers
    let mut args = vec![
        "dump".to_string(),
        "pg".into(),
        "-j".into(),
        "4".into(),
        "--split-mib".into(),
        "20".into(),
        "-f".into(),
        archive.to_str().unwrap().into(),
        "--json".into(),
    ];
    args.extend(conn_args(&pg, "src"));
    let o = coffer(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "dump failed:\n{}", text(&o));
    let summary: serde_json::Value =
        serde_json::from_slice(&o.stderr).expect("JSON summary on stderr");
    assert!(summary["rows"].as_u64().unwrap() >= big_rows(), "{summary}");

    let o = coffer(&["verify", archive.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = coffer(&["list", "--json", archive.to_str().unwrap()]);
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let big_parts = listing["manifest"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| {
            s["descriptor"]["name"]
                .as_str()
                .unwrap()
                .starts_with("public.big (part")
        })
        .count();
    if big_rows() >= 1_000_000 {
        assert!(
            big_parts >= 2,
            "the big table was not split: {big_parts} parts"
        );
    }

    let sql = dir.path().join("src.sql");
    let o = coffer(&[
        "restore",
        "pg",
        archive.to_str().unwrap(),
        "-f",
        sql.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.create_database("copy").unwrap();
    let out = pg
        .client("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "copy", "-f"])
        .arg(&sql)
        .output()
        .unwrap();
    if !out.status.success() {
        std::fs::copy(&sql, "/tmp/coffer-failed.sql").ok();
        panic!(
            "loading the rendered SQL failed (script kept in /tmp/coffer-failed.sql):\n{}",
            text(&out)
        );
    }

    let (a, b) = (schema_of(&pg, "src"), schema_of(&pg, "copy"));
    for expected in [
        "CREATE TABLE s1.every_column",
        "ATTACH PARTITION s1.events_2024_a",
        "CREATE POLICY no_big",
        "CREATE EVENT TRIGGER log_ddl",
        "GRANT SELECT(id) ON TABLE s1.tree",
        "CREATE AGGREGATE s1.sum_sq",
        "CREATE FOREIGN TABLE s1.remote_t",
        "CREATE PUBLICATION pub_some",
        "CREATE TEXT SEARCH CONFIGURATION s1.en_cfg",
    ] {
        assert!(
            a.contains(expected),
            "the oracle's dump lacks {expected:?}: is it dumping the right database?"
        );
    }
    if a != b {
        std::fs::write("/tmp/coffer-schema-src.sql", &a).ok();
        std::fs::write("/tmp/coffer-schema-copy.sql", &b).ok();
        panic!(
            "schemas differ (full dumps in /tmp/coffer-schema-*.sql):\n{}",
            diff(&a, &b)
        );
    }
    let (a, b) = (data_of(&pg, "src"), data_of(&pg, "copy"));
    assert_eq!(a, b, "data differs");
    assert!(
        a.contains("public.big: ")
            && a.contains("s1.standalone_seq: ")
            && a.contains("large object 90003: ")
            && a.contains("greeting"),
        "{a}"
    );

    // the same archive, restored natively over four connections
    pg.create_database("native").unwrap();
    let mut args = vec![
        "restore".to_string(),
        "pg".into(),
        archive.to_str().unwrap().into(),
        "-j".into(),
        "4".into(),
        "--json".into(),
    ];
    args.extend(conn_args(&pg, "native"));
    let o = coffer(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        o.status.code(),
        Some(0),
        "native restore failed:\n{}",
        text(&o)
    );
    let native = schema_of(&pg, "native");
    let src_schema = schema_of(&pg, "src");
    if native != src_schema {
        std::fs::write("/tmp/coffer-schema-native.sql", &native).ok();
        std::fs::write("/tmp/coffer-schema-src.sql", &src_schema).ok();
        panic!(
            "natively restored schema differs:\n{}",
            diff(&src_schema, &native)
        );
    }
    assert_eq!(data_of(&pg, "native"), a, "natively restored data differs");

    // and once more over it: --clean --if-exists drops every object of the archive first
    let mut args = vec![
        "restore".to_string(),
        "pg".into(),
        archive.to_str().unwrap().into(),
        "-j".into(),
        "2".into(),
        "--clean".into(),
        "--if-exists".into(),
    ];
    args.extend(conn_args(&pg, "native"));
    let o = coffer(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        o.status.code(),
        Some(0),
        "restore --clean --if-exists failed:\n{}",
        text(&o)
    );
    let again = schema_of(&pg, "native");
    if again != src_schema {
        panic!(
            "schema after --clean differs:\n{}",
            diff(&src_schema, &again)
        );
    }
    assert_eq!(data_of(&pg, "native"), a, "data after --clean differs");

    // from a pipe: no index, streams loaded as they arrive
    pg.create_database("piped").unwrap();
    let o = common::coffer_command()
        .args(["restore", "pg", "-", "-j", "2"])
        .args(conn_args(&pg, "piped"))
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "restore from a pipe failed:\n{}",
        text(&o)
    );
    assert!(text(&o).contains("held back"), "{}", text(&o));
    let piped = schema_of(&pg, "piped");
    if piped != src_schema {
        panic!(
            "schema restored from a pipe differs:\n{}",
            diff(&src_schema, &piped)
        );
    }
    assert_eq!(
        data_of(&pg, "piped"),
        a,
        "data restored from a pipe differs"
    );
}

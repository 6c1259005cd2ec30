//! Every supported PostgreSQL major, source and target (the version matrix of
//! scripts/servers): the rich fixture with what each major added (tests/fixtures/pg) is
//! dumped with `-j 4`, restored natively with `-j 4` and rendered as SQL for psql, and
//! both copies must be identical to the source by `pg_dump 18 --schema-only` and by every
//! table's rows. The upgrade path: archives of 13, 15 and 17 restored into 18 must equal
//! what pg_dump 18 and pg_restore 18 make of the same sources on the same server.

mod common;

use coffer_testkit::PgServer;
use common::pg::{assert_same, dump, load_rendered, load_rich, restore};
use common::text;

const BIG_ROWS: u64 = 30_000;

fn server(major: u32) -> PgServer {
    PgServer::builder()
        .major(major)
        .setting("max_connections", "50")
        .start()
        .unwrap_or_else(|e| panic!("PostgreSQL {major}: {e}"))
}

fn round_trip(major: u32) {
    let pg = server(major);
    load_rich(&pg, "src", BIG_ROWS);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("src.coffer");
    // a small split threshold, so that the big table is copied in page ranges
    dump(&pg, "src", &archive, &["-j", "4", "--split-mib", "1"]);
    pg.create_database("native").unwrap();
    let o = restore(&pg, &archive, "native", &["-j", "4"]);
    assert_eq!(o.status.code(), Some(0), "PostgreSQL {major}: {}", text(&o));
    assert_same(&format!("pg{major}-native"), &pg, "src", &pg, "native");
    load_rendered(&pg, &archive, "rendered");
    assert_same(&format!("pg{major}-sql"), &pg, "src", &pg, "rendered");
}

#[test]
fn postgresql_13_round_trips_exactly() {
    round_trip(13);
}

#[test]
fn postgresql_14_round_trips_exactly() {
    round_trip(14);
}

#[test]
fn postgresql_15_round_trips_exactly() {
    round_trip(15);
}

#[test]
fn postgresql_16_round_trips_exactly() {
    round_trip(16);
}

#[test]
fn postgresql_17_round_trips_exactly() {
    round_trip(17);
}

#[test]
fn postgresql_18_round_trips_exactly() {
    round_trip(18);
}

/// The roles of the fixture, in a target cluster of its own.
fn roles(pg: &PgServer) {
    pg.psql(
        "postgres",
        "CREATE ROLE coffer_owner; CREATE ROLE coffer_reader;",
    )
    .unwrap();
}

#[test]
fn archives_of_13_15_and_17_restore_into_18_as_pg_restore_18_restores_them() {
    let target = server(18);
    roles(&target);
    let dir = tempfile::tempdir().unwrap();
    for major in [13, 15, 17] {
        let source = server(major);
        load_rich(&source, "src", 2_000);
        // coffer's way
        let archive = dir.path().join(format!("pg{major}.coffer"));
        dump(&source, "src", &archive, &["-j", "2"]);
        let by_coffer = format!("coffer_from_{major}");
        target.create_database(&by_coffer).unwrap();
        let o = restore(&target, &archive, &by_coffer, &["-j", "4"]);
        assert_eq!(o.status.code(), Some(0), "from {major}: {}", text(&o));
        // the oracle: pg_dump 18 and pg_restore 18
        let dumped = dir.path().join(format!("pg{major}.pgdump"));
        let out = source
            .client("pg_dump")
            .args(["-Fc", "--no-sync", "-d", "src", "-f"])
            .arg(&dumped)
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_dump of {major}: {}", text(&out));
        let by_pg = format!("pg_restore_from_{major}");
        target.create_database(&by_pg).unwrap();
        let out = target
            .client("pg_restore")
            .args(["-j", "4", "--exit-on-error", "-d", &by_pg])
            .arg(&dumped)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_restore of {major}: {}",
            text(&out)
        );
        assert_same(
            &format!("upgrade-{major}-to-18"),
            &target,
            &by_pg,
            &target,
            &by_coffer,
        );
    }
}

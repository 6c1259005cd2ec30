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

/// The roles and the tablespace of the fixture, in a target cluster of its own.
fn globals(pg: &PgServer) {
    pg.psql(
        "postgres",
        "CREATE ROLE coffer_owner; CREATE ROLE coffer_reader; CREATE ROLE \"coffer \"\"odd\"\" role\";",
    )
    .unwrap();
    common::pg::tablespace(pg, "coffer_ts");
}

#[test]
fn archives_of_13_15_and_17_restore_into_18_as_pg_restore_18_restores_them() {
    let target = server(18);
    globals(&target);
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

/// What the planner knows of a database's tables and indexes: every `pg_stats` row and
/// every relation's size estimates.
fn planner_view(pg: &PgServer, db: &str) -> String {
    pg.psql(
        db,
        "SELECT format('%s.%s.%s %s: %s %s %s %s %s %s %s %s %s %s', schemaname, tablename, attname, inherited,
                       null_frac, avg_width, n_distinct, most_common_vals, most_common_freqs, histogram_bounds,
                       correlation, most_common_elems, most_common_elem_freqs, elem_count_histogram)
           FROM pg_stats WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
         UNION ALL
         SELECT format('%s.%s: %s pages, %s tuples, %s all-visible', n.nspname, c.relname, c.relpages, c.reltuples, c.relallvisible)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm', 'i') AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
         ORDER BY 1",
    )
    .unwrap()
}

#[test]
fn planner_statistics_are_restored_into_18_without_analyze() {
    // autovacuum off: nothing but the restore may write the target's statistics
    let target = PgServer::builder()
        .major(18)
        .setting("autovacuum", "off")
        .start()
        .unwrap();
    globals(&target);
    let dir = tempfile::tempdir().unwrap();
    for major in [15, 18] {
        let source = server(major);
        load_rich(&source, "src", 5_000);
        let expected = planner_view(&source, "src");
        assert!(
            expected.contains("public.big.grp f: ") && expected.contains("s1.tree: "),
            "the source has statistics: {expected}"
        );
        let archive = dir.path().join(format!("stats{major}.coffer"));
        dump(&source, "src", &archive, &["-j", "2"]);
        let db = format!("from_{major}");
        target.create_database(&db).unwrap();
        let o = restore(&target, &archive, &db, &["-j", "2"]);
        assert_eq!(o.status.code(), Some(0), "from {major}: {}", text(&o));
        let restored = planner_view(&target, &db);
        if let Some(d) = coffer_testkit::oracle::difference(&expected, &restored) {
            panic!("statistics restored from {major} into 18 differ:\n{d}");
        }
        // and without them, the target knows nothing until ANALYZE
        let bare = format!("bare_from_{major}");
        target.create_database(&bare).unwrap();
        let o = restore(&target, &archive, &bare, &["--no-statistics"]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        assert!(
            !planner_view(&target, &bare).contains("public.big.grp f: "),
            "--no-statistics restored statistics"
        );
    }
}

#[test]
fn analyze_gives_an_older_target_statistics() {
    // a target older than 18 cannot take the archive's statistics: the restore leaves
    // them out by itself, and --analyze makes them there
    let pg = PgServer::builder()
        .major(17)
        .setting("autovacuum", "off")
        .start()
        .unwrap();
    load_rich(&pg, "src", 5_000);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("src.coffer");
    dump(&pg, "src", &archive, &["-j", "2"]);
    for (db, extra, analysed) in [
        ("plain", &[][..], false),
        ("analysed", &["--analyze"][..], true),
    ] {
        pg.create_database(db).unwrap();
        let o = restore(&pg, &archive, db, &[&["-j", "2"][..], extra].concat());
        assert_eq!(o.status.code(), Some(0), "{db}: {}", text(&o));
        assert_eq!(
            planner_view(&pg, db).contains("public.big.grp f: "),
            analysed,
            "{db}: {}",
            text(&o)
        );
    }
}

#[test]
fn restore_options_leave_out_what_pg_dump_leaves_out() {
    let pg = server(18);
    load_rich(&pg, "src", 1_000);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("src.coffer");
    dump(&pg, "src", &archive, &["-j", "2"]);
    let left_out = [
        "--no-comments",
        "--no-publications",
        "--no-subscriptions",
        "--no-tablespaces",
        "--no-owner",
        "--no-privileges",
    ];
    // the oracle: pg_dump's own options of those names, on the source
    let expected = coffer_testkit::oracle::schema(&pg, "src", &left_out).unwrap();
    assert!(
        !expected.contains("COMMENT ON")
            && !expected.contains("PUBLICATION")
            && !expected.contains("SUBSCRIPTION")
    );
    pg.create_database("native").unwrap();
    let o = restore(
        &pg,
        &archive,
        "native",
        &[&["-j", "2"][..], &left_out].concat(),
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let native = coffer_testkit::oracle::schema(&pg, "native", &left_out).unwrap();
    if let Some(d) = coffer_testkit::oracle::difference(&expected, &native) {
        panic!("restored with {left_out:?}:\n{d}");
    }
    // and nothing of it is in the target at all
    // (CREATE EXTENSION brings the comments on the extensions and their objects)
    let counts = "SELECT (SELECT count(*) FROM pg_description d WHERE d.objoid >= 16384 AND d.classoid <> 'pg_extension'::regclass
                            AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.objid = d.objoid AND e.deptype = 'e')),
                         (SELECT count(*) FROM pg_publication)
                           + (SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())),
                         (SELECT count(*) FROM pg_class WHERE reltablespace <> 0 AND relnamespace = 's1'::regnamespace)";
    assert_ne!(pg.psql("src", counts).unwrap(), "0|0|0");
    assert_eq!(pg.psql("native", counts).unwrap(), "0|0|0");
    // the same for the rendered SQL
    let sql = dir.path().join("left_out.sql");
    let o = common::coffer_command()
        .args(["restore", "pg"])
        .arg(&archive)
        .args(left_out)
        .arg("-f")
        .arg(&sql)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let script = std::fs::read_to_string(&sql).unwrap();
    for absent in [
        "COMMENT ON",
        "PUBLICATION",
        "default_tablespace = coffer_ts",
        "OWNER TO",
        "GRANT ",
    ] {
        assert!(!script.contains(absent), "-f wrote {absent:?}");
    }
}

#[test]
fn no_toast_compression_restores_lz4_columns_into_a_server_without_lz4() {
    // Debian's PostgreSQL 15 has lz4; the version matrix's 18 does not
    let source = PgServer::start().unwrap();
    source.create_database("src").unwrap();
    let lz4 = source.psql(
        "src",
        "CREATE TABLE squeezed (id int PRIMARY KEY, body text COMPRESSION lz4, other text COMPRESSION pglz);
         INSERT INTO squeezed SELECT g, repeat(md5(g::text), 400), 'x' FROM generate_series(1, 50) g;
         SELECT pg_column_compression(body) FROM squeezed LIMIT 1",
    );
    let Ok(method) = lz4 else {
        panic!("Debian's PostgreSQL 15 should support lz4: {lz4:?}");
    };
    assert_eq!(method, "lz4");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("lz4.coffer");
    dump(&source, "src", &archive, &[]);
    let target = server(18);
    target.create_database("plain").unwrap();
    let o = restore(&target, &archive, "plain", &[]);
    assert_ne!(
        o.status.code(),
        Some(0),
        "18 without lz4 took an lz4 column: {}",
        text(&o)
    );
    assert!(text(&o).contains("lz4"), "{}", text(&o));
    target.create_database("flagged").unwrap();
    let o = restore(&target, &archive, "flagged", &["--no-toast-compression"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        target
            .psql(
                "flagged",
                "SELECT count(*), bool_and(body = repeat(md5(id::text), 400)),
                        (SELECT string_agg(attcompression::text, ',' ORDER BY attnum) FROM pg_attribute
                          WHERE attrelid = 'squeezed'::regclass AND attnum > 0)
                 FROM squeezed"
            )
            .unwrap(),
        "50|t|,,"
    );
}

#[test]
fn the_user_rows_of_an_extensions_configuration_tables_are_dumped() {
    // 18 finds extensions in directories of one's own (extension_control_path)
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pg/extension");
    let share = dir.path().join("extension");
    std::fs::create_dir(&share).unwrap();
    std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["coffer_ext.control", "coffer_ext--1.0.sql"] {
        std::fs::copy(fixture.join(f), share.join(f)).unwrap();
        std::fs::set_permissions(share.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let pg = PgServer::builder()
        .major(18)
        .setting(
            "extension_control_path",
            format!("$system:{}", dir.path().display()),
        )
        .start()
        .unwrap();
    pg.create_database("src").unwrap();
    pg.psql(
        "src",
        "CREATE EXTENSION coffer_ext;
         INSERT INTO coffer_ext_settings VALUES ('mine', 'by the user', false);
         SELECT setval('coffer_ext_counter', 42);
         INSERT INTO coffer_ext_internal VALUES (2);",
    )
    .unwrap();
    let archive = dir.path().join("ext.coffer");
    dump(&pg, "src", &archive, &["-j", "2"]);
    pg.create_database("dst").unwrap();
    let o = restore(&pg, &archive, "dst", &["-j", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let rows =
        "SELECT (SELECT string_agg(k || '=' || builtin, ',' ORDER BY k) FROM coffer_ext_settings),
                       (SELECT last_value FROM coffer_ext_counter),
                       (SELECT string_agg(x::text, ',' ORDER BY x) FROM coffer_ext_internal)";
    // the user's configuration row and sequence value come back; the extension's own
    // table gets what CREATE EXTENSION gives it, as with pg_dump
    assert_eq!(
        pg.psql("dst", rows).unwrap(),
        "mine=false,shipped=true|42|1"
    );
    assert_eq!(
        pg.psql("src", rows).unwrap(),
        "mine=false,shipped=true|42|1,2"
    );
}

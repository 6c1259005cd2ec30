//! Native restore against a real server: sections, --create, -l, a missing role, an
//! existing object, and a damaged frame.

mod common;

use std::path::Path;

use coffer_testkit::PgServer;
use common::{coffer, s, text};

fn conn(pg: &PgServer, db: &str) -> Vec<String> {
    vec![
        "-h".into(),
        pg.host().into(),
        "-p".into(),
        pg.port().to_string(),
        "-U".into(),
        pg.user().into(),
        "-d".into(),
        db.into(),
    ]
}

fn run(args: &[String]) -> std::process::Output {
    coffer(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn restore(pg: &PgServer, archive: &Path, db: &str, extra: &[&str]) -> std::process::Output {
    let mut a: Vec<String> = vec!["restore".into(), "pg".into(), s(archive).into()];
    if !extra.contains(&"-j") {
        a.extend(["-j".into(), "2".into()]);
    }
    a.extend(extra.iter().map(|x| x.to_string()));
    a.extend(conn(pg, db));
    run(&a)
}

/// What the oracle compares: rows of both tables, and the schema's indexes and owners.
fn state(pg: &PgServer, db: &str) -> String {
    pg.psql(
        db,
        "SELECT string_agg(format('%s', p), ';' ORDER BY p.id) FROM app.parent p;
         SELECT string_agg(format('%s', c), ';' ORDER BY c.id) FROM app.child c;
         SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'app';
         SELECT string_agg(tablename || ':' || tableowner, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'app';",
    )
    .unwrap()
}

fn server_with_source() -> PgServer {
    let pg = PgServer::start().unwrap();
    pg.psql("postgres", "CREATE ROLE app_owner; CREATE DATABASE src;")
        .unwrap();
    pg.psql(
        "src",
        "CREATE SCHEMA app;
         CREATE TABLE app.parent (id int PRIMARY KEY, name text UNIQUE);
         CREATE TABLE app.child (id int PRIMARY KEY, parent int REFERENCES app.parent, note text);
         CREATE INDEX child_note ON app.child (note);
         INSERT INTO app.parent SELECT g, 'p' || g FROM generate_series(1, 500) g;
         INSERT INTO app.child SELECT g, 1 + g % 500, repeat('n', g % 50) FROM generate_series(1, 20000) g;
         ALTER TABLE app.child OWNER TO app_owner;",
    )
    .unwrap();
    pg
}

fn dump(pg: &PgServer, dir: &Path) -> std::path::PathBuf {
    dump_with(pg, &dir.join("src.coffer"), &[])
}

/// `coffer dump pg` of database src with `extra` options into `archive`, which must work.
fn dump_with(pg: &PgServer, archive: &Path, extra: &[&str]) -> std::path::PathBuf {
    let mut a: Vec<String> = vec!["dump".into(), "pg".into(), "-f".into(), s(archive).into()];
    a.extend(extra.iter().map(|x| x.to_string()));
    a.extend(conn(pg, "src"));
    let o = run(&a);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    archive.to_path_buf()
}

#[test]
fn sections_create_and_list() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let expected = state(&pg, "src");

    let o = coffer(&["restore", "pg", s(&archive), "-l"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let listing = String::from_utf8_lossy(&o.stdout);
    assert!(
        listing.contains("TABLE DATA app child")
            && listing.contains("FK CONSTRAINT app child child_parent_fkey"),
        "{listing}"
    );

    // schema first: tables and indexes, no rows; then the data alone
    pg.create_database("staged").unwrap();
    let o = restore(&pg, &archive, "staged", &["--schema-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        pg.psql("staged", "SELECT count(*) FROM app.child").unwrap(),
        "0"
    );
    assert!(
        pg.psql(
            "staged",
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'app'"
        )
        .unwrap()
        .contains("child_note")
    );
    let o = restore(&pg, &archive, "staged", &["--data-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(state(&pg, "staged"), expected);
    // COPY FREEZE only into tables this restore created (it truncates first)
    let frozen_pages = |db: &str| -> u64 {
        pg.psql(
            db,
            "CREATE EXTENSION IF NOT EXISTS pg_visibility; SELECT all_frozen FROM pg_visibility_map_summary('app.child')",
        )
        .unwrap()
        .trim()
        .parse()
        .unwrap()
    };
    assert_eq!(frozen_pages("staged"), 0);

    // --clean without --if-exists drops what the archive holds, and there is nothing yet
    pg.create_database("empty").unwrap();
    let o = restore(&pg, &archive, "empty", &["--clean"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        text(&o).contains("dropping") && text(&o).contains("does not exist"),
        "{}",
        text(&o)
    );
    let o = restore(&pg, &archive, "empty", &["--if-exists"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--if-exists needs --clean: {}",
        text(&o)
    );
    let o = restore(&pg, &archive, "staged", &["--clean", "--if-exists"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(state(&pg, "staged"), expected);
    assert!(frozen_pages("staged") > 0, "re-created tables load frozen");

    // a table that existed is never emptied: with --no-exit-on-error its CREATE fails,
    // and its rows stay beside the restored ones
    pg.create_database("busy").unwrap();
    let o = restore(&pg, &archive, "busy", &["--schema-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.psql("busy", "INSERT INTO app.parent VALUES (100000, 'mine')")
        .unwrap();
    let o = restore(&pg, &archive, "busy", &["--no-exit-on-error"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(
        pg.psql("busy", "SELECT count(*) FROM app.parent").unwrap(),
        "501"
    );

    // --create makes the archive's database, connecting through another one
    pg.psql("postgres", "DROP DATABASE src").unwrap();
    let o = restore(&pg, &archive, "postgres", &["--create"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(state(&pg, "src"), expected);
}

#[test]
fn a_missing_role_suggests_no_owner_and_an_existing_object_is_named() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let expected = state(&pg, "src");
    pg.psql(
        "src",
        "REASSIGN OWNED BY app_owner TO postgres; DROP OWNED BY app_owner;",
    )
    .unwrap();
    pg.psql(
        "postgres",
        "DROP ROLE app_owner; CREATE DATABASE a; CREATE DATABASE b;",
    )
    .unwrap();

    let o = restore(&pg, &archive, "a", &[]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        text(&o).contains("app_owner") && text(&o).contains("--no-owner"),
        "{}",
        text(&o)
    );
    // in one transaction, the failure leaves nothing behind
    pg.psql("postgres", "CREATE DATABASE one").unwrap();
    let o = restore(&pg, &archive, "one", &["-1", "-j", "1"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert_eq!(
        pg.psql(
            "one",
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'app'"
        )
        .unwrap(),
        "0"
    );
    let o = restore(&pg, &archive, "one", &["-1"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "-1 needs -j 1 (the helper's default is 2): {}",
        text(&o)
    );
    let o = restore(&pg, &archive, "one", &["-1", "-j", "1", "--no-owner"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        state(&pg, "one"),
        expected.replace("child:app_owner", "child:postgres")
    );

    // carrying on: everything else is restored, and the failure is listed
    pg.psql("postgres", "CREATE DATABASE c").unwrap();
    let o = restore(&pg, &archive, "c", &["--no-exit-on-error"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        text(&o).contains("1 part of the archive could not be restored")
            && text(&o).contains("app_owner"),
        "{}",
        text(&o)
    );
    assert_eq!(
        pg.psql("c", "SELECT count(*) FROM app.child").unwrap(),
        "20000"
    );
    assert_eq!(
        pg.psql(
            "c",
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'app'"
        )
        .unwrap(),
        "4"
    );

    let o = restore(&pg, &archive, "b", &["--no-owner"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        state(&pg, "b"),
        expected.replace("child:app_owner", "child:postgres")
    );

    // restoring again over what is there names the first object in the way
    let o = restore(&pg, &archive, "b", &["--no-owner"]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(
        text(&o).contains("SCHEMA app") && text(&o).contains("already exists"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_damaged_frame_names_the_table_and_frame() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    // flip a byte in the payload of the child table's first data frame
    let o = coffer(&["list", "--json", s(&archive)]);
    let listing: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let child = listing["manifest"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["descriptor"]["name"] == "app.child")
        .unwrap()["id"]
        .as_u64()
        .unwrap();
    let a = coffer_format::MappedArchive::open(&archive, None).unwrap();
    let stream = a
        .streams()
        .iter()
        .find(|st| u64::from(st.id) == child)
        .unwrap()
        .clone();
    let frame = a.data_entries(&stream)[0];
    drop(a);
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[(frame.file_offset + 200) as usize] ^= 0x10;
    let damaged = dir.path().join("damaged.coffer");
    std::fs::write(&damaged, &bytes).unwrap();

    pg.psql("postgres", "CREATE DATABASE d").unwrap();
    let o = restore(&pg, &damaged, "d", &[]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let msg = text(&o);
    assert!(
        msg.contains("app.child")
            && msg.contains(&format!("seq {}", frame.seq))
            && msg.contains("BLAKE3"),
        "{msg}"
    );
    let o = coffer(&["verify", s(&damaged)]);
    assert_eq!(o.status.code(), Some(1));
}

fn restore_test(pg: &PgServer, archive: &Path, extra: &[&str]) -> std::process::Output {
    let mut a: Vec<String> = vec!["restore-test".into(), s(archive).into()];
    a.extend(extra.iter().map(|x| x.to_string()));
    a.extend([
        "-h".into(),
        pg.host().into(),
        "-p".into(),
        pg.port().to_string(),
        "-U".into(),
        pg.user().into(),
    ]);
    run(&a)
}

#[test]
fn restore_test_passes_a_good_archive_and_names_the_table_of_a_corrupted_frame() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let exists = |db: &str| {
        pg.psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
        )
        .unwrap()
            == "1"
    };

    let o = restore_test(&pg, &archive, &["--test-db", "rt_good", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["passed"], true);
    assert_eq!(report["report"]["tables"].as_array().unwrap().len(), 2);
    assert!(
        report["report"]["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["kind"] == "indexes" && o["found"] == 4),
        "{report}"
    );
    assert!(!exists("rt_good"), "the test database is dropped");

    let o = restore_test(&pg, &archive, &["--test-db", "rt_kept", "--keep"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(exists("rt_kept"));
    let o = restore_test(&pg, &archive, &["--test-db", "rt_kept"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an existing database is never reused: {}",
        text(&o)
    );

    // one corrupted frame of app.child
    let a = coffer_format::MappedArchive::open(&archive, None).unwrap();
    let stream = a
        .streams()
        .iter()
        .find(|st| st.descriptor.name == "app.child")
        .unwrap()
        .clone();
    let frame = a.data_entries(&stream)[0];
    drop(a);
    let mut bytes = std::fs::read(&archive).unwrap();
    bytes[(frame.file_offset + 300) as usize] ^= 0x01;
    let damaged = dir.path().join("damaged.coffer");
    std::fs::write(&damaged, &bytes).unwrap();
    let o = restore_test(&pg, &damaged, &["--test-db", "rt_bad"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("FAILED") && text(&o).contains("app.child"),
        "{}",
        text(&o)
    );
    assert!(!exists("rt_bad"));
}

#[test]
fn a_truncated_pipe_fails_and_holds_back_post_data() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let bytes = std::fs::read(&archive).unwrap();
    let cut = dir.path().join("cut.coffer");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    pg.psql("postgres", "CREATE DATABASE p").unwrap();
    let o = common::coffer_command()
        .args(["restore", "pg", "-"])
        .args(conn(&pg, "p"))
        .stdin(std::fs::File::open(&cut).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
    // the schema arrived first; what comes after the data (indexes, keys) was held back
    assert_eq!(
        pg.psql(
            "p",
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'app'"
        )
        .unwrap(),
        "0"
    );
    let o = common::coffer_command()
        .args(["restore", "pg", "-", "-l"])
        .stdin(std::fs::File::open(&archive).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn tables_schemas_and_edited_lists_select_what_is_restored() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let count = |db: &str, sql: &str| pg.psql(db, sql).unwrap();

    // -t parent: the table, its data and indexes; not child, whose foreign key needs parent
    pg.psql("postgres", "CREATE DATABASE t1").unwrap();
    pg.psql("t1", "CREATE SCHEMA app").unwrap();
    let o = restore(&pg, &archive, "t1", &["-t", "parent"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(count("t1", "SELECT count(*) FROM app.parent"), "500");
    assert_eq!(
        count(
            "t1",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'"
        ),
        "1"
    );
    assert_eq!(
        count(
            "t1",
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'parent'"
        ),
        "2",
        "primary key and unique index"
    );

    // -n app creates the schema too; -T child leaves child (and its key) out
    pg.psql("postgres", "CREATE DATABASE n1").unwrap();
    let o = restore(&pg, &archive, "n1", &["-n", "app", "-T", "child"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        count(
            "n1",
            "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'app'"
        ),
        "parent"
    );

    // -L: the listing with child's data commented out
    let o = coffer(&["restore", "pg", s(&archive), "-l"]);
    let listing: String = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| {
            if l.contains("TABLE DATA app child") {
                format!(";{l}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, listing).unwrap();
    pg.psql("postgres", "CREATE DATABASE l1").unwrap();
    let o = restore(&pg, &archive, "l1", &["-L", s(&list)]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(count("l1", "SELECT count(*) FROM app.child"), "0");
    assert_eq!(count("l1", "SELECT count(*) FROM app.parent"), "500");
}

#[test]
fn one_table_restores_beside_the_original_with_target_schema() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    pg.psql(
        "src",
        "GRANT USAGE ON SCHEMA app TO app_owner; DELETE FROM app.child WHERE parent > 400; DELETE FROM app.parent WHERE id > 400;",
    )
    .unwrap();

    // the runbook's partial restore, into the live database
    let o = restore(
        &pg,
        &archive,
        "src",
        &["-t", "parent", "--target-schema", "restore_temp"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        pg.psql("src", "SELECT count(*) FROM restore_temp.parent")
            .unwrap(),
        "500"
    );
    assert_eq!(
        pg.psql("src", "SELECT count(*) FROM app.parent").unwrap(),
        "400",
        "the original is untouched"
    );
    assert_eq!(
        pg.psql(
            "src",
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'restore_temp'"
        )
        .unwrap(),
        "2"
    );
    // what went missing, found by comparing the two
    assert_eq!(
        pg.psql("src", "SELECT count(*) FROM restore_temp.parent r WHERE NOT EXISTS (SELECT 1 FROM app.parent p WHERE p.id = r.id)").unwrap(),
        "100"
    );
    let o = restore(&pg, &archive, "src", &["--target-schema", "x"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "--target-schema needs -t: {}",
        text(&o)
    );
}

/// A small table's indexes and key are built before a bigger table, loading on the other
/// connection, has committed. Each index build in the target records its snapshot; the
/// big table loads in one transaction (COPY FREEZE keeps its xid as the rows' xmin), which
/// must not be visible (committed) in the small table's builds' snapshots, whether it was
/// still running or had not begun yet, and must be in its own index's.
#[test]
fn a_loaded_tables_indexes_build_while_a_bigger_table_still_loads() {
    let pg = PgServer::start().unwrap();
    pg.psql("postgres", "CREATE DATABASE src; CREATE DATABASE dst;")
        .unwrap();
    pg.psql(
        "src",
        "CREATE TABLE big (id int, pad text);
         INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 300000) g;
         CREATE INDEX big_id ON big (id);
         CREATE TABLE small (id int PRIMARY KEY, v text);
         INSERT INTO small SELECT g, 'v' || g FROM generate_series(1, 100) g;
         CREATE INDEX small_v ON small (v);",
    )
    .unwrap();
    pg.psql(
        "dst",
        "CREATE SCHEMA probe;
         CREATE TABLE probe.builds (name text, snap pg_snapshot);
         CREATE FUNCTION probe.log() RETURNS event_trigger LANGUAGE plpgsql AS $$
         DECLARE r record;
         BEGIN
           FOR r IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
             INSERT INTO probe.builds VALUES (r.object_identity, pg_current_snapshot());
           END LOOP;
         END $$;
         CREATE EVENT TRIGGER log_builds ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
           EXECUTE FUNCTION probe.log();",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let o = restore(&pg, &archive, "dst", &["-j", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let builds = pg
        .psql(
            "dst",
            "SELECT string_agg(name || ':' || pg_visible_in_snapshot(
                                   (SELECT min(xmin::text)::xid8 FROM public.big), snap),
                               ' ' ORDER BY name)
             FROM probe.builds;
             SELECT count(DISTINCT xmin::text) || ' ' || count(*) FROM public.big;",
        )
        .unwrap();
    assert_eq!(
        builds.trim(),
        "public.big_id:true public.small_pkey:false public.small_v:false\n1 300000",
        "index builds (name: big's rows committed when it was built)"
    );
}

/// `--role`: every session sets the role, so with `--no-owner` what the restore creates
/// belongs to it; a role that does not exist is a clear error.
#[test]
fn role_makes_the_restore_run_as_that_role() {
    let pg = server_with_source();
    pg.psql(
        "postgres",
        "CREATE DATABASE dst; GRANT CREATE ON DATABASE dst TO app_owner;",
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let o = restore(&pg, &archive, "dst", &["--no-owner", "--role", "app_owner"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let owners = pg
        .psql(
            "dst",
            "SELECT string_agg(DISTINCT tableowner, ',') FROM pg_tables WHERE schemaname = 'app';
             SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'app';",
        )
        .unwrap();
    assert_eq!(owners.trim(), "app_owner\napp_owner");
    assert_eq!(
        state(&pg, "dst").lines().take(2).collect::<Vec<_>>(),
        state(&pg, "src").lines().take(2).collect::<Vec<_>>()
    );

    // with --create, the database too is created by the role
    // (the archive's database name, src, is taken by the source: move the source aside)
    pg.psql(
        "postgres",
        "ALTER DATABASE src RENAME TO src_orig; ALTER ROLE app_owner CREATEDB;
         CREATE DATABASE maint;",
    )
    .unwrap();
    let o = restore(
        &pg,
        &archive,
        "maint",
        &["--create", "--no-owner", "--role", "app_owner"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let owner = pg
        .psql(
            "postgres",
            "SELECT datdba::regrole FROM pg_database WHERE datname = 'src';",
        )
        .unwrap();
    assert_eq!(owner.trim(), "app_owner");

    pg.psql("postgres", "CREATE DATABASE dst2;").unwrap();
    let o = restore(&pg, &archive, "dst2", &["--role", "nobody_here"]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        text(&o).contains("--role") && text(&o).contains("nobody_here"),
        "{}",
        text(&o)
    );
}

/// `--disable-triggers`: a data-only restore into a schema whose triggers would refuse
/// the rows loads them with triggers (and foreign-key checks) off; without it, the
/// trigger stops the load.
#[test]
fn disable_triggers_loads_data_past_triggers() {
    let pg = server_with_source();
    pg.psql(
        "src",
        "CREATE FUNCTION app.refuse() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN RAISE EXCEPTION 'no rows may be added to %', TG_TABLE_NAME; END$$;
         CREATE TRIGGER refuse BEFORE INSERT ON app.child FOR EACH ROW EXECUTE FUNCTION app.refuse();",
    )
    .unwrap();
    pg.psql("postgres", "CREATE DATABASE dst;").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let o = restore(&pg, &archive, "dst", &["--schema-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = restore(&pg, &archive, "dst", &["--data-only"]);
    assert_ne!(o.status.code(), Some(0), "the trigger must stop the load");
    assert!(
        text(&o).contains("no rows may be added to child"),
        "{}",
        text(&o)
    );
    pg.psql("dst", "TRUNCATE app.child, app.parent;").unwrap();
    let o = restore(&pg, &archive, "dst", &["--data-only", "--disable-triggers"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(state(&pg, "dst"), state(&pg, "src"));

    // a login that is not a superuser may not turn triggers off: said before any row moves
    pg.psql(
        "dst",
        "CREATE ROLE loader LOGIN; GRANT ALL ON SCHEMA app TO loader;
         GRANT ALL ON ALL TABLES IN SCHEMA app TO loader; TRUNCATE app.child, app.parent;",
    )
    .unwrap();
    let mut a: Vec<String> = vec![
        "restore".into(),
        "pg".into(),
        s(&archive).into(),
        "--data-only".into(),
        "--disable-triggers".into(),
    ];
    a.extend(conn(&pg, "dst"));
    let user = a.iter().position(|x| x == "-U").unwrap() + 1;
    a[user] = "loader".into();
    let o = run(&a);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o));
    assert!(text(&o).contains("needs a superuser"), "{}", text(&o));
    assert_eq!(
        pg.psql("dst", "SELECT count(*) FROM app.parent;")
            .unwrap()
            .trim(),
        "0"
    );
}

/// The server drops a restore connection while a table loads (`pg_terminate_backend`, as
/// a restart or a network cut would): the restore stops with an error that says what
/// had been loaded and built before it.
#[test]
fn a_connection_dropped_mid_restore_is_reported_with_what_was_done() {
    let pg = server_with_source();
    pg.psql("postgres", "CREATE DATABASE dst;").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let o = restore(&pg, &archive, "dst", &["--section", "pre-data"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // in the target only: app.child's COPY waits on its first row, long enough to cut it
    pg.psql(
        "dst",
        "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN PERFORM pg_sleep(30); RETURN NEW; END$$;
         CREATE TRIGGER slow BEFORE INSERT ON app.child FOR EACH ROW EXECUTE FUNCTION public.slow();",
    )
    .unwrap();
    let mut a: Vec<String> = vec![
        "restore".into(),
        "pg".into(),
        s(&archive).into(),
        "--data-only".into(),
        "-j".into(),
        "1".into(),
    ];
    a.extend(conn(&pg, "dst"));
    let child = common::coffer_command()
        .args(&a)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        let killed = pg
            .psql(
                "postgres",
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = 'dst' AND wait_event = 'PgSleep'",
            )
            .unwrap();
        if killed.trim() == "1" {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the COPY never waited in the trigger"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let o = child.wait_with_output().unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    let msg = text(&o);
    // -j 1, a data-only restore: app.parent first (app.child's foreign key refers to it),
    // then app.child, cut off
    assert!(
        msg.contains("app.child") && msg.contains("before the failure: data 1 of 2 units"),
        "{msg}"
    );
}

/// `--exclude-table-data` (pg_dump's): the table, its indexes and constraints are there
/// after the restore, its rows are not; the restore test passes on such an archive.
#[test]
fn excluded_table_data_leaves_the_table_defined_and_empty() {
    let pg = server_with_source();
    pg.psql("postgres", "CREATE DATABASE dst;").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump_with(
        &pg,
        &dir.path().join("nodata.coffer"),
        &["--exclude-table-data", "app.child"],
    );
    let o = restore(&pg, &archive, "dst", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let got = pg
        .psql(
            "dst",
            "SELECT (SELECT count(*) FROM app.parent) || ' ' || (SELECT count(*) FROM app.child);
             SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE tablename = 'child';",
        )
        .unwrap();
    assert_eq!(got.trim(), "500 0\nchild_note,child_pkey");
    let o = restore_test(&pg, &archive, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// `dump pg -s` (pg_dump's `--schema-only`): everything but rows, sequence values and
/// large objects; the restored schema equals the source's (pg_dump --schema-only of both,
/// the oracle), every table is empty, and the restore test passes.
#[test]
fn a_schema_only_dump_restores_the_schema_and_no_rows() {
    let pg = server_with_source();
    pg.psql(
        "src",
        "CREATE SEQUENCE app.counter; SELECT nextval('app.counter'); SELECT lo_from_bytea(0, 'blob');",
    )
    .unwrap();
    pg.psql("postgres", "CREATE DATABASE dst;").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump_with(&pg, &dir.path().join("schema.coffer"), &["-s"]);
    let o = restore(&pg, &archive, "dst", &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let schema = |db: &str| {
        let o = std::process::Command::new("pg_dump")
            .args([
                "--schema-only",
                "-h",
                pg.host(),
                "-p",
                &pg.port().to_string(),
            ])
            .args(["-U", pg.user(), db])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        // pg_dump's \restrict lines carry a random key per run
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(schema("dst"), schema("src"));
    let got = pg
        .psql(
            "dst",
            "SELECT (SELECT count(*) FROM app.parent) || ' ' || (SELECT count(*) FROM app.child)
                    || ' ' || (SELECT last_value FROM app.counter) || ' ' || (SELECT is_called FROM app.counter)
                    || ' ' || (SELECT count(*) FROM pg_largeobject_metadata);",
        )
        .unwrap();
    assert_eq!(got.trim(), "0 0 1 false 0");
    let o = restore_test(&pg, &archive, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

/// A data-only restore into a schema that has its foreign keys already: a referencing
/// table's rows wait for the rows they refer to, even when the referenced table is the
/// smaller one (loaded last, largest first) and slow to commit (a statement trigger in the
/// target holds its COPY for a second). Without that order, app.child's COPY would be
/// checked against an app.parent that is still empty.
#[test]
fn a_data_only_restore_loads_referenced_tables_first() {
    let pg = server_with_source();
    pg.psql("postgres", "CREATE DATABASE dst;").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let o = restore(&pg, &archive, "dst", &["--schema-only"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.psql(
        "dst",
        "CREATE FUNCTION public.slow() RETURNS trigger LANGUAGE plpgsql AS
           $$BEGIN PERFORM pg_sleep(1); RETURN NULL; END$$;
         CREATE TRIGGER slow AFTER INSERT ON app.parent FOR EACH STATEMENT EXECUTE FUNCTION public.slow();",
    )
    .unwrap();
    let o = restore(&pg, &archive, "dst", &["--data-only", "-j", "2"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(state(&pg, "dst"), state(&pg, "src"));
}

/// A restore test whose server cannot be reached says so (exit 6), not "damaged" (exit 1):
/// it is no verdict on the archive.
#[test]
fn restore_test_with_no_server_is_a_connect_error() {
    let pg = server_with_source();
    let dir = tempfile::tempdir().unwrap();
    let archive = dump(&pg, dir.path());
    let port = coffer_testkit::free_port().unwrap().to_string();
    let o = run(&[
        "restore-test".into(),
        s(&archive).into(),
        "-h".into(),
        "127.0.0.1".into(),
        "-p".into(),
        port,
        "-U".into(),
        pg.user().into(),
    ]);
    assert_eq!(o.status.code(), Some(6), "{}", text(&o));
}

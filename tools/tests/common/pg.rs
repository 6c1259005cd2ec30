//! PostgreSQL round trips through the `coffer` binary, judged by the test kit's oracles
//! (`pg_dump --schema-only` and per-table row digests of both sides).

use std::path::Path;
use std::process::Output;

use coffer_testkit::{PgServer, oracle};

use super::{coffer_command, text};

/// `-h -p -U -d` for `db` on `pg`.
pub fn conn_args(pg: &PgServer, db: &str) -> Vec<String> {
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

/// Runs the SQL script `sql` in `db` with psql, stopping at the first error.
pub fn load(pg: &PgServer, db: &str, sql: &str) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), sql).unwrap();
    let out = pg
        .client("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the script failed to load into {db}:\n{}",
        text(&out)
    );
}

/// `coffer dump pg` of `db` into `archive`, which must succeed.
pub fn dump(pg: &PgServer, db: &str, archive: &Path, extra: &[&str]) -> Output {
    let o = coffer_command()
        .args(["dump", "pg", "-f"])
        .arg(archive)
        .args(extra)
        .args(conn_args(pg, db))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "dump of {db} failed:\n{}",
        text(&o)
    );
    o
}

/// `coffer restore pg archive` into `db` (which must exist) with `extra` options.
pub fn restore(pg: &PgServer, archive: &Path, db: &str, extra: &[&str]) -> Output {
    coffer_command()
        .args(["restore", "pg"])
        .arg(archive)
        .args(extra)
        .args(conn_args(pg, db))
        .output()
        .unwrap()
}

/// Panics, with a diff, unless `pg_dump --schema-only`, the catalog facts pg_dump does not
/// show ([`oracle::catalog`]) and the rows of database `a` on `pa` and `b` on `pb` are
/// identical. Both dumps are kept under
/// `$TMPDIR/coffer-oracle/<label>/` when they differ.
pub fn assert_same(label: &str, pa: &PgServer, a: &str, pb: &PgServer, b: &str) {
    let keep = |what: &str, x: &str, y: &str| {
        let dir = std::env::temp_dir().join("coffer-oracle").join(label);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{what}-expected.txt")), x).unwrap();
        std::fs::write(dir.join(format!("{what}-actual.txt")), y).unwrap();
        dir
    };
    let (x, y) = (
        oracle::schema(pa, a, &[]).unwrap(),
        oracle::schema(pb, b, &[]).unwrap(),
    );
    if let Some(d) = oracle::difference(&x, &y) {
        let dir = keep("schema", &x, &y);
        panic!(
            "{label}: pg_dump --schema-only of {b} differs from {a} (both in {}):\n{d}",
            dir.display()
        );
    }
    let (x, y) = (
        oracle::catalog(pa, a).unwrap(),
        oracle::catalog(pb, b).unwrap(),
    );
    if let Some(d) = oracle::difference(&x, &y) {
        let dir = keep("catalog", &x, &y);
        panic!(
            "{label}: the catalogs of {b} differ from {a} where pg_dump does not look (both in {}):\n{d}",
            dir.display()
        );
    }
    let (x, y) = (oracle::data(pa, a).unwrap(), oracle::data(pb, b).unwrap());
    if let Some(d) = oracle::difference(&x, &y) {
        let dir = keep("data", &x, &y);
        panic!(
            "{label}: the rows of {b} differ from {a} (both in {}):\n{d}",
            dir.display()
        );
    }
}

/// The server's major version (`server_version_num / 10000`).
pub fn major(pg: &PgServer) -> u32 {
    pg.psql("postgres", "SHOW server_version_num")
        .unwrap()
        .parse::<u32>()
        .unwrap()
        / 10000
}

/// Creates database `db` holding the rich fixture (tests/fixtures/pg): `rich.sql`, then
/// each `rich-NN.sql` for NN up to the server's major, and a table `public.big` of
/// `big_rows` rows; creates the roles and the tablespace (`coffer_ts`) it uses if they
/// are missing.
pub fn load_rich(pg: &PgServer, db: &str, big_rows: u64) {
    pg.psql(
        "postgres",
        "DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffer_owner') THEN CREATE ROLE coffer_owner; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffer_reader') THEN CREATE ROLE coffer_reader; END IF;
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'coffer \"odd\" role') THEN CREATE ROLE \"coffer \"\"odd\"\" role\"; END IF;
         END $$",
    )
    .unwrap();
    tablespace(pg, "coffer_ts");
    pg.create_database(db).unwrap();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/pg");
    let major = major(pg);
    let mut files = vec![dir.join("rich.sql")];
    files.extend(
        (14..=major)
            .map(|v| dir.join(format!("rich-{v}.sql")))
            .filter(|f| f.exists()),
    );
    for f in files {
        let out = pg
            .client("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
            .arg(&f)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} failed to load into PostgreSQL {major}:\n{}",
            f.display(),
            text(&out)
        );
    }
    pg.psql(
        db,
        &format!(
            "CREATE TABLE public.big (id bigint PRIMARY KEY, grp integer NOT NULL, label text, amount numeric(12,2), at timestamptz);
             INSERT INTO public.big SELECT g, g % 1000, 'row ' || g, (g % 100000) / 100.0, timestamptz '2024-01-01' + g * interval '1 second'
               FROM generate_series(1, {big_rows}) g;
             ANALYZE;"
        ),
    )
    .unwrap();
}

/// Creates tablespace `name` (quoted as given) in a new directory of the server's, unless
/// it exists.
pub fn tablespace(pg: &PgServer, name: &str) {
    let exists = pg
        .psql(
            "postgres",
            &format!("SELECT count(*) FROM pg_tablespace WHERE spcname = '{name}'"),
        )
        .unwrap();
    if exists == "0" {
        let dir = pg.new_directory(name).unwrap();
        pg.psql(
            "postgres",
            &format!("CREATE TABLESPACE {name} LOCATION '{}'", dir.display()),
        )
        .unwrap();
    }
}

/// Renders `archive` as SQL (`restore pg -f`) and loads it with psql into a new database
/// `db`, which must work without an error.
pub fn load_rendered(pg: &PgServer, archive: &Path, db: &str) {
    let sql = archive.with_extension("sql");
    let o = coffer_command()
        .args(["restore", "pg"])
        .arg(archive)
        .arg("-f")
        .arg(&sql)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    pg.create_database(db).unwrap();
    let out = pg
        .client("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-f"])
        .arg(&sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "loading the rendered SQL ({}) failed:\n{}",
        sql.display(),
        text(&out)
    );
}

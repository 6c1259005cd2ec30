//! Oracles for a restore: what `pg_dump --schema-only` says of a database, and what its
//! rows are, so that a test compares source and restored copy with tools independent of
//! coffer, never by eye.

use std::process::Output;

use crate::{HarnessError, PgServer};

/// `pg_dump --schema-only` of `db` (with `extra` options), without the lines that
/// differ from run to run (the dump's timestamp, the `\restrict` keys of pg_dump 18).
pub fn schema(pg: &PgServer, db: &str, extra: &[&str]) -> Result<String, HarnessError> {
    let mut cmd = pg.client("pg_dump");
    cmd.args(["--schema-only", "--no-sync", "-d", db])
        .args(extra);
    let out = cmd
        .output()
        .map_err(HarnessError::io(format!("running pg_dump -d {db}")))?;
    HarnessError::check(format!("pg_dump --schema-only -d {db}"), &out)?;
    Ok(normalise(&out))
}

fn normalise(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            !l.starts_with("-- Dumped")
                && !l.starts_with("\\restrict")
                && !l.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every table's (and populated materialized view's) row count and an order-independent
/// digest of its rows' text, every sequence's state and every large object's content,
/// owner, privileges and comment: one line each, in a stable order. One psql call.
pub fn data(pg: &PgServer, db: &str) -> Result<String, HarnessError> {
    // a partition tree's rows are compared as a whole (its root's), and a partition's
    // alone unless the tree hashes somewhere on the way down: a hash of an enum comes
    // from the value's oid, which a restore gives anew, so a row may rightly be in
    // another partition there. Names come hex-encoded: an identifier may hold newlines
    // and `|`.
    let relations = pg.psql(
        db,
        "SELECT encode(convert_to(format('%I.%I', n.nspname, c.relname), 'UTF8'), 'hex'), c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
            AND (c.relkind IN ('r', 'S') OR (c.relkind = 'm' AND c.relispopulated) OR (c.relkind = 'p' AND NOT c.relispartition))
            AND NOT (c.relispartition AND EXISTS (
                SELECT 1 FROM pg_inherits i, LATERAL (
                    WITH RECURSIVE up(oid) AS (SELECT i.inhparent UNION SELECT h.inhparent FROM pg_inherits h JOIN up ON h.inhrelid = up.oid)
                    SELECT oid FROM up) a
                 JOIN pg_partitioned_table p ON p.partrelid = a.oid
                WHERE i.inhrelid = c.oid AND p.partstrat = 'h'))
          ORDER BY 1",
    )?;
    let mut parts = Vec::new();
    for line in relations.lines() {
        let (hex, kind) = line.rsplit_once('|').unwrap_or((line, "r"));
        let name = unhex(hex);
        let name = name.as_str();
        let literal = name.replace('\'', "''");
        parts.push(match kind {
            "S" => format!(
                "SELECT '{literal}' || ': ' || last_value || ' ' || is_called FROM {name}"
            ),
            "p" => format!(
                "SELECT '{literal} (with its partitions): ' || count(*) || ' ' || md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) FROM {name} x"
            ),
            _ => format!(
                "SELECT '{literal}' || ': ' || count(*) || ' ' || md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) FROM ONLY {name} x"
            ),
        });
    }
    parts.push(
        "SELECT 'large object ' || oid || ': ' || md5(lo_get(oid)) || ' ' || lomowner::regrole || ' ' || coalesce(lomacl::text, '-') || ' ' || coalesce(obj_description(oid, 'pg_largeobject'), '-') FROM pg_largeobject_metadata"
            .into(),
    );
    let sql = format!(
        "SELECT * FROM ({}) AS rows(line) ORDER BY 1",
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join("\nUNION ALL\n")
    );
    pg.psql(db, &sql)
}

/// The text whose UTF-8 bytes `hex` spells.
fn unhex(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `None` when `a` and `b` are equal, else a unified diff of their lines (`a` the
/// expected side), with three lines of context.
pub fn difference(a: &str, b: &str) -> Option<String> {
    (a != b).then(|| {
        similar::TextDiff::from_lines(a, b)
            .unified_diff()
            .context_radius(3)
            .header("expected", "actual")
            .to_string()
    })
}

/// What `pg_dump --schema-only` does not show of a database's tables and constraints but
/// a restore must still get right, by name (never oid), one line each: every column's
/// position among its table's columns, nullability, inheritance counts, identity,
/// generation, storage, compression, statistics target and options (those a server keeps
/// for itself, named `pg_…`, left out); every constraint's validity, locality, inheritance
/// and definition; every relation's kind, persistence, options, replica identity, row
/// security, access method, tablespace, owner and privileges (with their grantors);
/// every trigger's enabled state. One psql call.
pub fn catalog(pg: &PgServer, db: &str) -> Result<String, HarnessError> {
    let version: u32 = pg
        .psql(db, "SHOW server_version_num")?
        .parse()
        .map_err(|_| HarnessError::Protocol("server_version_num is not a number".into()))?;
    // per-column TOAST compression came with 14
    let compression = if version >= 140000 {
        "a.attcompression"
    } else {
        "''"
    };
    pg.psql(
        db,
        &format!("WITH rel AS (
             SELECT format('%I.%I', n.nspname, c.relname) AS name, c.* FROM pg_class c
               JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
                AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c', 'i', 'I')
         )
         SELECT line FROM (
           SELECT format('column %s %s: #%s %s notnull=%s local=%s inh=%s identity=%s generated=%s storage=%s compression=%s stats=%s options=%s collation=%s',
                         r.name, a.attname, row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
                         format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attislocal, a.attinhcount,
                         a.attidentity, a.attgenerated, a.attstorage, {compression}, COALESCE(a.attstattarget, -1),
                         ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_%' ORDER BY o),
                         (SELECT collname FROM pg_collation WHERE oid = a.attcollation)) AS line
             FROM rel r JOIN pg_attribute a ON a.attrelid = r.oid WHERE a.attnum > 0 AND NOT a.attisdropped
           UNION ALL
           SELECT format('constraint %s %s: %s validated=%s local=%s inh=%s noinherit=%s deferrable=%s deferred=%s %s',
                         COALESCE(r.name, format_type(k.contypid, NULL)), k.conname, k.contype, k.convalidated,
                         k.conislocal, k.coninhcount,
                         -- NO INHERIT means something for CHECK and NOT NULL only
                         CASE WHEN k.contype IN ('c', 'n') THEN k.connoinherit::text ELSE '-' END,
                         k.condeferrable, k.condeferred,
                         pg_get_constraintdef(k.oid))
             FROM pg_constraint k LEFT JOIN rel r ON r.oid = k.conrelid
            WHERE r.oid IS NOT NULL OR (k.contypid <> 0 AND k.contypid >= 16384)
           UNION ALL
           SELECT format('relation %s: %s persistence=%s options=%s replident=%s rls=%s/%s partition=%s am=%s tablespace=%s owner=%s acl=%s',
                         r.name, r.relkind, r.relpersistence, ARRAY(SELECT o FROM unnest(r.reloptions) o ORDER BY o), r.relreplident, r.relrowsecurity,
                         r.relforcerowsecurity, pg_get_expr(r.relpartbound, r.oid),
                         (SELECT amname FROM pg_am WHERE oid = r.relam),
                         (SELECT spcname FROM pg_tablespace WHERE oid = r.reltablespace),
                         pg_get_userbyid(r.relowner),
                         (SELECT string_agg(format('%s:%s:%s:%s', pg_get_userbyid(x.grantor),
                                 CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(x.grantee) END,
                                 x.privilege_type, x.is_grantable), ',' ORDER BY 1)
                            -- an ACL equal to the owner's default is the same as none
                            FROM aclexplode(COALESCE(r.relacl, acldefault(CASE WHEN r.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", r.relowner))) x))
             FROM rel r
           UNION ALL
           SELECT format('trigger %s %s: enabled=%s', r.name, t.tgname, t.tgenabled)
             FROM pg_trigger t JOIN rel r ON r.oid = t.tgrelid WHERE NOT t.tgisinternal
         ) lines ORDER BY 1"),
    )
}

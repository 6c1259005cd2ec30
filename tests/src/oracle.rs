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
    // names hex-encoded: an identifier may hold newlines and `|`
    let relations = pg.psql(
        db,
        "SELECT encode(convert_to(format('%I.%I', n.nspname, c.relname), 'UTF8'), 'hex'), c.relkind FROM pg_class c
           JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'm', 'S') AND n.nspname <> 'information_schema'
            AND n.nspname !~ '^pg_' AND (c.relkind <> 'm' OR c.relispopulated)
          ORDER BY 1",
    )?;
    let mut parts = Vec::new();
    for line in relations.lines() {
        let (hex, kind) = line.rsplit_once('|').unwrap_or((line, "r"));
        let name = unhex(hex);
        let name = name.as_str();
        let literal = name.replace('\'', "''");
        parts.push(if kind == "S" {
            format!(
                "SELECT '{literal}' || ': ' || last_value || ' ' || is_called FROM {name}"
            )
        } else {
            format!(
                "SELECT '{literal}' || ': ' || count(*) || ' ' || md5(coalesce(string_agg(md5(x::text), '' ORDER BY md5(x::text)), '')) FROM ONLY {name} x"
            )
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

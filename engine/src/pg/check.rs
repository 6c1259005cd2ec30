//! Checking a restored database against its archive, without the source: every table's
//! rows (count and order-independent checksum, recomputed by copying the table out) and
//! the number of objects of each kind. `coffer restore-test` stands on this.

use std::collections::BTreeMap;

use serde::Serialize;
use tokio_postgres::Client;

use super::copy_out::{RowChecksum, copy_out};
use super::session::sql_error;
use super::sql::PgArchive;
use crate::error::Result;

/// One table's comparison.
#[derive(Clone, Debug, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub expected_rows: u64,
    pub rows: u64,
    pub expected_checksum: String,
    pub checksum: String,
    pub ok: bool,
}

/// One kind of object's count.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectCheck {
    pub kind: String,
    pub expected: u64,
    pub found: u64,
    pub ok: bool,
}

/// The outcome of a check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckReport {
    pub tables: Vec<TableCheck>,
    pub objects: Vec<ObjectCheck>,
    pub ok: bool,
}

/// Object kinds whose count can be read back from the catalogs, with the TOC kinds that
/// create them and the query that counts them in user schemas.
const COUNTED: &[(&str, &[&str], &str)] = &[
    (
        "tables",
        &["TABLE"],
        "SELECT count(*) FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema')",
    ),
    (
        "views",
        &["VIEW"],
        "SELECT count(*) FROM pg_class c WHERE c.relkind = 'v' AND c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema')",
    ),
    (
        "materialized views",
        &["MATERIALIZED VIEW"],
        "SELECT count(*) FROM pg_class c WHERE c.relkind = 'm'",
    ),
    (
        "sequences",
        &["SEQUENCE"],
        "SELECT count(*) FROM pg_class c WHERE c.relkind = 'S' AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')",
    ),
    (
        "indexes",
        &["INDEX", "CONSTRAINT"],
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace IN (SELECT oid FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema') AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = i.indrelid AND d.deptype = 'e')",
    ),
    (
        "triggers",
        &["TRIGGER"],
        "SELECT count(*) FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgparentid = 0",
    ),
];

/// Compares the database `client` is connected to with the archive's manifest and TOC.
pub async fn check(client: &Client, pg: &PgArchive) -> Result<CheckReport> {
    client
        .batch_execute("SELECT pg_catalog.set_config('search_path', '', false); SET extra_float_digits TO 3; SET DATESTYLE = ISO; SET INTERVALSTYLE = POSTGRES;")
        .await
        .map_err(|e| sql_error(e, "setting up the check session"))?;
    let by_id: BTreeMap<u32, &super::toc::TocEntry> =
        pg.toc.entries.iter().map(|e| (e.id, e)).collect();
    let mut tables = Vec::new();
    // the partitions of a tree whose rows were routed again (loaded through its root) are
    // checked together: a row may be in another partition than in the source
    let mut trees: BTreeMap<String, (RowChecksum, RowChecksum)> = BTreeMap::new();
    for t in &pg.manifest.tables {
        let Some(data) = by_id.get(&t.toc_id).and_then(|e| e.data.as_ref()) else {
            continue;
        };
        // the same COPY text the dump hashed, so the same checksum if the rows are equal
        let sum = copy_out(
            client,
            &data.copy_sql("TO STDOUT"),
            4 << 20,
            async |_: Vec<u8>| Ok(()),
        )
        .await?;
        if let Some(root) = &data.load_via_root {
            let tree = trees.entry(root.clone()).or_default();
            tree.0.merge(RowChecksum {
                rows: t.rows,
                sum: RowChecksum::parse(&t.checksum).unwrap_or_default(),
            });
            tree.1.merge(sum);
            continue;
        }
        let ok = sum.rows == t.rows && sum.hex() == t.checksum;
        tables.push(TableCheck {
            table: t.qualified.clone(),
            expected_rows: t.rows,
            rows: sum.rows,
            expected_checksum: t.checksum.clone(),
            checksum: sum.hex(),
            ok,
        });
    }
    for (root, (expected, found)) in trees {
        tables.push(TableCheck {
            table: format!("{root} (its partitions together)"),
            expected_rows: expected.rows,
            rows: found.rows,
            expected_checksum: expected.hex(),
            checksum: found.hex(),
            ok: expected.rows == found.rows && expected.sum == found.sum,
        });
    }
    let mut objects = Vec::new();
    for (label, kinds, sql) in COUNTED {
        let expected = pg
            .toc
            .entries
            .iter()
            .filter(|e| kinds.contains(&e.kind.as_str()))
            .count() as u64;
        let found: i64 = client
            .query_one(*sql, &[])
            .await
            .map_err(|e| sql_error(e, "counting restored objects"))?
            .get(0);
        let found = found.max(0) as u64;
        objects.push(ObjectCheck {
            kind: (*label).to_string(),
            expected,
            found,
            ok: expected == found,
        });
    }
    let ok = tables.iter().all(|t| t.ok) && objects.iter().all(|o| o.ok);
    Ok(CheckReport {
        tables,
        objects,
        ok,
    })
}

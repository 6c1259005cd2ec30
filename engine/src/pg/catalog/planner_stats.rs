//! Planner statistics, read at dump time so that a restore into PostgreSQL 18 or later
//! plans well before ANALYZE has run (pg_dump 18's `--statistics`, on by default here):
//! per table, materialized view, foreign table and index its `pg_class` size estimates,
//! and per column its `pg_stats` row, replayed through `pg_restore_relation_stats` and
//! `pg_restore_attribute_stats`.
//!
//! Each relation's statistics are one `STATISTICS DATA` entry at the very end of the
//! restore (after the data, the index builds and the materialized view refreshes, each of
//! which would overwrite them), written as a `DO` block that does nothing on a server
//! older than 18, so the same entry serves a native restore and a rendered SQL script
//! for any target.

use std::collections::HashMap;

use super::Cx;
use super::class::PG_CLASS;
use crate::error::Result;
use crate::pg::sql::do_block;
use crate::pg::toc::{Object, Section};

/// `'text'` as an SQL literal.
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The statistics of one relation, as the arguments of the restore functions.
struct RelStats {
    key: (u32, u32),
    schema: String,
    name: String,
    /// `relpages`, `reltuples`, `relallvisible` (and `relallfrozen` from 18 sources).
    relation: Vec<(&'static str, String, &'static str)>,
    /// One argument list per pg_stats row.
    columns: Vec<Vec<(&'static str, String, &'static str)>>,
}

impl RelStats {
    fn sql(&self, version: i32) -> String {
        let call = |function: &str, args: &[(&'static str, String, &'static str)]| {
            let mut parts = vec![
                format!("'version', {version}::integer"),
                format!("'schemaname', {}", lit(&self.schema)),
                format!("'relname', {}", lit(&self.name)),
            ];
            parts.extend(
                args.iter()
                    .map(|(arg, value, ty)| format!("'{arg}', {}::{ty}", lit(value))),
            );
            format!("PERFORM pg_catalog.{function}({});", parts.join(", "))
        };
        let mut body = vec![call("pg_restore_relation_stats", &self.relation)];
        body.extend(
            self.columns
                .iter()
                .map(|c| call("pg_restore_attribute_stats", c)),
        );
        do_block(&format!(
            "BEGIN\nIF current_setting('server_version_num')::int >= 180000 THEN\n{}\nEND IF;\nEND",
            body.join("\n")
        ))
    }
}

pub(super) async fn load(cx: &mut Cx<'_>, skip: &std::collections::HashSet<u32>) -> Result<()> {
    let rels: Vec<u32> = cx
        .rel_array()
        .into_iter()
        .filter(|r| !skip.contains(r))
        .collect();
    let allfrozen = if cx.version >= 180000 {
        "c.relallfrozen::text"
    } else {
        "NULL::text"
    };
    let rows = cx
        .query(
            &format!(
                "SELECT c.oid, n.nspname, c.relname, c.relpages::text, c.reltuples::text, c.relallvisible::text, {allfrozen}
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE (c.oid = ANY($1) AND c.relkind IN ('r', 'p', 'm', 'f'))
                    OR c.oid IN (SELECT i.indexrelid FROM pg_index i WHERE i.indrelid = ANY($1))
                 ORDER BY 2, 3"
            ),
            &[&rels],
        )
        .await?;
    let mut stats: Vec<RelStats> = Vec::with_capacity(rows.len());
    let mut by_oid: HashMap<u32, usize> = HashMap::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let mut reltuples: String = r.get(4);
        if cx.version < 140000 && reltuples == "0" {
            // before 14, 0 also meant "never analyzed", which 14 and later say with -1
            reltuples = "-1".into();
        }
        let mut relation = vec![
            ("relpages", r.get::<_, String>(3), "integer"),
            ("reltuples", reltuples, "real"),
            ("relallvisible", r.get::<_, String>(5), "integer"),
        ];
        if let Some(frozen) = r.get::<_, Option<String>>(6) {
            relation.push(("relallfrozen", frozen, "integer"));
        }
        by_oid.insert(oid, stats.len());
        stats.push(RelStats {
            key: (PG_CLASS, oid),
            schema: r.get(1),
            name: r.get(2),
            relation,
            columns: Vec::new(),
        });
    }
    // the range histograms came with 17
    let ranges = if cx.version >= 170000 {
        "s.range_length_histogram::text, s.range_empty_frac::text, s.range_bounds_histogram::text"
    } else {
        "NULL::text, NULL::text, NULL::text"
    };
    let oids: Vec<u32> = by_oid.keys().copied().collect();
    let rows = cx
        .query(
            &format!(
                "SELECT c.oid, c.relkind IN ('i', 'I'), s.attname::text, a.attnum::text, s.inherited::text,
                        s.null_frac::text, s.avg_width::text, s.n_distinct::text,
                        s.most_common_vals::text, s.most_common_freqs::text, s.histogram_bounds::text, s.correlation::text,
                        s.most_common_elems::text, s.most_common_elem_freqs::text, s.elem_count_histogram::text, {ranges}
                 FROM pg_stats s JOIN pg_namespace n ON n.nspname = s.schemaname
                 JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = s.attname
                 WHERE c.oid = ANY($1)
                 ORDER BY n.nspname, c.relname, s.attname, s.inherited"
            ),
            &[&oids],
        )
        .await?;
    for r in rows {
        let Some(&i) = by_oid.get(&r.get::<_, u32>(0)) else {
            continue;
        };
        let is_index: bool = r.get(1);
        // an index's column names are not kept by a dump and reload: its expression
        // columns are named by position
        let mut args = vec![if is_index {
            ("attnum", r.get::<_, String>(3), "smallint")
        } else {
            ("attname", r.get::<_, String>(2), "text")
        }];
        args.push(("inherited", r.get::<_, String>(4), "boolean"));
        for (pos, arg, ty) in [
            (5, "null_frac", "real"),
            (6, "avg_width", "integer"),
            (7, "n_distinct", "real"),
            (8, "most_common_vals", "text"),
            (9, "most_common_freqs", "real[]"),
            (10, "histogram_bounds", "text"),
            (11, "correlation", "real"),
            (12, "most_common_elems", "text"),
            (13, "most_common_elem_freqs", "real[]"),
            (14, "elem_count_histogram", "real[]"),
            (15, "range_length_histogram", "text"),
            (16, "range_empty_frac", "real"),
            (17, "range_bounds_histogram", "text"),
        ] {
            if let Some(v) = r.get::<_, Option<String>>(pos) {
                args.push((arg, v, ty));
            }
        }
        stats[i].columns.push(args);
    }
    for s in stats {
        let sql = s.sql(cx.version);
        let owner = cx.owner_of(s.key);
        cx.objects.push(
            Object::new(s.key, Section::PostAcl, "STATISTICS DATA", &s.name, sql)
                .schema(&s.schema)
                .dep(owner),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_are_a_do_block_that_older_servers_skip() {
        let s = RelStats {
            key: (PG_CLASS, 1),
            schema: "s'q".into(),
            name: "t".into(),
            relation: vec![("relpages", "3".into(), "integer")],
            columns: vec![vec![
                ("attname", "c".into(), "text"),
                ("most_common_vals", "{a,'b'}".into(), "text"),
            ]],
        };
        let sql = s.sql(150018);
        assert!(sql.starts_with(
            "DO $c0$BEGIN\nIF current_setting('server_version_num')::int >= 180000 THEN\n"
        ));
        assert!(sql.contains("PERFORM pg_catalog.pg_restore_relation_stats('version', 150018::integer, 'schemaname', 's''q', 'relname', 't', 'relpages', '3'::integer);"));
        assert!(sql.contains("'attname', 'c'::text, 'most_common_vals', '{a,''b''}'::text);"));
        assert!(sql.ends_with("END IF;\nEND$c0$;"));
    }
}

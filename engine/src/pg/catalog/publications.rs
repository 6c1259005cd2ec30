//! Logical replication: publications, their tables (with column lists and row filters)
//! and schemas; subscriptions.

use super::Cx;
use super::class::{PG_CLASS, PG_NAMESPACE, PG_PUBLICATION, PG_PUBLICATION_REL, PG_SUBSCRIPTION};
use crate::error::Result;
use crate::pg::sql::do_block;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    // 18: whether stored generated columns are published
    let gencols = if cx.version >= 180000 {
        "p.pubgencols::text"
    } else {
        "'n'"
    };
    let rows = cx
        .query(
            &format!("SELECT p.oid, p.pubname, quote_ident(p.pubname), p.puballtables,
                    concat_ws(', ', CASE WHEN p.pubinsert THEN 'insert' END, CASE WHEN p.pubupdate THEN 'update' END,
                              CASE WHEN p.pubdelete THEN 'delete' END, CASE WHEN p.pubtruncate THEN 'truncate' END),
                    p.pubviaroot, pg_get_userbyid(p.pubowner), quote_ident(pg_get_userbyid(p.pubowner)), {gencols}
             FROM pg_publication p ORDER BY 2"),
            &[],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let q: String = r.get(2);
        let all: bool = r.get(3);
        let publish: String = r.get(4);
        let via_root: bool = r.get(5);
        let mut sql = format!("CREATE PUBLICATION {q}");
        if all {
            sql.push_str(" FOR ALL TABLES");
        }
        sql.push_str(&format!(" WITH (publish = '{publish}'"));
        if via_root {
            sql.push_str(", publish_via_partition_root = true");
        }
        if r.get::<_, String>(8) == "s" {
            sql.push_str(", publish_generated_columns = stored");
        }
        sql.push_str(");");
        let (owner, qowner): (String, String) = (r.get(6), r.get(7));
        cx.push(
            Object::new(
                (PG_PUBLICATION, oid),
                Section::PostData,
                "PUBLICATION",
                &name,
                sql,
            )
            .owned(&owner, "PUBLICATION", &q, &qowner),
        );
    }
    let rels = cx.rel_array();
    // column lists and row filters exist from PostgreSQL 15
    let (attrs, qual) = if cx.version >= 150000 {
        ("pr.prattrs::int2[]", "pr.prqual")
    } else {
        ("NULL::int2[]", "NULL")
    };
    let rows = cx
        .query(
            &format!("SELECT pr.oid, pr.prpubid, pr.prrelid, p.pubname || ' ' || c.relname, n.nspname,
                    format('ALTER PUBLICATION %I ADD TABLE ONLY %I.%I', p.pubname, n.nspname, c.relname),
                    (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                      WHERE a.attrelid = pr.prrelid AND a.attnum = ANY({attrs})),
                    pg_get_expr({qual}, pr.prrelid)
             FROM pg_publication_rel pr JOIN pg_publication p ON p.oid = pr.prpubid
             JOIN pg_class c ON c.oid = pr.prrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE pr.prrelid = ANY($1) ORDER BY 4"),
            &[&rels],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let (publication, table): (u32, u32) = (r.get(1), r.get(2));
        let label: String = r.get(3);
        let schema: String = r.get(4);
        let mut sql: String = r.get(5);
        if let Some(cols) = r.get::<_, Option<String>>(6) {
            sql.push_str(&format!(" ({cols})"));
        }
        if let Some(q) = r.get::<_, Option<String>>(7) {
            sql.push_str(&format!(" WHERE ({q})"));
        }
        sql.push(';');
        let o = Object::new(
            (PG_PUBLICATION_REL, oid),
            Section::PostData,
            "PUBLICATION TABLE",
            label,
            sql,
        )
        .schema(&schema)
        .dep((PG_PUBLICATION, publication))
        .dep((PG_CLASS, table));
        cx.push(o);
    }
    if cx.version < 150000 {
        return Ok(()); // publications of whole schemas came with PostgreSQL 15
    }
    let ns = cx.ns_array();
    let rows = cx
        .query(
            "SELECT pn.oid, pn.pnpubid, pn.pnnspid, p.pubname || ' ' || n.nspname,
                    format('ALTER PUBLICATION %I ADD TABLES IN SCHEMA %I;', p.pubname, n.nspname)
             FROM pg_publication_namespace pn JOIN pg_publication p ON p.oid = pn.pnpubid
             JOIN pg_namespace n ON n.oid = pn.pnnspid WHERE pn.pnnspid = ANY($1) ORDER BY 4",
            &[&ns],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let (publication, nsp): (u32, u32) = (r.get(1), r.get(2));
        let label: String = r.get(3);
        let o = Object::new(
            (6237, oid),
            Section::PostData,
            "PUBLICATION TABLES IN SCHEMA",
            label,
            r.get(4),
        )
        .dep((PG_PUBLICATION, publication))
        .dep((PG_NAMESPACE, nsp));
        cx.push(o);
    }
    Ok(())
}

/// Subscriptions of this database, created without connecting (`connect = false`, as
/// pg_dump does: the publisher may not be reachable from where the restore runs, and the
/// slot is the publisher's). They come back disabled, to be enabled by hand. Their
/// connection strings are readable only by superusers: for anyone else they are left out,
/// with a warning.
pub(super) async fn subscriptions(cx: &mut Cx<'_>) -> Result<Vec<String>> {
    let superuser: bool = cx
        .query(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .first()
        .is_some_and(|r| r.get(0));
    let any: i64 = cx
        .query(
            "SELECT count(*) FROM pg_subscription WHERE subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())",
            &[],
        )
        .await
        .map(|r| r.first().map_or(0, |r| r.get(0)))
        .unwrap_or(0);
    if any == 0 {
        return Ok(Vec::new());
    }
    if !superuser {
        return Ok(vec![format!(
            "{any} subscription(s) not dumped: their connection strings are readable only by a superuser"
        )]);
    }
    // an older server's subscriptions behave as its release did (no streaming before 14,
    // running as the owner before 16…): said explicitly, so a newer target keeps that
    let v = cx.version;
    let opt =
        |min: i32, expr: &'static str, before: &'static str| if v >= min { expr } else { before };
    let sql = format!(
        "SELECT s.oid, s.subname, quote_ident(s.subname), quote_literal(s.subconninfo),
                (SELECT string_agg(quote_ident(p), ', ') FROM unnest(s.subpublications) p),
                CASE WHEN s.subslotname IS NULL THEN 'NONE' ELSE quote_literal(s.subslotname) END,
                s.subsynccommit, {}::text, {}::text, {}::text, {}::text, {}::text, {}::text, {}::text, {}::text,
                pg_get_userbyid(s.subowner), quote_ident(pg_get_userbyid(s.subowner))
         FROM pg_subscription s WHERE s.subdbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY 2",
        opt(140000, "s.subbinary", "false"),
        opt(140000, "s.substream", "'f'"),
        opt(150000, "s.subtwophasestate", "'d'"),
        opt(150000, "s.subdisableonerr", "false"),
        opt(160000, "s.subpasswordrequired", "true"),
        opt(160000, "s.subrunasowner", "true"),
        opt(160000, "s.suborigin", "'any'"),
        opt(170000, "s.subfailover", "false"),
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let (name, q): (String, String) = (r.get(1), r.get(2));
        let (conninfo, publications, slot): (String, Option<String>, String) =
            (r.get(3), r.get(4), r.get(5));
        let text = |i: usize| r.get::<_, Option<String>>(i).unwrap_or_default();
        let on = |i: usize| if text(i) == "true" { "true" } else { "false" };
        let streaming = match text(8).as_str() {
            "t" => "on",
            "p" => "parallel",
            _ => "off",
        };
        // every option said, with the server it first appeared in: a target takes those
        // it knows, so an upgrade keeps how the subscription behaved (and one into the
        // same release gets exactly what it accepts)
        let synchronous_commit = format!("synchronous_commit = '{}'", text(6).replace('\'', "''"));
        let options: Vec<(i32, String)> = vec![
            (0, "connect = false".into()),
            (0, format!("slot_name = {slot}")),
            (0, synchronous_commit),
            (140000, format!("binary = {}", on(7))),
            (
                140000,
                format!(
                    "streaming = {}",
                    if streaming == "parallel" {
                        "on"
                    } else {
                        streaming
                    }
                ),
            ),
            (160000, format!("streaming = {streaming}")),
            (
                150000,
                format!("two_phase = {}", if text(9) == "d" { "off" } else { "on" }),
            ),
            (150000, format!("disable_on_error = {}", on(10))),
            (160000, format!("password_required = {}", on(11))),
            (160000, format!("run_as_owner = {}", on(12))),
            (160000, format!("origin = {}", text(13))),
            (170000, format!("failover = {}", on(14))),
        ];
        let create = format!(
            "CREATE SUBSCRIPTION {q} CONNECTION {conninfo} PUBLICATION {} WITH (",
            publications.unwrap_or_default()
        );
        let sql = subscription_sql(&create, &options);
        let (owner, qowner): (String, String) = (r.get(15), r.get(16));
        cx.push(
            Object::new(
                (PG_SUBSCRIPTION, oid),
                Section::PostData,
                "SUBSCRIPTION",
                &name,
                sql,
            )
            .owned(&owner, "SUBSCRIPTION", &q, &qowner),
        );
    }
    Ok(Vec::new())
}

/// `create` (`CREATE SUBSCRIPTION … WITH (`) completed, on the server that runs it, with
/// the options it knows: each `(since, option)` whose `since` it is at least, a later one
/// of a name replacing an earlier one.
fn subscription_sql(create: &str, options: &[(i32, String)]) -> String {
    let mut body = String::from(
        "DECLARE v int := current_setting('server_version_num')::int; o text[] := '{}';\nBEGIN\n",
    );
    for (since, option) in options {
        let name = option.split(" = ").next().unwrap_or(option);
        let add = format!(
            "o := array_append(array(SELECT x FROM unnest(o) x WHERE split_part(x, ' = ', 1) <> {}), {});",
            literal(name),
            literal(option)
        );
        if *since == 0 {
            body.push_str(&format!("{add}\n"));
        } else {
            body.push_str(&format!("IF v >= {since} THEN {add} END IF;\n"));
        }
    }
    body.push_str(&format!(
        "EXECUTE {} || array_to_string(o, ', ') || ')';\nEND",
        literal(create)
    ));
    do_block(&body)
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_takes_the_options_its_server_knows() {
        let sql = subscription_sql(
            "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p WITH (",
            &[
                (0, "connect = false".into()),
                (160000, "origin = none".into()),
            ],
        );
        assert!(sql.starts_with("DO $c0$DECLARE"), "{sql}");
        assert!(
            sql.contains("IF v >= 160000 THEN o := array_append("),
            "{sql}"
        );
        assert!(
            sql.contains(
                "EXECUTE 'CREATE SUBSCRIPTION s CONNECTION ''dbname=x'' PUBLICATION p WITH ('"
            ),
            "{sql}"
        );
    }
}

//! Publications, their tables (with column lists and row filters) and schemas.

use super::Cx;
use super::class::{PG_CLASS, PG_NAMESPACE, PG_PUBLICATION, PG_PUBLICATION_REL};
use crate::error::Result;
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

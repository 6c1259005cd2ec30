//! Access methods and what extends them: user-defined index and table access methods,
//! operator families (with their loose members) and operator classes. Those of
//! extensions (btree_gist's, say) come with CREATE EXTENSION.

use super::Cx;
use super::class::{PG_AM, PG_OPCLASS, PG_OPFAMILY};
use super::schema_objects::not_member;
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    access_methods(cx).await?;
    families(cx).await?;
    classes(cx).await
}

async fn access_methods(cx: &mut Cx<'_>) -> Result<()> {
    let sql = format!(
        "SELECT a.oid, a.amname, quote_ident(a.amname), CASE a.amtype WHEN 'i' THEN 'INDEX' ELSE 'TABLE' END,
                a.amhandler::regproc::text
         FROM pg_am a WHERE a.oid >= 16384 AND {} ORDER BY 2",
        not_member("pg_am", "a.oid")
    );
    for r in cx.query(&sql, &[]).await? {
        let (oid, name, q, ty, handler): (u32, String, String, String, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let o = Object::new(
            (PG_AM, oid),
            Section::PreData,
            "ACCESS METHOD",
            &name,
            format!("CREATE ACCESS METHOD {q} TYPE {ty} HANDLER {handler};"),
        )
        .dropped_by(
            format!("DROP ACCESS METHOD {q};"),
            format!("DROP ACCESS METHOD IF EXISTS {q};"),
        );
        cx.push(o);
    }
    Ok(())
}

/// `OPERATOR n op(l,r) [FOR ORDER BY family]` and `FUNCTION n (l, r) fn(args)` of the
/// members whose pg_depend entry points at `$1` of catalog `$2` (an operator class, or
/// a family for its loose members), in strategy and support number order.
const MEMBERS: &str = "
    SELECT m.ref, string_agg(m.item, ', ' ORDER BY m.kind, m.num, m.item) FROM (
        SELECT d.refobjid AS ref, 0 AS kind, o.amopstrategy AS num,
               format('OPERATOR %s %s', o.amopstrategy, o.amopopr::regoperator)
               || CASE WHEN o.amoppurpose = 'o' THEN
                    ' FOR ORDER BY ' || (SELECT format('%I.%I', sn.nspname, sf.opfname) FROM pg_opfamily sf
                                          JOIN pg_namespace sn ON sn.oid = sf.opfnamespace WHERE sf.oid = o.amopsortfamily)
                  ELSE '' END AS item
          FROM pg_amop o JOIN pg_depend d ON d.classid = 'pg_amop'::regclass AND d.objid = o.oid
         WHERE d.refclassid = $2::text::regclass AND d.refobjid = ANY($1) AND d.deptype IN ('a', 'i')
        UNION ALL
        SELECT d.refobjid, 1, p.amprocnum,
               format('FUNCTION %s (%s, %s) %s', p.amprocnum, format_type(p.amproclefttype, NULL),
                      format_type(p.amprocrighttype, NULL), p.amproc::regprocedure)
          FROM pg_amproc p JOIN pg_depend d ON d.classid = 'pg_amproc'::regclass AND d.objid = p.oid
         WHERE d.refclassid = $2::text::regclass AND d.refobjid = ANY($1) AND d.deptype IN ('a', 'i')
    ) m GROUP BY m.ref";

async fn members(
    cx: &Cx<'_>,
    of: &[u32],
    catalog: &str,
) -> Result<std::collections::HashMap<u32, String>> {
    let rows = cx.query(MEMBERS, &[&of, &catalog]).await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Operator families: created empty, then given the members that belong to the family
/// itself rather than to one of its classes (cross-type operators, say).
async fn families(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT f.oid, n.nspname, f.opfname || ' USING ' || a.amname, format('%I.%I', n.nspname, f.opfname), quote_ident(a.amname),
                pg_get_userbyid(f.opfowner), quote_ident(pg_get_userbyid(f.opfowner))
         FROM pg_opfamily f JOIN pg_namespace n ON n.oid = f.opfnamespace JOIN pg_am a ON a.oid = f.opfmethod
         WHERE f.opfnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_opfamily", "f.oid")
    );
    let rows = cx.query(&sql, &[&ns]).await?;
    let oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
    let loose = members(cx, &oids, "pg_opfamily").await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let (schema, label, q, am): (String, String, String, String) =
            (r.get(1), r.get(2), r.get(3), r.get(4));
        let (owner, qowner): (String, String) = (r.get(5), r.get(6));
        let mut sql = format!("CREATE OPERATOR FAMILY {q} USING {am};");
        if let Some(m) = loose.get(&oid) {
            sql.push_str(&format!(
                "\nALTER OPERATOR FAMILY {q} USING {am} ADD\n    {m};"
            ));
        }
        let target = format!("{q} USING {am}");
        let o = Object::new(
            (PG_OPFAMILY, oid),
            Section::PreData,
            "OPERATOR FAMILY",
            label,
            sql,
        )
        .schema(&schema)
        .owned(&owner, "OPERATOR FAMILY", &target, &qowner);
        cx.push(o);
    }
    Ok(())
}

async fn classes(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT c.oid, n.nspname, c.opcname || ' USING ' || a.amname, format('%I.%I', n.nspname, c.opcname), quote_ident(a.amname),
                c.opcdefault, format_type(c.opcintype, NULL),
                CASE WHEN c.opckeytype <> 0 AND c.opckeytype <> c.opcintype THEN format_type(c.opckeytype, NULL) END,
                format('%I.%I', fn.nspname, f.opfname), (fn.oid = n.oid AND f.opfname = c.opcname),
                pg_get_userbyid(c.opcowner), quote_ident(pg_get_userbyid(c.opcowner)), c.opcfamily
         FROM pg_opclass c JOIN pg_namespace n ON n.oid = c.opcnamespace JOIN pg_am a ON a.oid = c.opcmethod
         JOIN pg_opfamily f ON f.oid = c.opcfamily JOIN pg_namespace fn ON fn.oid = f.opfnamespace
         WHERE c.opcnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_opclass", "c.oid")
    );
    let rows = cx.query(&sql, &[&ns]).await?;
    let oids: Vec<u32> = rows.iter().map(|r| r.get(0)).collect();
    let own = members(cx, &oids, "pg_opclass").await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let (schema, label, q, am): (String, String, String, String) =
            (r.get(1), r.get(2), r.get(3), r.get(4));
        let default: bool = r.get(5);
        let for_type: String = r.get(6);
        let storage: Option<String> = r.get(7);
        let (family, same_name): (String, bool) = (r.get(8), r.get(9));
        let (owner, qowner): (String, String) = (r.get(10), r.get(11));
        let family_oid: u32 = r.get(12);
        let mut items: Vec<String> = own.get(&oid).into_iter().cloned().collect();
        if let Some(s) = storage {
            items.push(format!("STORAGE {s}"));
        }
        if items.is_empty() {
            // the grammar wants one item at least: the storage type says nothing new
            items.push(format!("STORAGE {for_type}"));
        }
        let default = if default { "DEFAULT " } else { "" };
        // the family exists (dumped before): a class named like it takes it without
        // saying so, as CREATE OPERATOR CLASS would have made it
        let family = if same_name {
            String::new()
        } else {
            format!(" FAMILY {family}")
        };
        let sql = format!(
            "CREATE OPERATOR CLASS {q}\n    {default}FOR TYPE {for_type} USING {am}{family} AS\n    {};",
            items.join(",\n    ")
        );
        let target = format!("{q} USING {am}");
        let o = Object::new(
            (PG_OPCLASS, oid),
            Section::PreData,
            "OPERATOR CLASS",
            label,
            sql,
        )
        .schema(&schema)
        .owned(&owner, "OPERATOR CLASS", &target, &qowner)
        .dep((PG_OPFAMILY, family_oid));
        cx.push(o);
    }
    Ok(())
}

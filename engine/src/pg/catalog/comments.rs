//! COMMENT ON, SECURITY LABEL and ALTER … DEPENDS ON EXTENSION for every dumped object,
//! column and constraint. The
//! server names each object with `pg_identify_object`, whose identity is already quoted
//! and qualified the way both commands take it. Each is an entry attached to the object
//! it is about, in that object's section, after it: a comment on a NOT VALID constraint
//! comes after the data, one on an event trigger at the very end.

use std::collections::HashMap;

use super::Cx;
use crate::error::Result;
use crate::pg::toc::{CatalogKey, Object, Section, defines};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    public_schema(cx).await?;
    attach(
        cx,
        "COMMENT",
        "SELECT d.classoid, d.objoid, d.objsubid, i.type, i.identity, quote_literal(d.description), i.schema, NULL::text
         FROM pg_description d, LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) i
         WHERE d.objoid >= 16384 AND i.identity IS NOT NULL
         ORDER BY i.schema NULLS FIRST, i.identity",
    )
    .await?;
    attach(
        cx,
        "SECURITY LABEL",
        "SELECT l.classoid, l.objoid, l.objsubid, i.type, i.identity, quote_literal(l.label), i.schema, quote_ident(l.provider)
         FROM pg_seclabel l, LATERAL pg_identify_object(l.classoid, l.objoid, l.objsubid) i
         WHERE l.objoid >= 16384 AND i.identity IS NOT NULL
         ORDER BY i.schema NULLS FIRST, i.identity, l.provider",
    )
    .await?;
    // an object marked as going with an extension (dropped with it), which is not one
    // of its members
    attach(
        cx,
        "DEPENDS ON EXTENSION",
        "SELECT d.classid, d.objid, 0, i.type, i.identity, quote_ident(x.extname), i.schema, NULL::text
         FROM pg_depend d JOIN pg_extension x ON x.oid = d.refobjid,
              LATERAL pg_identify_object(d.classid, d.objid, 0) i
         WHERE d.deptype = 'x' AND d.refclassid = 'pg_extension'::regclass AND d.objid >= 16384
         ORDER BY i.schema NULLS FIRST, i.identity, x.extname",
    )
    .await
}

/// Comments (`kind` COMMENT), security labels (SECURITY LABEL) or marks of going with
/// an extension (DEPENDS ON EXTENSION) from `sql`, which returns class, object,
/// sub-object, identity type, identity, the text as a literal (the extension's name,
/// quoted, for the last), schema, and the label provider (quoted) for security labels.
async fn attach(cx: &mut Cx<'_>, kind: &'static str, sql: &str) -> Result<()> {
    let sections: HashMap<CatalogKey, Section> = cx
        .objects
        .iter()
        .filter(|o| defines(o.kind))
        .map(|o| (o.key, o.section))
        .collect();
    let rows = cx.query(sql, &[]).await?;
    for r in rows {
        let key: CatalogKey = (r.get(0), r.get(1));
        let ty: String = r.get(3);
        let identity: String = r.get(4);
        let text: String = r.get(5);
        let schema: Option<String> = r.get(6);
        let provider: Option<String> = r.get(7);
        // a constraint written inside CREATE TABLE (or DOMAIN), or an attribute of a
        // composite type, is dumped with the object that holds it
        let owner_key = cx.owner_of(key);
        let Some(&section) = sections.get(&owner_key) else {
            continue; // not dumped (an extension's object, or filtered out)
        };
        let Some(target) = comment_target(&ty, &identity) else {
            tracing::warn!("{kind} on {ty} {identity} is not dumped: unknown object type");
            continue;
        };
        let sql = match (kind, &provider) {
            ("SECURITY LABEL", Some(p)) => format!("SECURITY LABEL FOR {p} ON {target} IS {text};"),
            ("DEPENDS ON EXTENSION", _) => format!("ALTER {target} DEPENDS ON EXTENSION {text};"),
            _ => format!("COMMENT ON {target} IS {text};"),
        };
        let mut o = Object::new(key, section, kind, format!("{ty} {identity}"), sql).dep(owner_key);
        o.schema = schema;
        cx.objects.push(o);
    }
    Ok(())
}

/// The `COMMENT ON` (and `SECURITY LABEL … ON`) target for a `pg_identify_object` type
/// and identity.
fn comment_target(ty: &str, identity: &str) -> Option<String> {
    let on_split = |id: &str| split_on(id).map(|(name, rel)| format!("{name} ON {rel}"));
    Some(match ty {
        t if t.ends_with(" column") => format!("COLUMN {identity}"),
        "table constraint" => format!("CONSTRAINT {}", on_split(identity)?),
        "domain constraint" => {
            let (name, dom) = split_on(identity)?;
            format!("CONSTRAINT {name} ON DOMAIN {dom}")
        }
        "trigger" => format!("TRIGGER {}", on_split(identity)?),
        "rule" => format!("RULE {}", on_split(identity)?),
        "policy" => format!("POLICY {}", on_split(identity)?),
        "composite type" => format!("TYPE {identity}"),
        "statistics object" => format!("STATISTICS {identity}"),
        "foreign-data wrapper" => format!("FOREIGN DATA WRAPPER {identity}"),
        "cast" => format!("CAST {identity}"),
        // `for TYPE on language LANG` (`for TYPE language LANG` from 16)
        "transform" => {
            let rest = identity.strip_prefix("for ")?;
            let (ty, lang) = rest
                .rsplit_once(" on language ")
                .or_else(|| rest.rsplit_once(" language "))?;
            format!("TRANSFORM FOR {ty} LANGUAGE {lang}")
        }
        "table"
        | "view"
        | "materialized view"
        | "foreign table"
        | "index"
        | "sequence"
        | "schema"
        | "type"
        | "domain"
        | "collation"
        | "extension"
        | "event trigger"
        | "function"
        | "procedure"
        | "aggregate"
        | "operator"
        | "server"
        | "publication"
        | "text search configuration"
        | "text search dictionary"
        | "language"
        | "large object"
        | "operator class"
        | "operator family"
        | "conversion"
        | "access method"
        | "text search parser"
        | "text search template"
        | "subscription" => {
            format!("{} {identity}", ty.to_uppercase())
        }
        _ => return None,
    })
}

/// Splits `name on qualified.table` at the ` on ` that is outside double quotes.
fn split_on(identity: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    let bytes = identity.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'"' => quoted = !quoted,
            b' ' if !quoted && identity[i..].starts_with(" on ") => {
                return Some((&identity[..i], &identity[i + 4..]));
            }
            _ => {}
        }
    }
    None
}

/// The public schema comes with every database, with initdb's comment: a comment changed
/// or removed by the user is written (removed: `IS ''`), as pg_dump does.
async fn public_schema(cx: &mut Cx<'_>) -> Result<()> {
    const INITDB: &str = "standard public schema";
    let rows = cx
        .query(
            "SELECT n.oid, obj_description(n.oid, 'pg_namespace') FROM pg_namespace n WHERE n.nspname = 'public' AND n.oid = ANY($1)",
            &[&cx.ns_array()],
        )
        .await?;
    let Some(r) = rows.first() else {
        return Ok(());
    };
    let (oid, comment): (u32, Option<String>) = (r.get(0), r.get(1));
    let key = (super::class::PG_NAMESPACE, oid);
    let text = match comment.as_deref() {
        Some(INITDB) => return Ok(()),
        Some(c) => format!("'{}'", c.replace('\'', "''")),
        None => "''".to_string(),
    };
    cx.objects.push(
        Object::new(
            key,
            Section::PreData,
            "COMMENT",
            "SCHEMA public",
            format!("COMMENT ON SCHEMA public IS {text};"),
        )
        .dep(key),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_follow_comment_on_syntax() {
        assert_eq!(
            comment_target("table column", "public.t.c").unwrap(),
            "COLUMN public.t.c"
        );
        assert_eq!(
            comment_target("table constraint", "\"a on b\" on public.t").unwrap(),
            "CONSTRAINT \"a on b\" ON public.t"
        );
        assert_eq!(
            comment_target("domain constraint", "c on public.d").unwrap(),
            "CONSTRAINT c ON DOMAIN public.d"
        );
        assert_eq!(
            comment_target("materialized view", "s.m").unwrap(),
            "MATERIALIZED VIEW s.m"
        );
        assert!(comment_target("weird thing", "x").is_none());
        for identity in ["for integer on language sql", "for integer language sql"] {
            assert_eq!(
                comment_target("transform", identity).unwrap(),
                "TRANSFORM FOR integer LANGUAGE sql"
            );
        }
    }
}

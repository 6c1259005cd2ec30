//! Procedural languages created without an extension (`CREATE LANGUAGE … HANDLER`) and
//! transforms between types and languages.

use super::Cx;
use super::class::{PG_LANGUAGE, PG_TRANSFORM};
use super::schema_objects::not_member;
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    let sql = format!(
        "SELECT l.oid, l.lanname, quote_ident(l.lanname), l.lanpltrusted,
                l.lanplcallfoid::regprocedure::text, NULLIF(l.laninline, 0)::regprocedure::text,
                NULLIF(l.lanvalidator, 0)::regprocedure::text,
                pg_get_userbyid(l.lanowner), quote_ident(pg_get_userbyid(l.lanowner))
         FROM pg_language l WHERE l.lanispl AND l.oid >= 16384 AND {} ORDER BY 2",
        not_member("pg_language", "l.oid")
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let (name, q): (String, String) = (r.get(1), r.get(2));
        let trusted = if r.get::<_, bool>(3) { "TRUSTED " } else { "" };
        // regprocedure prints name(args); the clauses take the function's name
        let name_of = |f: String| f.split_once('(').map_or(f.clone(), |(n, _)| n.to_string());
        let mut sql = format!(
            "CREATE {trusted}PROCEDURAL LANGUAGE {q} HANDLER {}",
            name_of(r.get(4))
        );
        if let Some(f) = r.get::<_, Option<String>>(5) {
            sql.push_str(&format!(" INLINE {}", name_of(f)));
        }
        if let Some(f) = r.get::<_, Option<String>>(6) {
            sql.push_str(&format!(" VALIDATOR {}", name_of(f)));
        }
        sql.push(';');
        let (owner, qowner): (String, String) = (r.get(7), r.get(8));
        cx.push(
            Object::new(
                (PG_LANGUAGE, oid),
                Section::PreData,
                "PROCEDURAL LANGUAGE",
                &name,
                sql,
            )
            .owned(&owner, "PROCEDURAL LANGUAGE", &q, &qowner),
        );
    }
    let sql = format!(
        "SELECT t.oid, format_type(t.trftype, NULL), quote_ident(l.lanname),
                NULLIF(t.trffromsql, 0)::regprocedure::text, NULLIF(t.trftosql, 0)::regprocedure::text
         FROM pg_transform t JOIN pg_language l ON l.oid = t.trflang
         WHERE t.oid >= 16384 AND {} ORDER BY 2, 3",
        not_member("pg_transform", "t.oid")
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let (ty, lang): (String, String) = (r.get(1), r.get(2));
        let mut with = Vec::new();
        if let Some(f) = r.get::<_, Option<String>>(3) {
            with.push(format!("FROM SQL WITH FUNCTION {f}"));
        }
        if let Some(f) = r.get::<_, Option<String>>(4) {
            with.push(format!("TO SQL WITH FUNCTION {f}"));
        }
        let target = format!("FOR {ty} LANGUAGE {lang}");
        cx.push(
            Object::new(
                (PG_TRANSFORM, oid),
                Section::PreData,
                "TRANSFORM",
                format!("TRANSFORM {target}"),
                format!("CREATE TRANSFORM {target} ({});", with.join(", ")),
            )
            .dropped_by(
                format!("DROP TRANSFORM {target};"),
                format!("DROP TRANSFORM IF EXISTS {target};"),
            ),
        );
    }
    Ok(())
}

//! Schema-level objects that tables build on: schemas, extensions, collations, enum,
//! composite, domain and range types; and event triggers.

use super::Cx;
use super::class::{
    PG_COLLATION, PG_CONSTRAINT, PG_CONVERSION, PG_EVENT_TRIGGER, PG_EXTENSION, PG_NAMESPACE,
    PG_TYPE, SHELL_TYPE,
};
use crate::error::Result;
use crate::pg::toc::{Object, Section};

/// Objects that belong to an extension are created by CREATE EXTENSION, never dumped.
pub(super) const NOT_EXTENSION_MEMBER: &str = "NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = $CLASS::regclass AND e.objid = $OID AND e.deptype = 'e')";

pub(super) fn not_member(class: &str, oid: &str) -> String {
    NOT_EXTENSION_MEMBER
        .replace("$CLASS", &format!("'{class}'"))
        .replace("$OID", oid)
}

/// Objects the server creates along with another (a range type's constructor functions
/// and casts) have an internal dependency on it and are created again with it.
pub(super) fn not_internal(class: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend i WHERE i.classid = '{class}'::regclass AND i.objid = {oid} AND i.deptype = 'i')"
    )
}

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    schemas(cx).await?;
    extensions(cx).await?;
    collations(cx).await?;
    types(cx).await?;
    base_types(cx).await?;
    domain_constraints(cx).await?;
    conversions(cx).await?;
    event_triggers(cx).await?;
    Ok(())
}

/// Schemas. `public` exists in every new database: only a changed owner is written.
async fn schemas(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let rows = cx
        .query(
            "SELECT n.oid, n.nspname, quote_ident(n.nspname), pg_get_userbyid(n.nspowner), quote_ident(pg_get_userbyid(n.nspowner))
             FROM pg_namespace n WHERE n.oid = ANY($1) ORDER BY n.nspname",
            &[&ns],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let q: String = r.get(2);
        let (owner, qowner): (String, String) = (r.get(3), r.get(4));
        let sql = if name == "public" {
            String::new()
        } else {
            format!("CREATE SCHEMA {q};")
        };
        let mut o = Object::new((PG_NAMESPACE, oid), Section::PreData, "SCHEMA", &name, sql);
        if name != "public" || owner != "pg_database_owner" {
            o = o.owned(&owner, "SCHEMA", &q, &qowner);
        }
        if name == "public" {
            o.drop = None; // every database has it; --clean keeps it
        }
        cx.push(o);
    }
    Ok(())
}

/// Extensions created in this database (not built-in ones such as plpgsql).
async fn extensions(cx: &mut Cx<'_>) -> Result<()> {
    let rows = cx
        .query(
            "SELECT x.oid, x.extname, quote_ident(x.extname), quote_ident(n.nspname), x.extnamespace
             FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace
             WHERE x.oid >= 16384 ORDER BY x.extname",
            &[],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let (q, qschema): (String, String) = (r.get(2), r.get(3));
        let schema_oid: u32 = r.get(4);
        let sql = format!("CREATE EXTENSION IF NOT EXISTS {q} WITH SCHEMA {qschema};");
        cx.push(
            Object::new(
                (PG_EXTENSION, oid),
                Section::PreData,
                "EXTENSION",
                &name,
                sql,
            )
            .dep((PG_NAMESPACE, schema_oid))
            .dropped_by(
                format!("DROP EXTENSION {q};"),
                format!("DROP EXTENSION IF EXISTS {q};"),
            ),
        );
    }
    Ok(())
}

async fn collations(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let icu_locale = match cx.version {
        v if v >= 170000 => "c.colllocale",
        v if v >= 150000 => "c.colliculocale",
        _ => "c.collcollate",
    };
    // 16: ICU tailoring rules
    let icu_rules = if cx.version >= 160000 {
        "c.collicurules"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT c.oid, n.nspname, c.collname, format('%I.%I', n.nspname, c.collname), c.collprovider::text,
                c.collcollate, c.collctype, {icu_locale}, c.collisdeterministic,
                pg_get_userbyid(c.collowner), quote_ident(pg_get_userbyid(c.collowner)), {icu_rules}
         FROM pg_collation c JOIN pg_namespace n ON n.oid = c.collnamespace
         WHERE c.collnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_collation", "c.oid")
    );
    for r in cx.query(&sql, &[&cx.ns_array()]).await? {
        let _ = &ns;
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let q: String = r.get(3);
        let provider: String = r.get(4);
        let collate: Option<String> = r.get(5);
        let ctype: Option<String> = r.get(6);
        let icu: Option<String> = r.get(7);
        let deterministic: bool = r.get(8);
        let (owner, qowner): (String, String) = (r.get(9), r.get(10));
        let lit = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let rules: Option<String> = r.get(11);
        let mut opts = Vec::new();
        match provider.as_str() {
            "i" => {
                opts.push("provider = icu".to_string());
                opts.push(format!(
                    "locale = {}",
                    lit(icu.as_deref().or(collate.as_deref()).unwrap_or(""))
                ));
                if let Some(rules) = &rules {
                    opts.push(format!("rules = {}", lit(rules)));
                }
            }
            // 17: the builtin provider, whose locale is colllocale
            "b" => {
                opts.push("provider = builtin".to_string());
                opts.push(format!("locale = {}", lit(icu.as_deref().unwrap_or(""))));
            }
            _ => {
                opts.push("provider = libc".to_string());
                match (collate.as_deref(), ctype.as_deref()) {
                    (Some(a), Some(b)) if a == b => opts.push(format!("locale = {}", lit(a))),
                    (a, b) => {
                        opts.push(format!("lc_collate = {}", lit(a.unwrap_or(""))));
                        opts.push(format!("lc_ctype = {}", lit(b.unwrap_or(""))));
                    }
                }
            }
        }
        if !deterministic {
            opts.push("deterministic = false".into());
        }
        let sql = format!("CREATE COLLATION {q} ({});", opts.join(", "));
        let o = Object::new(
            (PG_COLLATION, oid),
            Section::PreData,
            "COLLATION",
            &name,
            sql,
        )
        .schema(&schema)
        .owned(&owner, "COLLATION", &q, &qowner);
        cx.push(o);
    }
    Ok(())
}

/// Enum, composite, domain and range types. Base types (written in C) are reported, not
/// dumped: they come with the extension or library that defines them.
async fn types(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let multirange = if cx.version >= 140000 {
        "(SELECT format('%I.%I', mn.nspname, mt.typname) FROM pg_type mt JOIN pg_namespace mn ON mn.oid = mt.typnamespace WHERE mt.oid = rg.rngmultitypid)"
    } else {
        "NULL::text"
    };
    // 17 names a domain's NOT NULL: a pg_constraint row of type 'n'
    let domain_not_null = if cx.version >= 170000 {
        "(SELECT quote_ident(k.conname) FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'n')"
    } else {
        "NULL::text"
    };
    let sql = format!(
        "SELECT t.oid, n.nspname, t.typname, format('%I.%I', n.nspname, t.typname), t.typtype::text,
                pg_get_userbyid(t.typowner), quote_ident(pg_get_userbyid(t.typowner)),
                (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid),
                (SELECT string_agg(format('%I %s%s', a.attname, format_type(a.atttypid, a.atttypmod),
                          CASE WHEN a.attcollation <> at.typcollation AND a.attcollation <> 0 THEN
                            ' COLLATE ' || (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation)
                          ELSE '' END), ', ' ORDER BY a.attnum)
                   FROM pg_attribute a JOIN pg_type at ON at.oid = a.atttypid
                   WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
                format_type(t.typbasetype, t.typtypmod), t.typnotnull, t.typdefault,
                CASE WHEN t.typcollation <> bt.typcollation AND t.typcollation <> 0 THEN
                  (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = t.typcollation) END,
                (SELECT string_agg(format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)), ' ' ORDER BY k.conname)
                   FROM pg_constraint k WHERE k.contypid = t.oid AND k.contype = 'c' AND k.convalidated),
                {domain_not_null},
                format_type(rg.rngsubtype, NULL),
                CASE WHEN rg.rngsubopc IS NOT NULL AND NOT (SELECT opcdefault FROM pg_opclass WHERE oid = rg.rngsubopc) THEN
                  (SELECT format('%I.%I', on2.nspname, oc.opcname) FROM pg_opclass oc JOIN pg_namespace on2 ON on2.oid = oc.opcnamespace WHERE oc.oid = rg.rngsubopc) END,
                CASE WHEN rg.rngcollation <> 0 AND rg.rngcollation <> (SELECT typcollation FROM pg_type WHERE oid = rg.rngsubtype) THEN
                  (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = rg.rngcollation) END,
                NULLIF(rg.rngcanonical, 0)::regproc::text, NULLIF(rg.rngsubdiff, 0)::regproc::text, {multirange}
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         LEFT JOIN pg_type bt ON bt.oid = t.typbasetype
         LEFT JOIN pg_range rg ON rg.rngtypid = t.oid
         LEFT JOIN pg_class rc ON rc.oid = t.typrelid
         WHERE t.typnamespace = ANY($1) AND t.typtype IN ('e', 'c', 'd', 'r', 'b')
           AND (t.typrelid = 0 OR rc.relkind = 'c')
           AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
           AND {}
         ORDER BY 2, 3",
        not_member("pg_type", "t.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let q: String = r.get(3);
        let typtype: String = r.get(4);
        let (owner, qowner): (String, String) = (r.get(5), r.get(6));
        let (kind, sql) = match typtype.as_str() {
            "e" => (
                "TYPE",
                format!(
                    "CREATE TYPE {q} AS ENUM (\n    {}\n);",
                    r.get::<_, Option<String>>(7)
                        .unwrap_or_default()
                        .replace(", ", ",\n    ")
                ),
            ),
            "c" => (
                "TYPE",
                format!(
                    "CREATE TYPE {q} AS (\n    {}\n);",
                    r.get::<_, Option<String>>(8)
                        .unwrap_or_default()
                        .replace(", ", ",\n    ")
                ),
            ),
            "d" => {
                let base: String = r.get(9);
                let mut s = format!("CREATE DOMAIN {q} AS {base}");
                if let Some(c) = r.get::<_, Option<String>>(12) {
                    s.push_str(&format!(" COLLATE {c}"));
                }
                if let Some(d) = r.get::<_, Option<String>>(11) {
                    s.push_str(&format!(" DEFAULT {d}"));
                }
                if r.get::<_, bool>(10) {
                    if let Some(name) = r.get::<_, Option<String>>(14) {
                        s.push_str(&format!(" CONSTRAINT {name}"));
                    }
                    s.push_str(" NOT NULL");
                }
                if let Some(c) = r.get::<_, Option<String>>(13) {
                    s.push_str(&format!("\n    {c}"));
                }
                s.push(';');
                ("DOMAIN", s)
            }
            "r" => {
                let mut opts = vec![format!("subtype = {}", r.get::<_, String>(15))];
                if let Some(o) = r.get::<_, Option<String>>(16) {
                    opts.push(format!("subtype_opclass = {o}"));
                }
                if let Some(c) = r.get::<_, Option<String>>(17) {
                    opts.push(format!("collation = {c}"));
                }
                if let Some(f) = r.get::<_, Option<String>>(18) {
                    opts.push(format!("canonical = {f}"));
                }
                if let Some(f) = r.get::<_, Option<String>>(19) {
                    opts.push(format!("subtype_diff = {f}"));
                }
                if let Some(m) = r.get::<_, Option<String>>(20) {
                    opts.push(format!("multirange_type_name = {m}"));
                }
                (
                    "TYPE",
                    format!(
                        "CREATE TYPE {q} AS RANGE (\n    {}\n);",
                        opts.join(",\n    ")
                    ),
                )
            }
            // base types are read by base_types, with their functions
            _ => continue,
        };
        let o = Object::new((PG_TYPE, oid), Section::PreData, kind, &name, sql)
            .schema(&schema)
            .owned(&owner, kind, &q, &qowner);
        cx.push(o);
    }
    Ok(())
}

/// A domain's NOT VALID constraints: each an entry of its own after the data, as a
/// table's NOT VALID check is, since the rows already stored need not satisfy it.
async fn domain_constraints(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT k.oid, k.contypid, n.nspname, t.typname || ' ' || k.conname,
                format('ALTER DOMAIN %I.%I ADD CONSTRAINT %I %s;', n.nspname, t.typname, k.conname, pg_get_constraintdef(k.oid)),
                format('ALTER DOMAIN %I.%I DROP CONSTRAINT %I;', n.nspname, t.typname, k.conname),
                quote_literal(format('%I.%I', n.nspname, t.typname))
         FROM pg_constraint k JOIN pg_type t ON t.oid = k.contypid JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typnamespace = ANY($1) AND NOT k.convalidated AND {}
         ORDER BY 3, 4",
        not_member("pg_type", "t.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let (oid, domain): (u32, u32) = (r.get(0), r.get(1));
        let schema: String = r.get(2);
        let label: String = r.get(3);
        let drop: String = r.get(5);
        let domain_literal: String = r.get(6);
        // ALTER DOMAIN has no IF EXISTS: the drop runs only if the domain is there
        let if_exists = crate::pg::sql::do_block(&format!(
            "BEGIN IF pg_catalog.to_regtype({domain_literal}) IS NOT NULL THEN {} END IF; END",
            drop.replace(" DROP CONSTRAINT ", " DROP CONSTRAINT IF EXISTS ")
        ));
        let o = Object::new(
            (PG_CONSTRAINT, oid),
            Section::PostData,
            "CHECK CONSTRAINT",
            label,
            r.get(4),
        )
        .schema(&schema)
        .dep((PG_TYPE, domain))
        .dropped_by(drop, if_exists);
        cx.push(o);
    }
    Ok(())
}

async fn event_triggers(cx: &mut Cx<'_>) -> Result<()> {
    let rows = cx
        .query(
            "SELECT e.oid, e.evtname, quote_ident(e.evtname), quote_ident(e.evtevent),
                    (SELECT string_agg(quote_literal(t), ', ') FROM unnest(e.evttags) t),
                    e.evtfoid::regproc::text, e.evtenabled::text,
                    pg_get_userbyid(e.evtowner), quote_ident(pg_get_userbyid(e.evtowner))
             FROM pg_event_trigger e ORDER BY e.evtname",
            &[],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let (q, event): (String, String) = (r.get(2), r.get(3));
        let tags: Option<String> = r.get(4);
        let func: String = r.get(5);
        let enabled: String = r.get(6);
        let (owner, qowner): (String, String) = (r.get(7), r.get(8));
        let mut sql = format!("CREATE EVENT TRIGGER {q} ON {event}");
        if let Some(t) = tags {
            sql.push_str(&format!("\n    WHEN TAG IN ({t})"));
        }
        sql.push_str(&format!("\n    EXECUTE FUNCTION {func}();"));
        match enabled.as_str() {
            "D" => sql.push_str(&format!("\nALTER EVENT TRIGGER {q} DISABLE;")),
            "R" => sql.push_str(&format!("\nALTER EVENT TRIGGER {q} ENABLE REPLICA;")),
            "A" => sql.push_str(&format!("\nALTER EVENT TRIGGER {q} ENABLE ALWAYS;")),
            _ => {}
        }
        let o = Object::new(
            (PG_EVENT_TRIGGER, oid),
            Section::PostAcl,
            "EVENT TRIGGER",
            &name,
            sql,
        )
        .owned(&owner, "EVENT TRIGGER", &q, &qowner);
        cx.push(o);
    }
    Ok(())
}

/// Encoding conversions (`CREATE [DEFAULT] CONVERSION`).
async fn conversions(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT c.oid, n.nspname, c.conname, format('%I.%I', n.nspname, c.conname), c.condefault,
                quote_literal(pg_encoding_to_char(c.conforencoding)), quote_literal(pg_encoding_to_char(c.contoencoding)),
                c.conproc::regproc::text, pg_get_userbyid(c.conowner), quote_ident(pg_get_userbyid(c.conowner))
         FROM pg_conversion c JOIN pg_namespace n ON n.oid = c.connamespace
         WHERE c.connamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_conversion", "c.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let (schema, name, q): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let default = if r.get::<_, bool>(4) { "DEFAULT " } else { "" };
        let (from, to, func): (String, String, String) = (r.get(5), r.get(6), r.get(7));
        let (owner, qowner): (String, String) = (r.get(8), r.get(9));
        let sql = format!("CREATE {default}CONVERSION {q} FOR {from} TO {to} FROM {func};");
        cx.push(
            Object::new(
                (PG_CONVERSION, oid),
                Section::PreData,
                "CONVERSION",
                &name,
                sql,
            )
            .schema(&schema)
            .owned(&owner, "CONVERSION", &q, &qowner),
        );
    }
    Ok(())
}

/// Base types (`CREATE TYPE … (INPUT = …, OUTPUT = …)`, their functions usually written
/// in C) and shell types never defined (`CREATE TYPE name;`). A base type and its input
/// and output functions need each other: as pg_dump does, a shell type comes first, the
/// functions after it, and the full definition last.
async fn base_types(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let subscript = if cx.version >= 140000 {
        "NULLIF(t.typsubscript, 0)::regproc::text, NULLIF(t.typsubscript, 0)"
    } else {
        "NULL::text, NULL::oid"
    };
    let sql = format!(
        "SELECT t.oid, n.nspname, t.typname, format('%I.%I', n.nspname, t.typname), t.typisdefined,
                pg_get_userbyid(t.typowner), quote_ident(pg_get_userbyid(t.typowner)),
                t.typlen, t.typinput::regproc::text, t.typoutput::regproc::text,
                NULLIF(t.typreceive, 0)::regproc::text, NULLIF(t.typsend, 0)::regproc::text,
                NULLIF(t.typmodin, 0)::regproc::text, NULLIF(t.typmodout, 0)::regproc::text,
                NULLIF(t.typanalyze, 0)::regproc::text, {subscript},
                quote_literal(t.typdefault), t.typbyval, t.typalign::text, t.typstorage::text,
                t.typcategory::text, t.typispreferred, t.typdelim::text,
                CASE WHEN t.typelem <> 0 THEN format_type(t.typelem, NULL) END, t.typcollation <> 0,
                ARRAY[t.typinput, t.typoutput, t.typreceive, t.typsend, t.typmodin, t.typmodout, t.typanalyze]::oid[]
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typnamespace = ANY($1) AND (t.typtype = 'b' OR (t.typtype = 'p' AND NOT t.typisdefined))
           AND NOT (t.typcategory = 'A' AND t.typelem <> 0) AND {}
         ORDER BY 2, 3",
        not_member("pg_type", "t.oid")
    );
    let mut io_functions: Vec<(u32, Vec<u32>)> = Vec::new();
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let (schema, name, q): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let defined: bool = r.get(4);
        let (owner, qowner): (String, String) = (r.get(5), r.get(6));
        if !defined {
            cx.push(
                Object::new(
                    (PG_TYPE, oid),
                    Section::PreData,
                    "TYPE",
                    &name,
                    format!("CREATE TYPE {q};"),
                )
                .schema(&schema)
                .owned(&owner, "TYPE", &q, &qowner),
            );
            continue;
        }
        let typlen: i16 = r.get(7);
        let mut o = vec![if typlen < 0 {
            "INTERNALLENGTH = variable".to_string()
        } else {
            format!("INTERNALLENGTH = {typlen}")
        }];
        o.push(format!("INPUT = {}", r.get::<_, String>(8)));
        o.push(format!("OUTPUT = {}", r.get::<_, String>(9)));
        for (i, key) in [
            (10, "RECEIVE"),
            (11, "SEND"),
            (12, "TYPMOD_IN"),
            (13, "TYPMOD_OUT"),
            (14, "ANALYZE"),
            (15, "SUBSCRIPT"),
        ] {
            if let Some(f) = r.get::<_, Option<String>>(i) {
                o.push(format!("{key} = {f}"));
            }
        }
        if let Some(d) = r.get::<_, Option<String>>(17) {
            o.push(format!("DEFAULT = {d}"));
        }
        if let Some(e) = r.get::<_, Option<String>>(24) {
            o.push(format!("ELEMENT = {e}"));
        }
        o.push(format!(
            "ALIGNMENT = {}",
            match r.get::<_, String>(19).as_str() {
                "c" => "char",
                "s" => "int2",
                "d" => "double",
                _ => "int4",
            }
        ));
        o.push(format!(
            "STORAGE = {}",
            match r.get::<_, String>(20).as_str() {
                "e" => "external",
                "x" => "extended",
                "m" => "main",
                _ => "plain",
            }
        ));
        let category: String = r.get(21);
        if category != "U" {
            o.push(format!("CATEGORY = '{}'", category.replace('\'', "''")));
        }
        if r.get::<_, bool>(22) {
            o.push("PREFERRED = true".into());
        }
        let delim: String = r.get(23);
        if delim != "," {
            o.push(format!("DELIMITER = '{}'", delim.replace('\'', "''")));
        }
        if r.get::<_, bool>(25) {
            o.push("COLLATABLE = true".into());
        }
        if r.get::<_, bool>(18) {
            o.push("PASSEDBYVALUE".into());
        }
        let shell = Object::new(
            (SHELL_TYPE, oid),
            Section::PreData,
            "SHELL TYPE",
            &name,
            format!("CREATE TYPE {q};"),
        )
        .schema(&schema);
        cx.objects.push(shell);
        let sql = format!("CREATE TYPE {q} (\n    {}\n);", o.join(",\n    "));
        // the type and its functions need each other: dropping it takes them along
        cx.push(
            Object::new((PG_TYPE, oid), Section::PreData, "TYPE", &name, sql)
                .schema(&schema)
                .owned(&owner, "TYPE", &q, &qowner)
                .dep((SHELL_TYPE, oid))
                .dropped_by(
                    format!("DROP TYPE {q} CASCADE;"),
                    format!("DROP TYPE IF EXISTS {q} CASCADE;"),
                ),
        );
        let mut functions: Vec<u32> = r.get::<_, Vec<u32>>(26);
        if let Some(f) = r.get::<_, Option<u32>>(16) {
            functions.push(f);
        }
        io_functions.push((oid, functions.into_iter().filter(|f| *f != 0).collect()));
    }
    cx.base_type_functions.extend(io_functions);
    Ok(())
}

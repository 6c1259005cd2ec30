//! Functions, procedures and aggregates; casts and operators, which are built on them.

use super::Cx;
use super::class::{PG_CAST, PG_OPERATOR, PG_PROC};
use super::schema_objects::{not_internal, not_member};
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    functions(cx).await?;
    casts(cx).await?;
    operators(cx).await?;
    Ok(())
}

async fn functions(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT p.oid, n.nspname, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')',
                format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
                p.prokind::text, CASE WHEN p.prokind <> 'a' THEN pg_get_functiondef(p.oid) END,
                pg_get_userbyid(p.proowner), quote_ident(pg_get_userbyid(p.proowner)),
                format('%I.%I', n.nspname, p.proname), pg_get_function_arguments(p.oid),
                a.aggkind::text, a.aggtransfn::regproc::text, format_type(a.aggtranstype, NULL), a.aggtransspace,
                NULLIF(a.aggfinalfn, 0)::regproc::text, a.aggfinalextra, a.aggfinalmodify::text,
                NULLIF(a.aggcombinefn, 0)::regproc::text, NULLIF(a.aggserialfn, 0)::regproc::text,
                NULLIF(a.aggdeserialfn, 0)::regproc::text, a.agginitval,
                NULLIF(a.aggmtransfn, 0)::regproc::text, NULLIF(a.aggminvtransfn, 0)::regproc::text,
                CASE WHEN a.aggmtranstype <> 0 THEN format_type(a.aggmtranstype, NULL) END, a.aggmtransspace,
                NULLIF(a.aggmfinalfn, 0)::regproc::text, a.aggmfinalextra, a.aggminitval,
                NULLIF(a.aggsortop, 0)::regoperator::text, p.proparallel::text, a.aggmfinalmodify::text
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
         WHERE p.pronamespace = ANY($1) AND {} AND {}
         ORDER BY 2, 3",
        not_member("pg_proc", "p.oid"),
        not_internal("pg_proc", "p.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let label: String = r.get(2);
        let sig: String = r.get(3);
        let prokind: String = r.get(4);
        let def: Option<String> = r.get(5);
        let (owner, qowner): (String, String) = (r.get(6), r.get(7));
        let (kind, sql) = match prokind.as_str() {
            "a" => ("AGGREGATE", aggregate_sql(&r)),
            "p" => (
                "PROCEDURE",
                format!("{};", def.unwrap_or_default().trim_end()),
            ),
            _ => (
                "FUNCTION",
                format!("{};", def.unwrap_or_default().trim_end()),
            ),
        };
        let o = Object::new((PG_PROC, oid), Section::PreData, kind, label, sql)
            .schema(&schema)
            .owned(&owner, kind, &sig, &qowner);
        cx.push(o);
    }
    Ok(())
}

fn aggregate_sql(r: &tokio_postgres::Row) -> String {
    let name: String = r.get(8);
    let args: String = r.get(9);
    let opt = |i: usize| r.get::<_, Option<String>>(i);
    let lit = |s: String| format!("'{}'", s.replace('\'', "''"));
    let mut o = vec![
        format!("SFUNC = {}", r.get::<_, String>(11)),
        format!("STYPE = {}", r.get::<_, String>(12)),
    ];
    let sspace: i32 = r.get(13);
    if sspace != 0 {
        o.push(format!("SSPACE = {sspace}"));
    }
    // a final function's modify mode, where it is not its kind's default (read-only for
    // plain aggregates, read-write for ordered-set ones)
    let ordered = opt(10).as_deref() != Some("n");
    let modify = |mode: Option<String>| match (mode.as_deref(), ordered) {
        (Some("r"), true) => Some("READ_ONLY"),
        (Some("s"), _) => Some("SHAREABLE"),
        (Some("w"), false) => Some("READ_WRITE"),
        _ => None,
    };
    if let Some(f) = opt(14) {
        o.push(format!("FINALFUNC = {f}"));
        if r.get::<_, bool>(15) {
            o.push("FINALFUNC_EXTRA".into());
        }
        if let Some(m) = modify(opt(16)) {
            o.push(format!("FINALFUNC_MODIFY = {m}"));
        }
    }
    for (i, key) in [
        (17, "COMBINEFUNC"),
        (18, "SERIALFUNC"),
        (19, "DESERIALFUNC"),
    ] {
        if let Some(f) = opt(i) {
            o.push(format!("{key} = {f}"));
        }
    }
    if let Some(v) = opt(20) {
        o.push(format!("INITCOND = {}", lit(v)));
    }
    for (i, key) in [(21, "MSFUNC"), (22, "MINVFUNC"), (23, "MSTYPE")] {
        if let Some(f) = opt(i) {
            o.push(format!("{key} = {f}"));
        }
    }
    let mspace: i32 = r.get(24);
    if mspace != 0 {
        o.push(format!("MSSPACE = {mspace}"));
    }
    if let Some(f) = opt(25) {
        o.push(format!("MFINALFUNC = {f}"));
        if r.get::<_, bool>(26) {
            o.push("MFINALFUNC_EXTRA".into());
        }
        if let Some(m) = modify(opt(30)) {
            o.push(format!("MFINALFUNC_MODIFY = {m}"));
        }
    }
    if let Some(v) = opt(27) {
        o.push(format!("MINITCOND = {}", lit(v)));
    }
    if let Some(s) = opt(28) {
        // regoperator prints `schema.op(type,type)`; SORTOP takes OPERATOR(schema.op)
        let op = s.split('(').next().unwrap_or(&s).to_string();
        o.push(format!("SORTOP = OPERATOR({op})"));
    }
    match r.get::<_, String>(29).as_str() {
        "s" => o.push("PARALLEL = SAFE".into()),
        "r" => o.push("PARALLEL = RESTRICTED".into()),
        _ => {}
    }
    if r.get::<_, Option<String>>(10).as_deref() == Some("h") {
        o.push("HYPOTHETICAL".into());
    }
    let args = if args.is_empty() {
        "*".to_string()
    } else {
        args
    };
    format!(
        "CREATE AGGREGATE {name}({args}) (\n    {}\n);",
        o.join(",\n    ")
    )
}

/// User-defined casts (not those of extensions).
async fn casts(cx: &mut Cx<'_>) -> Result<()> {
    let sql = format!(
        "SELECT c.oid, format_type(c.castsource, NULL), format_type(c.casttarget, NULL), c.castmethod::text,
                CASE WHEN c.castfunc <> 0 THEN format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)) END,
                c.castcontext::text, c.castfunc
         FROM pg_cast c LEFT JOIN pg_proc p ON p.oid = c.castfunc LEFT JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE c.oid >= 16384 AND {} AND {} ORDER BY 2, 3",
        not_member("pg_cast", "c.oid"),
        not_internal("pg_cast", "c.oid")
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let (src, tgt): (String, String) = (r.get(1), r.get(2));
        let method: String = r.get(3);
        let func: Option<String> = r.get(4);
        let how = match (method.as_str(), func) {
            ("f", Some(f)) => format!("WITH FUNCTION {f}"),
            ("i", _) => "WITH INOUT".into(),
            _ => "WITHOUT FUNCTION".into(),
        };
        let context = match r.get::<_, String>(5).as_str() {
            "a" => " AS ASSIGNMENT",
            "i" => " AS IMPLICIT",
            _ => "",
        };
        let sql = format!("CREATE CAST ({src} AS {tgt}) {how}{context};");
        let mut o = Object::new(
            (PG_CAST, oid),
            Section::PreData,
            "CAST",
            format!("CAST ({src} AS {tgt})"),
            sql,
        )
        .dropped_by(
            format!("DROP CAST ({src} AS {tgt});"),
            format!("DROP CAST IF EXISTS ({src} AS {tgt});"),
        );
        let f: u32 = r.get(6);
        if f != 0 {
            o = o.dep((PG_PROC, f));
        }
        cx.push(o);
    }
    Ok(())
}

async fn operators(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT o.oid, n.nspname, o.oprname, format('%I.%s', n.nspname, o.oprname),
                o.oprcode::regproc::text,
                CASE WHEN o.oprleft <> 0 THEN format_type(o.oprleft, NULL) END,
                CASE WHEN o.oprright <> 0 THEN format_type(o.oprright, NULL) END,
                (SELECT format('OPERATOR(%I.%s)', cn.nspname, c.oprname) FROM pg_operator c JOIN pg_namespace cn ON cn.oid = c.oprnamespace WHERE c.oid = o.oprcom),
                (SELECT format('OPERATOR(%I.%s)', nn.nspname, g.oprname) FROM pg_operator g JOIN pg_namespace nn ON nn.oid = g.oprnamespace WHERE g.oid = o.oprnegate),
                NULLIF(o.oprrest, 0)::regproc::text, NULLIF(o.oprjoin, 0)::regproc::text, o.oprcanhash, o.oprcanmerge,
                pg_get_userbyid(o.oprowner), quote_ident(pg_get_userbyid(o.oprowner))
         FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
         WHERE o.oprnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_operator", "o.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let q: String = r.get(3);
        let mut opts = vec![format!("FUNCTION = {}", r.get::<_, String>(4))];
        let left: Option<String> = r.get(5);
        let right: Option<String> = r.get(6);
        if let Some(l) = &left {
            opts.push(format!("LEFTARG = {l}"));
        }
        if let Some(rt) = &right {
            opts.push(format!("RIGHTARG = {rt}"));
        }
        for (i, key) in [
            (7, "COMMUTATOR"),
            (8, "NEGATOR"),
            (9, "RESTRICT"),
            (10, "JOIN"),
        ] {
            if let Some(v) = r.get::<_, Option<String>>(i) {
                opts.push(format!("{key} = {v}"));
            }
        }
        if r.get::<_, bool>(11) {
            opts.push("HASHES".into());
        }
        if r.get::<_, bool>(12) {
            opts.push("MERGES".into());
        }
        let (owner, qowner): (String, String) = (r.get(13), r.get(14));
        let sig = format!(
            "{q}({}, {})",
            left.as_deref().unwrap_or("NONE"),
            right.as_deref().unwrap_or("NONE")
        );
        let sql = format!("CREATE OPERATOR {q} (\n    {}\n);", opts.join(",\n    "));
        let o = Object::new((PG_OPERATOR, oid), Section::PreData, "OPERATOR", &name, sql)
            .schema(&schema)
            .owned(&owner, "OPERATOR", &sig, &qowner);
        cx.push(o);
    }
    Ok(())
}

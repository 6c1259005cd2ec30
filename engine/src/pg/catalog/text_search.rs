//! Text search parsers and templates (whose functions are written in C, but which a
//! user may still define from existing ones), dictionaries and configurations.

use super::Cx;
use super::class::{PG_TS_CONFIG, PG_TS_DICT, PG_TS_PARSER, PG_TS_TEMPLATE};
use super::schema_objects::not_member;
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    parsers_and_templates(cx).await?;
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT d.oid, n.nspname, d.dictname, format('%I.%I', n.nspname, d.dictname),
                format('%I.%I', tn.nspname, t.tmplname), d.dictinitoption,
                pg_get_userbyid(d.dictowner), quote_ident(pg_get_userbyid(d.dictowner))
         FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace
         JOIN pg_ts_template t ON t.oid = d.dicttemplate JOIN pg_namespace tn ON tn.oid = t.tmplnamespace
         WHERE d.dictnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_ts_dict", "d.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let (q, template): (String, String) = (r.get(3), r.get(4));
        let init: Option<String> = r.get(5);
        let opts = init.map(|o| format!(",\n    {o}")).unwrap_or_default();
        let sql =
            format!("CREATE TEXT SEARCH DICTIONARY {q} (\n    TEMPLATE = {template}{opts}\n);");
        let (owner, qowner): (String, String) = (r.get(6), r.get(7));
        let o = Object::new(
            (PG_TS_DICT, oid),
            Section::PreData,
            "TEXT SEARCH DICTIONARY",
            &name,
            sql,
        )
        .schema(&schema)
        .owned(&owner, "TEXT SEARCH DICTIONARY", &q, &qowner);
        cx.push(o);
    }
    let sql = format!(
        "SELECT c.oid, n.nspname, c.cfgname, format('%I.%I', n.nspname, c.cfgname), format('%I.%I', pn.nspname, p.prsname),
                (SELECT string_agg(format('ALTER TEXT SEARCH CONFIGURATION %I.%I ADD MAPPING FOR %s WITH %s;', n.nspname, c.cfgname, tt.alias, m.dicts), E'\\n' ORDER BY tt.tokid)
                   FROM (SELECT maptokentype, string_agg(format('%I.%I', dn.nspname, dd.dictname), ', ' ORDER BY mapseqno) AS dicts
                           FROM pg_ts_config_map JOIN pg_ts_dict dd ON dd.oid = mapdict JOIN pg_namespace dn ON dn.oid = dd.dictnamespace
                          WHERE mapcfg = c.oid GROUP BY maptokentype) m
                   JOIN ts_token_type(c.cfgparser) tt ON tt.tokid = m.maptokentype),
                pg_get_userbyid(c.cfgowner), quote_ident(pg_get_userbyid(c.cfgowner))
         FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
         JOIN pg_ts_parser p ON p.oid = c.cfgparser JOIN pg_namespace pn ON pn.oid = p.prsnamespace
         WHERE c.cfgnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_ts_config", "c.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let (q, parser): (String, String) = (r.get(3), r.get(4));
        let mut sql = format!("CREATE TEXT SEARCH CONFIGURATION {q} (\n    PARSER = {parser}\n);");
        if let Some(m) = r.get::<_, Option<String>>(5) {
            sql.push('\n');
            sql.push_str(&m);
        }
        let (owner, qowner): (String, String) = (r.get(6), r.get(7));
        let o = Object::new(
            (PG_TS_CONFIG, oid),
            Section::PreData,
            "TEXT SEARCH CONFIGURATION",
            &name,
            sql,
        )
        .schema(&schema)
        .owned(&owner, "TEXT SEARCH CONFIGURATION", &q, &qowner);
        cx.push(o);
    }
    Ok(())
}

async fn parsers_and_templates(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let sql = format!(
        "SELECT p.oid, n.nspname, p.prsname, format('%I.%I', n.nspname, p.prsname),
                p.prsstart::regproc::text, p.prstoken::regproc::text, p.prsend::regproc::text,
                NULLIF(p.prsheadline, 0)::regproc::text, p.prslextype::regproc::text
         FROM pg_ts_parser p JOIN pg_namespace n ON n.oid = p.prsnamespace
         WHERE p.prsnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_ts_parser", "p.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let (schema, name, q): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut opts = vec![
            format!("START = {}", r.get::<_, String>(4)),
            format!("GETTOKEN = {}", r.get::<_, String>(5)),
            format!("END = {}", r.get::<_, String>(6)),
        ];
        if let Some(h) = r.get::<_, Option<String>>(7) {
            opts.push(format!("HEADLINE = {h}"));
        }
        opts.push(format!("LEXTYPES = {}", r.get::<_, String>(8)));
        let sql = format!(
            "CREATE TEXT SEARCH PARSER {q} (\n    {}\n);",
            opts.join(",\n    ")
        );
        cx.push(
            Object::new(
                (PG_TS_PARSER, oid),
                Section::PreData,
                "TEXT SEARCH PARSER",
                &name,
                sql,
            )
            .schema(&schema)
            .dropped_by(
                format!("DROP TEXT SEARCH PARSER {q};"),
                format!("DROP TEXT SEARCH PARSER IF EXISTS {q};"),
            ),
        );
    }
    let sql = format!(
        "SELECT t.oid, n.nspname, t.tmplname, format('%I.%I', n.nspname, t.tmplname),
                NULLIF(t.tmplinit, 0)::regproc::text, t.tmpllexize::regproc::text
         FROM pg_ts_template t JOIN pg_namespace n ON n.oid = t.tmplnamespace
         WHERE t.tmplnamespace = ANY($1) AND {} ORDER BY 2, 3",
        not_member("pg_ts_template", "t.oid")
    );
    for r in cx.query(&sql, &[&ns]).await? {
        let oid: u32 = r.get(0);
        let (schema, name, q): (String, String, String) = (r.get(1), r.get(2), r.get(3));
        let mut opts = Vec::new();
        if let Some(i) = r.get::<_, Option<String>>(4) {
            opts.push(format!("INIT = {i}"));
        }
        opts.push(format!("LEXIZE = {}", r.get::<_, String>(5)));
        let sql = format!(
            "CREATE TEXT SEARCH TEMPLATE {q} (\n    {}\n);",
            opts.join(",\n    ")
        );
        cx.push(
            Object::new(
                (PG_TS_TEMPLATE, oid),
                Section::PreData,
                "TEXT SEARCH TEMPLATE",
                &name,
                sql,
            )
            .schema(&schema)
            .dropped_by(
                format!("DROP TEXT SEARCH TEMPLATE {q};"),
                format!("DROP TEXT SEARCH TEMPLATE IF EXISTS {q};"),
            ),
        );
    }
    Ok(())
}

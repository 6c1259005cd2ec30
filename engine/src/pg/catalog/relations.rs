//! Tables, partitions, inheritance children, views, materialized views, sequences and
//! identity columns: CREATE statements built from pg_class and pg_attribute, since the
//! server has no `pg_get_tabledef`.

use std::collections::HashMap;

use super::class::{MATVIEW_REFRESH, PG_CLASS, PG_CONSTRAINT};
use super::{Cx, Relation};
use crate::error::Result;
use crate::pg::toc::{Object, Section, TableData};

/// A column as the catalogs describe it.
#[derive(Clone, Debug)]
struct Column {
    num: i16,
    name: String,
    type_sql: String,
    /// The column's NOT NULL, if it has one.
    not_null: Option<NotNull>,
    generated: String,
    default: Option<String>,
    collation: Option<String>,
    storage_differs: Option<String>,
    stats_target: i32,
    is_local: bool,
    inherited: bool,
    options: Option<Vec<String>>,
    fdw_options: Option<String>,
    compression: String,
}

/// A column's NOT NULL. From PostgreSQL 18 it is a constraint of its own (a
/// `pg_constraint` row of type `n`): named, possibly NO INHERIT or NOT VALID, local or
/// inherited; before 18 it is `attnotnull` and nothing more.
#[derive(Clone, Debug)]
struct NotNull {
    /// The constraint's name, quoted (18 and later).
    name: Option<String>,
    /// `convalidated`: a NOT VALID one is added after the data, as pg_dump does, since
    /// the rows already stored may hold NULLs.
    valid: bool,
    no_inherit: bool,
    /// The table's own (`conislocal`), not only inherited from a parent.
    local: bool,
    /// The constraint's oid (0 before 18).
    oid: u32,
}

impl NotNull {
    /// ` [CONSTRAINT name] NOT NULL[ NO INHERIT]`, as a column constraint.
    fn clause(&self) -> String {
        let mut out = String::new();
        if let Some(n) = &self.name {
            out.push_str(&format!(" CONSTRAINT {n}"));
        }
        out.push_str(" NOT NULL");
        if self.no_inherit {
            out.push_str(" NO INHERIT");
        }
        out
    }
}

/// Reads every selected relation, pushes its objects, and returns the tables whose data
/// is dumped.
pub(super) async fn load(cx: &mut Cx<'_>) -> Result<Vec<Relation>> {
    let rels = cx.rel_array();
    let columns = load_columns(cx, &rels).await?;
    let checks = load_checks(cx, &rels).await?;
    let ft_options = super::foreign::options_sql("ft.ftoptions");
    let rows = cx
        .query(
            &format!("SELECT c.oid, c.relkind::text, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
                    pg_get_userbyid(c.relowner), quote_ident(pg_get_userbyid(c.relowner)),
                    c.relpersistence::text, c.reloptions, tc.reloptions,
                    c.relispartition, pg_get_expr(c.relpartbound, c.oid),
                    CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                    (SELECT array_agg(format('%I.%I', pn.nspname, pc.relname) ORDER BY i.inhseqno)
                       FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent
                       JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid),
                    (SELECT array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_inherits i WHERE i.inhrelid = c.oid),
                    pg_table_size(c.oid)::int8, c.relpages::int8,
                    CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END,
                    quote_ident(am.amname),
                    c.relispopulated, c.relreplident::text, c.relrowsecurity, c.relforcerowsecurity,
                    quote_ident(fs.srvname), {ft_options},
                    (SELECT quote_ident(t.spcname) FROM pg_tablespace t WHERE t.oid = c.reltablespace),
                    CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_class tc ON tc.oid = c.reltoastrelid
             LEFT JOIN pg_am am ON am.oid = c.relam
             LEFT JOIN pg_foreign_table ft ON ft.ftrelid = c.oid
             LEFT JOIN pg_foreign_server fs ON fs.oid = ft.ftserver
             WHERE c.oid = ANY($1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
             ORDER BY n.nspname, c.relname"),
            &[&rels],
        )
        .await?;
    let via_root = load_via_root(cx, &rels).await?;
    let mut data_tables = Vec::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let relkind = r.get::<_, String>(1).chars().next().unwrap_or('r');
        let schema: String = r.get(2);
        let name: String = r.get(3);
        let q: String = r.get(4);
        let owner: String = r.get(5);
        let qowner: String = r.get(6);
        let unlogged = r.get::<_, String>(7) == "u";
        let mut options: Vec<String> = r.get::<_, Option<Vec<String>>>(8).unwrap_or_default();
        options.extend(
            r.get::<_, Option<Vec<String>>>(9)
                .unwrap_or_default()
                .into_iter()
                .map(|o| format!("toast.{o}")),
        );
        let is_partition: bool = r.get(10);
        let bound: Option<String> = r.get(11);
        let partkey: Option<String> = r.get(12);
        let parents: Vec<String> = r.get::<_, Option<Vec<String>>>(13).unwrap_or_default();
        let parent_oids: Vec<u32> = r.get::<_, Option<Vec<u32>>>(14).unwrap_or_default();
        let bytes = r.get::<_, i64>(15).max(0) as u64;
        let pages = r.get::<_, i64>(16).max(0) as u64;
        let viewdef: Option<String> = r.get(17);
        // heap is every table's default: only another access method is written, but a
        // partitioned table's (17 and later) is always written, since its partitions
        // take it
        let access_method: Option<String> = r
            .get::<_, Option<String>>(18)
            .filter(|am| am != "heap" || relkind == 'p');
        let populated: bool = r.get(19);
        let replident: String = r.get(20);
        let (rls, force_rls): (bool, bool) = (r.get(21), r.get(22));
        let foreign: Option<(String, Option<String>)> =
            r.get::<_, Option<String>>(23).map(|srv| (srv, r.get(24)));
        let tablespace: Option<String> = r.get(25);
        let of_type: Option<String> = r.get(26);
        let cols = columns.get(&oid).cloned().unwrap_or_default();
        let key = (PG_CLASS, oid);
        let with = if options.is_empty() {
            String::new()
        } else {
            format!(" WITH ({})", options.join(", "))
        };
        match relkind {
            'v' => {
                let def = viewdef.unwrap_or_default();
                let sql = format!(
                    "CREATE VIEW {q}{with} AS\n{};",
                    def.trim().trim_end_matches(';')
                );
                cx.push(
                    Object::new(key, Section::PreData, "VIEW", &name, sql)
                        .schema(&schema)
                        .owned(&owner, "VIEW", &q, &qowner),
                );
                // a view's column default (for inserts through it) is set after it
                for c in cols.iter().filter(|c| c.default.is_some()) {
                    let e = c.default.as_deref().unwrap_or_default();
                    cx.objects.push(
                        Object::new(
                            key,
                            Section::PreData,
                            "DEFAULT",
                            format!("{name} {}", c.name),
                            format!(
                                "ALTER TABLE ONLY {q} ALTER COLUMN {} SET DEFAULT {e};",
                                c.name
                            ),
                        )
                        .schema(&schema)
                        .dep(key),
                    );
                }
            }
            'm' => {
                let def = viewdef.unwrap_or_default();
                let using = access_method
                    .as_ref()
                    .map(|a| format!(" USING {a}"))
                    .unwrap_or_default();
                let mut sql = format!(
                    "CREATE MATERIALIZED VIEW {q}{using}{with} AS\n{}\n  WITH NO DATA;",
                    def.trim().trim_end_matches(';')
                );
                let (mut after, mut compression) = (Vec::new(), Vec::new());
                for c in &cols {
                    column_settings(&q, c, &mut after, &mut compression);
                }
                for a in after {
                    sql.push('\n');
                    sql.push_str(&a);
                }
                let mut o = Object::new(key, Section::PreData, "MATERIALIZED VIEW", &name, sql)
                    .schema(&schema)
                    .owned(&owner, "MATERIALIZED VIEW", &q, &qowner)
                    .in_tablespace(tablespace.clone());
                o.compression_sql = (!compression.is_empty()).then(|| compression.join("\n"));
                cx.push(o);
                if populated {
                    // a refresh of its own key, so that the refreshes of the
                    // materialized views it reads can come first (refresh_order)
                    let refresh = Object::new(
                        (MATVIEW_REFRESH, oid),
                        Section::PostAcl,
                        "MATERIALIZED VIEW DATA",
                        &name,
                        format!("REFRESH MATERIALIZED VIEW {q};"),
                    )
                    .schema(&schema)
                    .dep(key);
                    cx.objects.push(refresh);
                }
            }
            'S' => {} // sequences are read below, with their parameters
            _ => {
                let parent_cols: Vec<&Column> = parent_oids
                    .iter()
                    .filter_map(|p| columns.get(p))
                    .flatten()
                    .collect();
                let (sql, compression) = table_sql(&TableSpec {
                    q: &q,
                    unlogged,
                    columns: &cols,
                    parent_columns: &parent_cols,
                    is_partition,
                    parents: &parents,
                    partkey: partkey.as_deref(),
                    access_method: access_method.as_deref(),
                    foreign: foreign.as_ref(),
                    of_type: of_type.as_deref(),
                    with: &with,
                    checks: &checks
                        .get(&oid)
                        .map(Vec::as_slice)
                        .unwrap_or_default()
                        .iter()
                        .filter(|(_, local)| *local || is_partition)
                        .map(|(c, _)| c.clone())
                        .collect::<Vec<_>>(),
                });
                let kind = if foreign.is_some() {
                    "FOREIGN TABLE"
                } else {
                    "TABLE"
                };
                let mut o = Object::new(key, Section::PreData, kind, &name, sql)
                    .schema(&schema)
                    .owned(&owner, kind, &q, &qowner)
                    .in_tablespace(tablespace.clone());
                o.compression_sql = compression;
                cx.push(o);
                // 18: a NOT VALID NOT NULL is added after the data (no ONLY: children
                // take it too, as they would have)
                for c in &cols {
                    if let Some(NotNull {
                        name: Some(n),
                        valid: false,
                        local: true,
                        oid,
                        no_inherit,
                    }) = &c.not_null
                    {
                        let no_inherit = if *no_inherit { " NO INHERIT" } else { "" };
                        cx.push(
                            Object::new(
                                (PG_CONSTRAINT, *oid),
                                Section::PostData,
                                "NOT NULL CONSTRAINT",
                                format!("{name} {n}"),
                                format!(
                                    "ALTER TABLE {q}\n    ADD CONSTRAINT {n} NOT NULL {}{no_inherit} NOT VALID;",
                                    c.name
                                ),
                            )
                            .schema(&schema)
                            .dep(key)
                            .dropped_by(
                                format!("ALTER TABLE {q} DROP CONSTRAINT {n};"),
                                format!("ALTER TABLE IF EXISTS {q} DROP CONSTRAINT IF EXISTS {n};"),
                            ),
                        );
                    }
                }
                // 18: a child's inherited NOT NULL that is valid where its parent's is
                // NOT VALID (the child was created after the parent's constraint, or
                // validated alone) is inherited NOT VALID from the parent's post-data
                // entry, and validated on the child alone after it
                if !is_partition {
                    for c in &cols {
                        let Some(NotNull {
                            name: Some(n),
                            valid: true,
                            local: false,
                            oid,
                            ..
                        }) = &c.not_null
                        else {
                            continue;
                        };
                        let parent_invalid = parent_cols.iter().find_map(|p| match &p.not_null {
                            Some(NotNull {
                                name: Some(pn),
                                valid: false,
                                oid,
                                ..
                            }) if p.name == c.name && pn == n => Some(*oid),
                            _ => None,
                        });
                        if let Some(parent_constraint) = parent_invalid {
                            cx.push(
                                Object::new(
                                    (PG_CONSTRAINT, *oid),
                                    Section::PostData,
                                    "CONSTRAINT VALIDATION",
                                    format!("{name} {n}"),
                                    format!("ALTER TABLE ONLY {q} VALIDATE CONSTRAINT {n};"),
                                )
                                .schema(&schema)
                                .dep(key)
                                .dep((PG_CONSTRAINT, parent_constraint)),
                            );
                        }
                    }
                }
                if let (true, Some(parent), Some(&parent_oid)) =
                    (is_partition, parents.first(), parent_oids.first())
                {
                    // a partition is created as a table of its own, with its own column
                    // order, and attached (as pg_dump does): PARTITION OF would give it
                    // its parent's order, and COPY and SELECT * would change meaning
                    let bound = bound.as_deref().unwrap_or("DEFAULT");
                    cx.objects.push(
                        Object::new(
                            key,
                            Section::PreData,
                            "TABLE ATTACH",
                            &name,
                            format!("ALTER TABLE ONLY {parent} ATTACH PARTITION {q} {bound};"),
                        )
                        .schema(&schema)
                        .dep((PG_CLASS, parent_oid))
                        .dep(key),
                    );
                }
                let mut post = Vec::new();
                // foreign tables have no replica identity to set
                match replident.as_str() {
                    _ if foreign.is_some() => {}
                    "f" => post.push(format!("ALTER TABLE ONLY {q} REPLICA IDENTITY FULL;")),
                    "n" => post.push(format!("ALTER TABLE ONLY {q} REPLICA IDENTITY NOTHING;")),
                    _ => {}
                }
                if rls {
                    post.push(format!("ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;"));
                }
                if force_rls {
                    post.push(format!("ALTER TABLE {q} FORCE ROW LEVEL SECURITY;"));
                }
                if !post.is_empty() {
                    cx.push(
                        Object::new(
                            key,
                            Section::PostData,
                            "ROW SECURITY",
                            &name,
                            post.join("\n"),
                        )
                        .schema(&schema)
                        .dep(key),
                    );
                }
                if relkind == 'r' && !cx.no_data.contains(&oid) {
                    let copy_columns: Vec<String> = cols
                        .iter()
                        .filter(|c| c.generated.is_empty())
                        .map(|c| c.name.clone())
                        .collect();
                    let data = TableData {
                        qualified: q.clone(),
                        columns: copy_columns.clone(),
                        bytes,
                        load_via_root: via_root.get(&oid).cloned(),
                    };
                    let mut o = Object::new(key, Section::Data, "TABLE DATA", &name, String::new())
                        .schema(&schema)
                        .dep(key);
                    o.data = Some(data);
                    cx.objects.push(o);
                    data_tables.push(Relation {
                        oid,
                        schema: schema.clone(),
                        name: name.clone(),
                        qualified: q.clone(),
                        bytes,
                        pages,
                        copy_columns,
                        condition: None,
                    });
                }
            }
        }
    }
    load_sequences(cx, &rels).await?;
    Ok(data_tables)
}

struct TableSpec<'a> {
    q: &'a str,
    unlogged: bool,
    columns: &'a [Column],
    parent_columns: &'a [&'a Column],
    is_partition: bool,
    parents: &'a [String],
    partkey: Option<&'a str>,
    access_method: Option<&'a str>,
    with: &'a str,
    /// Validated CHECK constraints written inside CREATE TABLE, `CONSTRAINT name CHECK
    /// (…)`: the table's own, and for a partition those of its parent too (ATTACH
    /// PARTITION needs them there; it marks them inherited).
    checks: &'a [String],
    /// For a foreign table: its server and `OPTIONS` list.
    foreign: Option<&'a (String, Option<String>)>,
    /// For a typed table (`CREATE TABLE … OF type`): the type.
    of_type: Option<&'a str>,
}

/// What a column has that CREATE TABLE (or MATERIALIZED VIEW) cannot say: its storage,
/// statistics target and options into `after`, its TOAST compression into `compression`.
fn column_settings(q: &str, c: &Column, after: &mut Vec<String>, compression: &mut Vec<String>) {
    let name = &c.name;
    if let Some(s) = &c.storage_differs {
        after.push(format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {name} SET STORAGE {s};"
        ));
    }
    if c.stats_target >= 0 {
        after.push(format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {name} SET STATISTICS {};",
            c.stats_target
        ));
    }
    if let Some(opts) = &c.options {
        after.push(format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {name} SET ({});",
            opts.join(", ")
        ));
    }
    if !c.compression.is_empty() {
        compression.push(format!(
            "ALTER TABLE ONLY {q} ALTER COLUMN {name} SET COMPRESSION {};",
            c.compression
        ));
    }
}

/// CREATE TABLE and the column settings that CREATE TABLE cannot say; apart, the
/// columns' TOAST compression (which `--no-toast-compression` leaves out).
fn table_sql(t: &TableSpec<'_>) -> (String, Option<String>) {
    let mut compression = Vec::new();
    let q = t.q;
    let unlogged = if t.unlogged { "UNLOGGED " } else { "" };
    let mut out = String::new();
    let mut after = Vec::new();
    let parent_default = |name: &str| {
        t.parent_columns
            .iter()
            .find(|c| c.name == name)
            .and_then(|c| c.default.clone())
    };
    let parent_not_null = |name: &str| {
        t.parent_columns
            .iter()
            .any(|c| c.name == name && c.not_null.is_some())
    };
    let mut defs = Vec::new();
    for c in t.columns {
        // a partition spells every column (it is attached after it is created); an
        // inheritance child its own columns and those it merges with a parent's
        let spelled_here = t.is_partition || c.is_local || !c.inherited;
        if t.of_type.is_some() {
            // a typed table's columns are its type's: only their options are written
            let mut d = String::new();
            if let Some(e) = &c.default {
                d.push_str(&format!(" DEFAULT {e}"));
            }
            if let Some(nn) = c.not_null.as_ref().filter(|nn| nn.valid) {
                d.push_str(&nn.clause());
            }
            if !d.is_empty() {
                defs.push(format!("    {} WITH OPTIONS{d}", c.name));
            }
        } else if spelled_here {
            let mut d = format!("    {} {}", c.name, c.type_sql);
            if let Some(o) = &c.fdw_options {
                d.push_str(&format!(" OPTIONS ({o})"));
            }
            if let Some(coll) = &c.collation {
                d.push_str(&format!(" COLLATE {coll}"));
            }
            if let Some(e) = &c.default {
                match c.generated.as_str() {
                    "s" => d.push_str(&format!(" GENERATED ALWAYS AS ({e}) STORED")),
                    // virtual (18): the default kind, written without a keyword
                    "v" => d.push_str(&format!(" GENERATED ALWAYS AS ({e})")),
                    _ => d.push_str(&format!(" DEFAULT {e}")),
                }
            }
            // a partition's inherited NOT NULL is written too (it is attached later),
            // an inheritance child's only when it is its own
            if let Some(nn) = c
                .not_null
                .as_ref()
                .filter(|nn| nn.valid && (nn.local || t.is_partition || nn.name.is_none()))
            {
                d.push_str(&nn.clause());
            }
            defs.push(d);
        } else {
            // inherited column: only what differs from the parent
            if c.default != parent_default(&c.name) && c.generated.is_empty() {
                match &c.default {
                    Some(e) => after.push(format!(
                        "ALTER TABLE ONLY {q} ALTER COLUMN {} SET DEFAULT {e};",
                        c.name
                    )),
                    None => after.push(format!(
                        "ALTER TABLE ONLY {q} ALTER COLUMN {} DROP DEFAULT;",
                        c.name
                    )),
                }
            }
            match &c.not_null {
                // 18: a NOT NULL of the child's own on an inherited column, by its name
                Some(
                    nn @ NotNull {
                        name: Some(n),
                        valid: true,
                        local: true,
                        ..
                    },
                ) => {
                    let _ = nn;
                    defs.push(format!("    CONSTRAINT {n} NOT NULL {}", c.name));
                }
                Some(NotNull { name: None, .. }) if !parent_not_null(&c.name) => after.push(
                    format!("ALTER TABLE ONLY {q} ALTER COLUMN {} SET NOT NULL;", c.name),
                ),
                _ => {}
            }
        }
        column_settings(q, c, &mut after, &mut compression);
    }
    defs.extend(t.checks.iter().map(|c| format!("    {c}")));
    let table = if t.foreign.is_some() {
        "FOREIGN TABLE"
    } else {
        "TABLE"
    };
    match t.of_type {
        Some(ty) if defs.is_empty() => out.push_str(&format!("CREATE {unlogged}TABLE {q} OF {ty}")),
        Some(ty) => out.push_str(&format!(
            "CREATE {unlogged}TABLE {q} OF {ty} (\n{}\n)",
            defs.join(",\n")
        )),
        None => out.push_str(&format!(
            "CREATE {unlogged}{table} {q} (\n{}\n)",
            defs.join(",\n")
        )),
    }
    if !t.parents.is_empty() && !t.is_partition {
        out.push_str(&format!("\nINHERITS ({})", t.parents.join(", ")));
    }
    if let Some(k) = t.partkey {
        out.push_str(&format!("\nPARTITION BY {k}"));
    }
    match t.access_method {
        // CREATE TABLE … PARTITION BY … USING is refused before 17; ALTER says the same
        Some(am) if t.partkey.is_some() => {
            after.insert(0, format!("ALTER TABLE {q} SET ACCESS METHOD {am};"))
        }
        Some(am) => out.push_str(&format!("\nUSING {am}")),
        None => {}
    }
    if let Some((server, options)) = t.foreign {
        out.push_str(&format!("\nSERVER {server}"));
        if let Some(o) = options {
            out.push_str(&format!("\nOPTIONS ({o})"));
        }
    }
    out.push_str(t.with);
    out.push(';');
    for a in after {
        out.push('\n');
        out.push_str(&a);
    }
    (
        out,
        (!compression.is_empty()).then(|| compression.join("\n")),
    )
}

/// Validated CHECK constraints by table, ready to write inside CREATE TABLE, each with
/// whether it is the table's own (`conislocal`).
async fn load_checks(cx: &Cx<'_>, rels: &[u32]) -> Result<HashMap<u32, Vec<(String, bool)>>> {
    let mut out: HashMap<u32, Vec<(String, bool)>> = HashMap::new();
    let rows = cx
        .query(
            "SELECT k.conrelid, format('CONSTRAINT %I %s', k.conname, pg_get_constraintdef(k.oid)), k.conislocal
             FROM pg_constraint k WHERE k.conrelid = ANY($1) AND k.contype = 'c' AND k.convalidated
             ORDER BY k.conrelid, k.conname",
            &[&rels],
        )
        .await?;
    for r in rows {
        out.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
    }
    Ok(out)
}

async fn load_columns(cx: &Cx<'_>, rels: &[u32]) -> Result<HashMap<u32, Vec<Column>>> {
    let compression = if cx.version >= 140000 {
        "a.attcompression::text"
    } else {
        "''"
    };
    let fdw_options = super::foreign::options_sql("a.attfdwoptions");
    // 18: NOT NULL is a pg_constraint row of its own
    let (not_null, not_null_join) = if cx.version >= 180000 {
        (
            "quote_ident(nn.conname), nn.convalidated, nn.connoinherit, nn.conislocal, nn.oid",
            "LEFT JOIN pg_constraint nn ON nn.conrelid = a.attrelid AND nn.contype = 'n' AND nn.conkey = ARRAY[a.attnum]",
        )
    } else {
        ("NULL::text, true, false, a.attislocal, 0::oid", "")
    };
    // options a user set (n_distinct…); those a server keeps for itself are named pg_…
    // and refused by SET (15.20 writes pg_attver on every column, and its own pg_dump
    // leaves it out)
    let attoptions =
        "NULLIF(ARRAY(SELECT o FROM unnest(a.attoptions) o WHERE o NOT LIKE 'pg\\_%'), '{}')";
    let attnotnull = if cx.version >= 180000 {
        "(a.attnotnull OR nn.oid IS NOT NULL)"
    } else {
        "a.attnotnull"
    };
    let sql = format!(
        "SELECT a.attrelid, a.attnum, quote_ident(a.attname), format_type(a.atttypid, a.atttypmod), {attnotnull},
                a.attgenerated::text, pg_get_expr(d.adbin, d.adrelid),
                CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0 THEN
                  (SELECT format('%I.%I', cn.nspname, co.collname) FROM pg_collation co JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) END,
                CASE WHEN a.attstorage <> t.typstorage THEN
                  CASE a.attstorage WHEN 'p' THEN 'PLAIN' WHEN 'e' THEN 'EXTERNAL' WHEN 'm' THEN 'MAIN' WHEN 'x' THEN 'EXTENDED' END END,
                COALESCE(a.attstattarget, -1)::int, a.attislocal, a.attinhcount > 0, {attoptions}, {compression}, {fdw_options},
                {not_null}
         FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
         LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
         {not_null_join}
         WHERE a.attrelid = ANY($1) AND a.attnum > 0 AND NOT a.attisdropped
         ORDER BY a.attrelid, a.attnum"
    );
    let mut out: HashMap<u32, Vec<Column>> = HashMap::new();
    for r in cx.query(&sql, &[&rels]).await? {
        let compression: String = r.get(13);
        out.entry(r.get(0)).or_default().push(Column {
            num: r.get(1),
            name: r.get(2),
            type_sql: r.get(3),
            not_null: r.get::<_, bool>(4).then(|| NotNull {
                name: r.get(15),
                valid: r.get::<_, Option<bool>>(16).unwrap_or(true),
                no_inherit: r.get::<_, Option<bool>>(17).unwrap_or(false),
                local: r.get::<_, Option<bool>>(18).unwrap_or(true),
                oid: r.get::<_, Option<u32>>(19).unwrap_or(0),
            }),
            generated: r.get(5),
            default: r.get(6),
            collation: r.get(7),
            storage_differs: r.get(8),
            stats_target: r.get(9),
            is_local: r.get(10),
            inherited: r.get(11),
            options: r.get(12),
            fdw_options: r.get(14),
            compression: match compression.as_str() {
                "p" => "pglz".into(),
                "l" => "lz4".into(),
                _ => String::new(),
            },
        });
    }
    for cols in out.values_mut() {
        cols.sort_by_key(|c| c.num);
    }
    Ok(out)
}

/// Sequences: CREATE SEQUENCE (or the identity clause of their column), OWNED BY, and the
/// value as a data item.
async fn load_sequences(cx: &mut Cx<'_>, rels: &[u32]) -> Result<()> {
    let rows = cx
        .query(
            "SELECT c.oid, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname),
                    pg_get_userbyid(c.relowner), quote_ident(pg_get_userbyid(c.relowner)),
                    format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                    c.relpersistence = 'u',
                    d.deptype::text, CASE WHEN tc.oid IS NOT NULL THEN format('%I.%I', tn.nspname, tc.relname) END, quote_ident(a.attname), tc.oid,
                    a.attidentity::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_sequence s ON s.seqrelid = c.oid
             LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
             LEFT JOIN pg_class tc ON tc.oid = d.refobjid
             LEFT JOIN pg_namespace tn ON tn.oid = tc.relnamespace
             LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
             WHERE c.oid = ANY($1) AND c.relkind = 'S'
             ORDER BY n.nspname, c.relname",
            &[&rels],
        )
        .await?;
    let mut values_sql = Vec::new();
    let mut seqs = Vec::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let schema: String = r.get(1);
        let name: String = r.get(2);
        let q: String = r.get(3);
        let (owner, qowner): (String, String) = (r.get(4), r.get(5));
        let ty: String = r.get(6);
        let (start, inc, min, max, cache): (i64, i64, i64, i64, i64) =
            (r.get(7), r.get(8), r.get(9), r.get(10), r.get(11));
        let cycle: bool = r.get(12);
        let unlogged: bool = r.get(13);
        let deptype: Option<String> = r.get(14);
        let table: Option<String> = r.get(15);
        let column: Option<String> = r.get(16);
        let table_oid: Option<u32> = r.get(17);
        let identity: Option<String> = r.get(18);
        let (default_min, default_max) = match ty.as_str() {
            "smallint" => (i64::from(i16::MIN), i64::from(i16::MAX)),
            "integer" => (i64::from(i32::MIN), i64::from(i32::MAX)),
            _ => (i64::MIN, i64::MAX),
        };
        let mut params = vec![format!("START WITH {start}"), format!("INCREMENT BY {inc}")];
        let asc = inc > 0;
        params.push(if (asc && min == 1) || (!asc && min == default_min) {
            "NO MINVALUE".into()
        } else {
            format!("MINVALUE {min}")
        });
        params.push(if (asc && max == default_max) || (!asc && max == -1) {
            "NO MAXVALUE".into()
        } else {
            format!("MAXVALUE {max}")
        });
        params.push(format!("CACHE {cache}"));
        if cycle {
            params.push("CYCLE".into());
        }
        let key = (PG_CLASS, oid);
        match (deptype.as_deref(), table, column, table_oid) {
            (Some("i"), Some(t), Some(col), Some(toid)) => {
                // identity sequence: created by the column's identity clause
                let how = if identity.as_deref() == Some("a") {
                    "ALWAYS"
                } else {
                    "BY DEFAULT"
                };
                let sql = format!(
                    "ALTER TABLE {t} ALTER COLUMN {col} ADD GENERATED {how} AS IDENTITY (\n    SEQUENCE NAME {q}\n    {}\n);{}",
                    params.join("\n    "),
                    if unlogged {
                        format!("\nALTER SEQUENCE {q} SET UNLOGGED;")
                    } else {
                        String::new()
                    }
                );
                cx.push(
                    Object::new(key, Section::PreData, "SEQUENCE", &name, sql)
                        .schema(&schema)
                        .dep((PG_CLASS, toid)),
                );
            }
            (dep, t, col, toid) => {
                let sql = format!(
                    "CREATE {}SEQUENCE {q}\n    AS {ty}\n    {};",
                    if unlogged { "UNLOGGED " } else { "" },
                    params.join("\n    ")
                );
                cx.push(
                    Object::new(key, Section::PreData, "SEQUENCE", &name, sql)
                        .schema(&schema)
                        .owned(&owner, "SEQUENCE", &q, &qowner),
                );
                if let (Some("a"), Some(t), Some(col), Some(toid)) = (dep, t, col, toid) {
                    // pg_depend records OWNED BY as the sequence depending on its table;
                    // CREATE SEQUENCE must come first (the column default needs it), and
                    // the ownership is its own entry after the table
                    if let Some(o) = cx.objects.last_mut() {
                        o.deps.retain(|d| *d != (PG_CLASS, toid));
                    }
                    let o = Object::new(
                        (PG_CLASS, oid),
                        Section::PreData,
                        "SEQUENCE OWNED BY",
                        &name,
                        format!("ALTER SEQUENCE {q} OWNED BY {t}.{col};"),
                    )
                    .schema(&schema)
                    .dep((PG_CLASS, toid))
                    .dep(key);
                    cx.objects.push(o);
                }
            }
        }
        seqs.push((key, schema, name, q.clone()));
        values_sql.push(format!("SELECT {oid}::oid, last_value, is_called FROM {q}"));
    }
    // one round trip for every sequence's value
    let mut values: HashMap<u32, (i64, bool)> = HashMap::new();
    for chunk in values_sql.chunks(500) {
        for r in cx.query(&chunk.join(" UNION ALL "), &[]).await? {
            values.insert(r.get(0), (r.get(1), r.get(2)));
        }
    }
    for (key, schema, name, q) in seqs {
        if let Some((last, called)) = values.get(&key.1) {
            let literal = q.replace('\'', "''");
            let sql = format!("SELECT pg_catalog.setval('{literal}', {last}, {called});");
            cx.objects.push(
                Object::new(key, Section::Data, "SEQUENCE SET", &name, sql)
                    .schema(&schema)
                    .dep(key),
            );
        }
    }
    Ok(())
}

/// The rows of extensions' configuration tables (`pg_extension_config_dump`): the table
/// comes with CREATE EXTENSION, the rows its condition selects are the user's, and are
/// loaded after it (as pg_dump does); so are its configuration sequences' values.
pub(super) async fn extension_configuration(cx: &mut Cx<'_>) -> Result<Vec<Relation>> {
    let rows = cx
        .query(
            "SELECT c.oid, c.relkind::text, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), x.oid,
                    NULLIF(x.extcondition[t.i], ''), pg_table_size(c.oid)::int8, c.relpages::int8,
                    ARRAY(SELECT quote_ident(a.attname) FROM pg_attribute a
                           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
                           ORDER BY a.attnum)
             FROM pg_extension x, generate_subscripts(x.extconfig, 1) t(i)
             JOIN pg_class c ON true JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.oid = x.extconfig[t.i] AND c.relkind IN ('r', 'S')
             ORDER BY 3, 4",
            &[],
        )
        .await?;
    let mut tables = Vec::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let (schema, name, q): (String, String, String) = (r.get(2), r.get(3), r.get(4));
        let extension: u32 = r.get(5);
        let key = (PG_CLASS, oid);
        if r.get::<_, String>(1) == "S" {
            let (last, called): (i64, bool) = {
                let v = cx
                    .query(&format!("SELECT last_value, is_called FROM {q}"), &[])
                    .await?;
                v.first().map_or((1, false), |r| (r.get(0), r.get(1)))
            };
            let literal = q.replace('\'', "''");
            cx.objects.push(
                Object::new(
                    key,
                    Section::Data,
                    "SEQUENCE SET",
                    &name,
                    format!("SELECT pg_catalog.setval('{literal}', {last}, {called});"),
                )
                .schema(&schema)
                .dep((super::class::PG_EXTENSION, extension)),
            );
            continue;
        }
        let columns: Vec<String> = r.get(9);
        let bytes = r.get::<_, i64>(7).max(0) as u64;
        let mut o = Object::new(key, Section::Data, "TABLE DATA", &name, String::new())
            .schema(&schema)
            .dep((super::class::PG_EXTENSION, extension));
        o.data = Some(TableData {
            qualified: q.clone(),
            columns: columns.clone(),
            bytes,
            load_via_root: None,
        });
        cx.objects.push(o);
        tables.push(Relation {
            oid,
            schema,
            name,
            qualified: q,
            bytes,
            pages: r.get::<_, i64>(8).max(0) as u64,
            copy_columns: columns,
            condition: r.get(6),
        });
    }
    Ok(tables)
}

/// The partitions whose rows must be loaded through their tree's root: those under a
/// table hash-partitioned on an enum, or on anything built on one (an array, a domain, a
/// composite or range of it), or on an expression. An enum value hashes by its oid, which
/// the restore's CREATE TYPE gives anew: a row may belong to another partition there. By
/// partition oid, the quoted root.
async fn load_via_root(cx: &Cx<'_>, rels: &[u32]) -> Result<HashMap<u32, String>> {
    let rows = cx
        .query(
            "WITH RECURSIVE enumish(t) AS (
                 SELECT oid FROM pg_type WHERE typtype = 'e'
                 UNION
                 SELECT ty.oid FROM pg_type ty, enumish e
                  WHERE ty.typelem = e.t OR ty.typbasetype = e.t
                     OR (ty.typrelid <> 0 AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = ty.typrelid AND a.atttypid = e.t))
                     OR EXISTS (SELECT 1 FROM pg_range g WHERE g.rngtypid = ty.oid AND g.rngsubtype = e.t)
             ), unsafe AS (
                 SELECT p.partrelid FROM pg_partitioned_table p
                  WHERE p.partstrat = 'h'
                    AND (p.partexprs IS NOT NULL
                         OR EXISTS (SELECT 1 FROM unnest(p.partattrs::int2[]) k JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = k
                                     WHERE a.atttypid IN (SELECT t FROM enumish)))
             )
             SELECT c.oid, (SELECT format('%I.%I', rn.nspname, rc.relname) FROM pg_class rc JOIN pg_namespace rn ON rn.oid = rc.relnamespace
                             WHERE rc.oid = pg_partition_root(c.oid))
             FROM pg_class c
             WHERE c.oid = ANY($1) AND c.relispartition
               AND EXISTS (SELECT 1 FROM pg_partition_ancestors(c.oid) a WHERE a.relid IN (SELECT partrelid FROM unsafe))",
            &[&rels],
        )
        .await?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}

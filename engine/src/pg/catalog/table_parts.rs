//! What hangs off a table and is restored after its data (post-data): constraints,
//! indexes and their partition attachments, triggers, rules, row-security policies,
//! extended statistics; plus CHECK constraints that are NOT VALID.

use super::Cx;
use super::class::{PG_CLASS, PG_CONSTRAINT, PG_POLICY, PG_REWRITE, PG_STATISTIC_EXT, PG_TRIGGER};
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    constraints(cx).await?;
    indexes(cx).await?;
    triggers(cx).await?;
    rules(cx).await?;
    policies(cx).await?;
    statistics(cx).await?;
    Ok(())
}

/// PRIMARY KEY, UNIQUE, EXCLUDE, FOREIGN KEY, and NOT VALID CHECK constraints (valid
/// CHECKs are written inside CREATE TABLE). Constraints of partitions that come from a
/// partitioned parent are dumped on each partition and attached (PK/UNIQUE), or implied
/// (FOREIGN KEY), as pg_dump does.
async fn constraints(cx: &mut Cx<'_>) -> Result<()> {
    let rels = cx.rel_array();
    let rows = cx
        .query(
            "SELECT k.oid, k.conrelid, n.nspname, c.relname, format('%I.%I', n.nspname, c.relname), quote_ident(k.conname),
                    k.conname, k.contype::text, pg_get_constraintdef(k.oid), k.conparentid <> 0, c.relkind = 'p',
                    k.confrelid, k.convalidated, k.conislocal,
                    (SELECT quote_ident(t.spcname) FROM pg_class ic JOIN pg_tablespace t ON t.oid = ic.reltablespace WHERE ic.oid = k.conindid)
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE k.conrelid = ANY($1) AND k.contype IN ('p', 'u', 'x', 'f', 'c')
             ORDER BY n.nspname, c.relname, k.conname",
            &[&rels],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let table: u32 = r.get(1);
        let schema: String = r.get(2);
        let relname: String = r.get(3);
        let q: String = r.get(4);
        let qname: String = r.get(5);
        let name: String = r.get(6);
        let contype: String = r.get(7);
        let def: String = r.get(8);
        let inherited_from_parent: bool = r.get(9);
        let partitioned: bool = r.get(10);
        let refers_to: u32 = r.get(11);
        let validated: bool = r.get(12);
        let local: bool = r.get(13);
        let key = (PG_CONSTRAINT, oid);
        let label = format!("{relname} {name}");
        match contype.as_str() {
            "f" => {
                if inherited_from_parent {
                    continue; // created by the parent's foreign key
                }
                let only = if partitioned { "" } else { "ONLY " };
                let sql = format!("ALTER TABLE {only}{q}\n    ADD CONSTRAINT {qname} {def};");
                let mut o = Object::new(key, Section::PostData, "FK CONSTRAINT", label, sql)
                    .schema(&schema)
                    .dep((PG_CLASS, table))
                    .dropped_by(
                        format!("ALTER TABLE {q} DROP CONSTRAINT {qname};"),
                        format!("ALTER TABLE IF EXISTS {q} DROP CONSTRAINT IF EXISTS {qname};"),
                    );
                if refers_to != 0 {
                    o = o.dep((PG_CLASS, refers_to));
                }
                cx.push(o);
            }
            "c" => {
                if validated || !local {
                    continue; // inside CREATE TABLE, or inherited from a parent
                }
                let sql = format!("ALTER TABLE {q}\n    ADD CONSTRAINT {qname} {def};");
                cx.push(
                    Object::new(key, Section::PostData, "CHECK CONSTRAINT", label, sql)
                        .schema(&schema)
                        .dep((PG_CLASS, table)),
                );
            }
            _ => {
                let sql = format!("ALTER TABLE ONLY {q}\n    ADD CONSTRAINT {qname} {def};");
                // the constraint owns its index: a dependency on the index means this
                // the index ADD CONSTRAINT builds goes where default_tablespace says
                let o = Object::new(key, Section::PostData, "CONSTRAINT", label, sql)
                    .schema(&schema)
                    .dep((PG_CLASS, table))
                    .in_tablespace(r.get(14));
                cx.push(o);
            }
        }
    }
    Ok(())
}

/// Indexes not owned by a constraint; attachments of partition indexes to their parents;
/// CLUSTER ON and REPLICA IDENTITY USING INDEX.
async fn indexes(cx: &mut Cx<'_>) -> Result<()> {
    let rels = cx.rel_array();
    let rows = cx
        .query(
            "SELECT i.indexrelid, i.indrelid, n.nspname, ic.relname, pg_get_indexdef(i.indexrelid),
                    format('%I.%I', n.nspname, c.relname), format('%I.%I', n.nspname, ic.relname),
                    i.indisclustered, i.indisreplident,
                    EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid AND k.contype IN ('p', 'u', 'x')),
                    (SELECT format('%I.%I', pn.nspname, pc.relname) FROM pg_inherits h JOIN pg_class pc ON pc.oid = h.inhparent
                       JOIN pg_namespace pn ON pn.oid = pc.relnamespace WHERE h.inhrelid = i.indexrelid),
                    (SELECT h.inhparent FROM pg_inherits h WHERE h.inhrelid = i.indexrelid),
                    (SELECT quote_ident(t.spcname) FROM pg_tablespace t WHERE t.oid = ic.reltablespace),
                    (SELECT string_agg(format('ALTER INDEX %I.%I ALTER COLUMN %s SET STATISTICS %s;', n.nspname, ic.relname, a.attnum, a.attstattarget), E'\n' ORDER BY a.attnum)
                       FROM pg_attribute a WHERE a.attrelid = i.indexrelid AND COALESCE(a.attstattarget, -1) >= 0)
             FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace n ON n.oid = ic.relnamespace
             WHERE i.indrelid = ANY($1) AND (i.indisvalid OR ic.relkind = 'I') AND i.indisready
             ORDER BY n.nspname, ic.relname",
            &[&rels],
        )
        .await?;
    for r in rows {
        let oid: u32 = r.get(0);
        let table: u32 = r.get(1);
        let schema: String = r.get(2);
        let name: String = r.get(3);
        let def: String = r.get(4);
        let qtable: String = r.get(5);
        let qindex: String = r.get(6);
        let (clustered, replident, owned_by_constraint): (bool, bool, bool) =
            (r.get(7), r.get(8), r.get(9));
        let parent: Option<String> = r.get(10);
        let parent_oid: Option<u32> = r.get(11);
        let key = (PG_CLASS, oid);
        let mut extra = Vec::new();
        if let Some(stats) = r.get::<_, Option<String>>(13) {
            extra.push(stats);
        }
        if clustered {
            extra.push(format!(
                "ALTER TABLE {qtable} CLUSTER ON {};",
                quote_last(&qindex)
            ));
        }
        if replident {
            extra.push(format!(
                "ALTER TABLE ONLY {qtable} REPLICA IDENTITY USING INDEX {};",
                quote_last(&qindex)
            ));
        }
        if !owned_by_constraint {
            let mut sql = format!("{def};");
            for e in &extra {
                sql.push('\n');
                sql.push_str(e);
            }
            cx.push(
                Object::new(key, Section::PostData, "INDEX", &name, sql)
                    .schema(&schema)
                    .dep((PG_CLASS, table))
                    .in_tablespace(r.get(12)),
            );
        } else if !extra.is_empty() {
            // a constraint's index: settings after the constraint has built it
            let constraint = Some(cx.owner_of(key)).filter(|c| *c != key);
            let mut o = Object::new(
                key,
                Section::PostData,
                "INDEX SETTINGS",
                &name,
                extra.join("\n"),
            )
            .schema(&schema)
            .dep((PG_CLASS, table));
            if let Some(c) = constraint {
                o = o.dep(c);
            }
            cx.objects.push(o);
        }
        if let (Some(p), Some(poid)) = (parent, parent_oid) {
            let sql = format!("ALTER INDEX {p} ATTACH PARTITION {qindex};");
            let mut o = Object::new(
                (PG_CLASS, oid),
                Section::PostData,
                "INDEX ATTACH",
                &name,
                sql,
            )
            .schema(&schema)
            .dep((PG_CLASS, poid))
            .dep(key);
            // constraint-owned indexes exist once their constraints do
            for k in [(PG_CLASS, oid), (PG_CLASS, poid)] {
                let c = cx.owner_of(k);
                if c != k {
                    o = o.dep(c);
                }
            }
            cx.objects.push(o);
        }
    }
    Ok(())
}

/// `schema.index` → `index`: CLUSTER ON and USING INDEX take an unqualified name.
fn quote_last(qualified: &str) -> &str {
    // names are quoted by the server; a dot inside quotes stays inside them, so split on
    // the first dot that is outside quotes
    let mut quoted = false;
    for (i, ch) in qualified.char_indices() {
        match ch {
            '"' => quoted = !quoted,
            '.' if !quoted => return &qualified[i + 1..],
            _ => {}
        }
    }
    qualified
}

/// Triggers (not internal ones, not clones on partitions) with their enabled state.
async fn triggers(cx: &mut Cx<'_>) -> Result<()> {
    let parent_filter = if cx.version >= 130000 {
        "AND t.tgparentid = 0"
    } else {
        ""
    };
    let sql = format!(
        "SELECT t.oid, t.tgrelid, n.nspname, c.relname || ' ' || t.tgname, pg_get_triggerdef(t.oid, false), t.tgenabled::text,
                format('%I.%I', n.nspname, c.relname), quote_ident(t.tgname)
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE t.tgrelid = ANY($1) AND NOT t.tgisinternal {parent_filter}
         ORDER BY 3, 4"
    );
    with_enabled_state(cx, &sql, PG_TRIGGER, "TRIGGER").await?;
    if cx.version >= 130000 {
        cloned_trigger_states(cx).await?;
    }
    Ok(())
}

/// A trigger of a partitioned table is cloned onto each partition; a partition whose
/// clone was enabled or disabled apart from the parent's gets that state again.
async fn cloned_trigger_states(cx: &mut Cx<'_>) -> Result<()> {
    let rels = cx.rel_array();
    let rows = cx
        .query(
            "SELECT t.oid, t.tgrelid, n.nspname, c.relname || ' ' || t.tgname, format('%I.%I', n.nspname, c.relname),
                    quote_ident(t.tgname), t.tgenabled::text, t.tgparentid
             FROM pg_trigger t JOIN pg_trigger p ON p.oid = t.tgparentid
             JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE t.tgrelid = ANY($1) AND t.tgenabled <> p.tgenabled
             ORDER BY 3, 4",
            &[&rels],
        )
        .await?;
    for r in rows {
        let (oid, table): (u32, u32) = (r.get(0), r.get(1));
        let (schema, label, qt, qn): (String, String, String, String) =
            (r.get(2), r.get(3), r.get(4), r.get(5));
        let state = match r.get::<_, String>(6).as_str() {
            "D" => "DISABLE",
            "R" => "ENABLE REPLICA",
            "A" => "ENABLE ALWAYS",
            _ => "ENABLE",
        };
        let parent: u32 = r.get(7);
        cx.push(
            Object::new(
                (PG_TRIGGER, oid),
                Section::PostData,
                "TRIGGER STATE",
                label,
                format!("ALTER TABLE {qt} {state} TRIGGER {qn};"),
            )
            .schema(&schema)
            .dep((PG_CLASS, table))
            .dep((PG_TRIGGER, parent)),
        );
    }
    Ok(())
}

/// Rules other than views' `_RETURN`, with their enabled state.
async fn rules(cx: &mut Cx<'_>) -> Result<()> {
    let sql = "SELECT r.oid, r.ev_class, n.nspname, c.relname || ' ' || r.rulename, pg_get_ruledef(r.oid), r.ev_enabled::text,
                      format('%I.%I', n.nspname, c.relname), quote_ident(r.rulename)
               FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE r.ev_class = ANY($1) AND r.rulename <> '_RETURN' ORDER BY 3, 4";
    with_enabled_state(cx, sql, PG_REWRITE, "RULE").await
}

/// Triggers and rules alike: a definition the server deparses, and an enabled state
/// (`O` origin, `D` disabled, `R` replica, `A` always) that only ALTER TABLE can set. The
/// query returns oid, table oid, schema, label, definition, state, quoted table, quoted name.
async fn with_enabled_state(
    cx: &mut Cx<'_>,
    sql: &str,
    class: u32,
    kind: &'static str,
) -> Result<()> {
    let rels = cx.rel_array();
    for r in cx.query(sql, &[&rels]).await? {
        let (oid, table): (u32, u32) = (r.get(0), r.get(1));
        let schema: String = r.get(2);
        let label: String = r.get(3);
        let def: String = r.get(4);
        let (qt, qn): (String, String) = (r.get(6), r.get(7));
        let mut sql = format!("{};", def.trim_end().trim_end_matches(';'));
        let state = match r.get::<_, String>(5).as_str() {
            "D" => Some("DISABLE"),
            "R" => Some("ENABLE REPLICA"),
            "A" => Some("ENABLE ALWAYS"),
            _ => None,
        };
        if let Some(state) = state {
            sql.push_str(&format!("\nALTER TABLE {qt} {state} {kind} {qn};"));
        }
        cx.push(
            Object::new((class, oid), Section::PostData, kind, label, sql)
                .schema(&schema)
                .dep((PG_CLASS, table)),
        );
    }
    Ok(())
}

/// Row-security policies.
async fn policies(cx: &mut Cx<'_>) -> Result<()> {
    let rels = cx.rel_array();
    let rows = cx
        .query(
            "SELECT p.oid, p.polrelid, n.nspname, c.relname || ' ' || p.polname, quote_ident(p.polname),
                    format('%I.%I', n.nspname, c.relname), p.polpermissive, p.polcmd::text,
                    (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY 1)
                       FROM unnest(p.polroles) r),
                    pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE p.polrelid = ANY($1) ORDER BY 3, 4",
            &[&rels],
        )
        .await?;
    for r in rows {
        let (oid, table): (u32, u32) = (r.get(0), r.get(1));
        let schema: String = r.get(2);
        let label: String = r.get(3);
        let (qn, qt): (String, String) = (r.get(4), r.get(5));
        let permissive: bool = r.get(6);
        let cmd = match r.get::<_, String>(7).as_str() {
            "r" => "SELECT",
            "a" => "INSERT",
            "w" => "UPDATE",
            "d" => "DELETE",
            _ => "ALL",
        };
        let roles: Option<String> = r.get(8);
        let qual: Option<String> = r.get(9);
        let check: Option<String> = r.get(10);
        let mut sql = format!("CREATE POLICY {qn} ON {qt}");
        if !permissive {
            sql.push_str(" AS RESTRICTIVE");
        }
        sql.push_str(&format!(" FOR {cmd}"));
        if let Some(roles) = roles {
            sql.push_str(&format!(" TO {roles}"));
        }
        if let Some(q) = qual {
            sql.push_str(&format!(" USING ({q})"));
        }
        if let Some(c) = check {
            sql.push_str(&format!(" WITH CHECK ({c})"));
        }
        sql.push(';');
        cx.push(
            Object::new((PG_POLICY, oid), Section::PostData, "POLICY", label, sql)
                .schema(&schema)
                .dep((PG_CLASS, table)),
        );
    }
    Ok(())
}

/// Extended statistics objects.
async fn statistics(cx: &mut Cx<'_>) -> Result<()> {
    let rels = cx.rel_array();
    let target = if cx.version >= 130000 {
        "COALESCE(s.stxstattarget, -1)::int"
    } else {
        "-1"
    };
    let sql = format!(
        "SELECT s.oid, s.stxrelid, n.nspname, s.stxname, pg_get_statisticsobjdef(s.oid), {target},
                format('%I.%I', n.nspname, s.stxname), pg_get_userbyid(s.stxowner), quote_ident(pg_get_userbyid(s.stxowner))
         FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace
         WHERE s.stxrelid = ANY($1) ORDER BY 3, 4"
    );
    for r in cx.query(&sql, &[&rels]).await? {
        let (oid, table): (u32, u32) = (r.get(0), r.get(1));
        let schema: String = r.get(2);
        let name: String = r.get(3);
        let def: String = r.get(4);
        let target: i32 = r.get(5);
        let q: String = r.get(6);
        let (owner, qowner): (String, String) = (r.get(7), r.get(8));
        let mut sql = format!("{def};");
        if target >= 0 {
            sql.push_str(&format!("\nALTER STATISTICS {q} SET STATISTICS {target};"));
        }
        let o = Object::new(
            (PG_STATISTIC_EXT, oid),
            Section::PostData,
            "STATISTICS",
            &name,
            sql,
        )
        .schema(&schema)
        .dep((PG_CLASS, table))
        .owned(&owner, "STATISTICS", &q, &qowner);
        cx.push(o);
    }
    Ok(())
}

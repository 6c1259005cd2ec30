//! Privileges: GRANT and REVOKE statements that turn an object's default privileges into
//! the ones it has (the difference between its ACL and `acldefault`, as pg_dump computes
//! it), column privileges, and ALTER DEFAULT PRIVILEGES.

use std::collections::BTreeMap;

use super::Cx;
use super::class::PG_DEFAULT_ACL;
use crate::error::Result;
use crate::pg::toc::{CatalogKey, Object, Section};

/// One object's privileges: `(class, oid, GRANT target kind, SQL target, acl, baseline)`,
/// listed by SQL so that `aclexplode` does the parsing.
const OBJECTS: &str = "
    SELECT 'pg_class'::regclass::oid AS class, c.oid, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
           format('%I.%I', n.nspname, c.relname) AS target, NULL::text AS col, c.relacl AS acl,
           acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner) AS dflt, n.nspname AS schema, c.relname AS name
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY($1) AND c.relacl IS NOT NULL
    UNION ALL
    SELECT 'pg_class'::regclass::oid, c.oid, 'TABLE', format('%I.%I', n.nspname, c.relname), quote_ident(a.attname), a.attacl,
           NULL::aclitem[], n.nspname, c.relname || '.' || a.attname
      FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = ANY($1) AND a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 'pg_namespace'::regclass::oid, n.oid, 'SCHEMA', quote_ident(n.nspname), NULL, n.nspacl,
           COALESCE((SELECT i.initprivs FROM pg_init_privs i WHERE i.classoid = 'pg_namespace'::regclass AND i.objoid = n.oid),
                    acldefault('n', n.nspowner)), NULL, n.nspname
      FROM pg_namespace n WHERE n.oid = ANY($2) AND n.nspacl IS NOT NULL AND $3
    UNION ALL
    SELECT 'pg_proc'::regclass::oid, p.oid, CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
           format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), NULL, p.proacl,
           acldefault('f', p.proowner), n.nspname, p.proname
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE p.pronamespace = ANY($2) AND p.proacl IS NOT NULL AND $3
       AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'pg_type'::regclass::oid, t.oid, CASE WHEN t.typtype = 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
           format('%I.%I', n.nspname, t.typname), NULL, t.typacl, acldefault('T', t.typowner), n.nspname, t.typname
      FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE t.typnamespace = ANY($2) AND t.typacl IS NOT NULL AND $3
       AND NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = 'pg_type'::regclass AND e.objid = t.oid AND e.deptype = 'e')
    UNION ALL
    SELECT 'pg_largeobject'::regclass::oid, l.oid, 'LARGE OBJECT', l.oid::text, NULL, l.lomacl, acldefault('L', l.lomowner), NULL, l.oid::text
      FROM pg_largeobject_metadata l WHERE l.lomacl IS NOT NULL AND $4
    UNION ALL
    SELECT 'pg_foreign_server'::regclass::oid, s.oid, 'FOREIGN SERVER', quote_ident(s.srvname), NULL, s.srvacl, acldefault('S', s.srvowner), NULL, s.srvname
      FROM pg_foreign_server s WHERE s.oid >= 16384 AND s.srvacl IS NOT NULL AND $3
    UNION ALL
    SELECT 'pg_foreign_data_wrapper'::regclass::oid, w.oid, 'FOREIGN DATA WRAPPER', quote_ident(w.fdwname), NULL, w.fdwacl, acldefault('F', w.fdwowner), NULL, w.fdwname
      FROM pg_foreign_data_wrapper w WHERE w.oid >= 16384 AND w.fdwacl IS NOT NULL AND $3";

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    let sql = format!(
        "WITH o AS ({OBJECTS})
         SELECT o.class, o.oid, o.kind, o.target, o.col, o.schema, o.name, x.action,
                CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                x.privilege_type, x.is_grantable
         FROM o, LATERAL (
             (SELECT 'REVOKE' AS action, d.grantee, d.privilege_type, d.is_grantable FROM aclexplode(NULLIF(o.dflt, '{{}}')) d
              EXCEPT SELECT 'REVOKE', a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(NULLIF(o.acl, '{{}}')) a)
             UNION ALL
             (SELECT 'GRANT', a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(NULLIF(o.acl, '{{}}')) a
              EXCEPT SELECT 'GRANT', d.grantee, d.privilege_type, d.is_grantable FROM aclexplode(NULLIF(o.dflt, '{{}}')) d)
         ) x
         ORDER BY o.schema, o.name, o.class, o.oid, o.col NULLS FIRST, x.action DESC, 9, 10"
    );
    let rels = cx.rel_array();
    let ns = cx.ns_array();
    let rows = cx
        .query(&sql, &[&rels, &ns, &cx.whole_schemas, &cx.large_objects])
        .await?;
    // rows come grouped by object (and column): collect each object's statements
    let mut objects: Vec<AclObject> = Vec::new();
    for r in rows {
        let key: CatalogKey = (r.get(0), r.get(1));
        let col: Option<String> = r.get(4);
        if objects.last().is_none_or(|o| o.key != key || o.col != col) {
            objects.push(AclObject {
                key,
                col: col.clone(),
                name: r.get(6),
                schema: r.get(5),
                statements: Vec::new(),
            });
        }
        let obj = objects.last_mut().expect("just pushed");
        let (action, grantee, grantable): (String, String, bool) = (r.get(7), r.get(8), r.get(10));
        let privilege: String = r.get(9);
        match obj
            .statements
            .iter_mut()
            .find(|s| s.action == action && s.grantee == grantee && s.grantable == grantable)
        {
            Some(s) => s.privileges.push(privilege),
            None => obj.statements.push(Statement {
                action,
                kind: r.get(2),
                target: r.get(3),
                grantee,
                grantable,
                privileges: vec![privilege],
            }),
        }
    }
    for obj in objects {
        let sql: Vec<String> = obj
            .statements
            .iter()
            .map(|s| s.sql(obj.col.as_deref()))
            .collect();
        let mut o =
            Object::new(obj.key, Section::Acl, "ACL", obj.name, sql.join("\n")).dep(obj.key);
        o.schema = obj.schema;
        cx.objects.push(o);
    }
    if cx.whole_schemas {
        default_privileges(cx).await?;
    }
    Ok(())
}

/// The privileges of one object (or one column of a table).
struct AclObject {
    key: CatalogKey,
    col: Option<String>,
    name: String,
    schema: Option<String>,
    statements: Vec<Statement>,
}

/// One GRANT or REVOKE: the privileges given to or taken from one grantee.
struct Statement {
    action: String,
    kind: String,
    target: String,
    grantee: String,
    grantable: bool,
    privileges: Vec<String>,
}

impl Statement {
    fn sql(&self, col: Option<&str>) -> String {
        let privs = match col {
            Some(c) => self
                .privileges
                .iter()
                .map(|p| format!("{p}({c})"))
                .collect::<Vec<_>>()
                .join(","),
            None => self.privileges.join(","),
        };
        let (kind, target, grantee) = (&self.kind, &self.target, &self.grantee);
        if self.action == "GRANT" {
            let with = if self.grantable {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            format!("GRANT {privs} ON {kind} {target} TO {grantee}{with};")
        } else {
            format!("REVOKE {privs} ON {kind} {target} FROM {grantee};")
        }
    }
}

/// ALTER DEFAULT PRIVILEGES, global (against the built-in defaults) or per schema.
async fn default_privileges(cx: &mut Cx<'_>) -> Result<()> {
    let ns = cx.ns_array();
    let rows = cx
        .query(
            "WITH d AS (
                SELECT d.oid, quote_ident(pg_get_userbyid(d.defaclrole)) AS role, d.defaclnamespace AS ns,
                       (SELECT quote_ident(nspname) FROM pg_namespace WHERE oid = d.defaclnamespace) AS schema,
                       d.defaclobjtype::text AS objtype, d.defaclacl AS acl,
                       CASE WHEN d.defaclnamespace = 0 THEN
                         acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' WHEN 'r' THEN 'r' WHEN 'f' THEN 'f' WHEN 'T' THEN 'T' ELSE 'n' END::\"char\", d.defaclrole)
                       ELSE NULL::aclitem[] END AS dflt
                FROM pg_default_acl d WHERE d.defaclnamespace = 0 OR d.defaclnamespace = ANY($1))
             SELECT d.oid, d.role, d.schema, d.objtype, x.action,
                    CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                    string_agg(x.privilege_type, ',' ORDER BY x.privilege_type), x.is_grantable
             FROM d, LATERAL (
                 (SELECT 'REVOKE' AS action, a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(NULLIF(d.dflt, '{}')) a
                  EXCEPT SELECT 'REVOKE', b.grantee, b.privilege_type, b.is_grantable FROM aclexplode(NULLIF(d.acl, '{}')) b)
                 UNION ALL
                 (SELECT 'GRANT', b.grantee, b.privilege_type, b.is_grantable FROM aclexplode(NULLIF(d.acl, '{}')) b
                  EXCEPT SELECT 'GRANT', a.grantee, a.privilege_type, a.is_grantable FROM aclexplode(NULLIF(d.dflt, '{}')) a)
             ) x
             GROUP BY d.oid, d.role, d.schema, d.objtype, x.action, x.grantee, x.is_grantable
             ORDER BY 2, 3 NULLS FIRST, 4, 5 DESC, 6",
            &[&ns],
        )
        .await?;
    let mut by_oid: BTreeMap<u32, (String, Vec<String>)> = BTreeMap::new();
    for r in rows {
        let oid: u32 = r.get(0);
        let role: String = r.get(1);
        let schema: Option<String> = r.get(2);
        let what = match r.get::<_, String>(3).as_str() {
            "r" => "TABLES",
            "S" => "SEQUENCES",
            "f" => "FUNCTIONS",
            "T" => "TYPES",
            _ => "SCHEMAS",
        };
        let action: String = r.get(4);
        let grantee: String = r.get(5);
        let privs: String = r.get(6);
        let grantable: bool = r.get(7);
        let scope = schema
            .as_ref()
            .map(|s| format!(" IN SCHEMA {s}"))
            .unwrap_or_default();
        let stmt = if action == "GRANT" {
            let with = if grantable { " WITH GRANT OPTION" } else { "" };
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {role}{scope} GRANT {privs} ON {what} TO {grantee}{with};"
            )
        } else {
            format!(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {role}{scope} REVOKE {privs} ON {what} FROM {grantee};"
            )
        };
        by_oid
            .entry(oid)
            .or_insert_with(|| {
                (
                    format!("DEFAULT PRIVILEGES FOR {role}{scope} ON {what}"),
                    Vec::new(),
                )
            })
            .1
            .push(stmt);
    }
    for (oid, (name, stmts)) in by_oid {
        cx.objects.push(Object::new(
            (PG_DEFAULT_ACL, oid),
            Section::Acl,
            "DEFAULT ACL",
            name,
            stmts.join("\n"),
        ));
    }
    Ok(())
}

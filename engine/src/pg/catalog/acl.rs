//! Privileges: GRANT and REVOKE statements that turn an object's default privileges into
//! the ones it has (the difference between its ACL and `acldefault`, as pg_dump computes
//! it), column privileges, and ALTER DEFAULT PRIVILEGES.

use std::collections::BTreeMap;

use super::Cx;
use super::class::{PG_DEFAULT_ACL, PG_EXTENSION};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::toc::{CatalogKey, Object, Section};

/// The extension an object belongs to, or NULL.
fn member_of(class: &str, oid: &str) -> String {
    format!(
        "(SELECT e.refobjid FROM pg_depend e WHERE e.classid = '{class}'::regclass AND e.objid = {oid} AND e.refclassid = 'pg_extension'::regclass AND e.deptype = 'e')"
    )
}

/// The privileges an object starts with: those its extension's script or initdb gave it
/// (`pg_init_privs`), else the built-in defaults for its owner (`acldefault`).
fn baseline(class: &str, oid: &str, acltype: &str, owner: &str) -> String {
    format!(
        "COALESCE((SELECT i.initprivs FROM pg_init_privs i WHERE i.classoid = '{class}'::regclass AND i.objoid = {oid} AND i.objsubid = 0), acldefault({acltype}, {owner}))"
    )
}

/// One object's privileges: `(class, oid, GRANT target kind, SQL target, column, acl,
/// baseline, schema, name, owner, extension)`, listed by SQL so that `aclexplode` does the
/// parsing. An object of an extension, or of `pg_catalog`, is listed when the dump holds
/// the whole database: its privileges are compared with what the extension's script or
/// initdb gave it (pg_init_privs), so only the user's changes (a REVOKE from PUBLIC on a
/// system function, say) are replayed, after CREATE EXTENSION (as pg_dump does).
fn objects() -> String {
    let class_member = member_of("pg_class", "c.oid");
    let proc_member = member_of("pg_proc", "p.oid");
    let type_member = member_of("pg_type", "t.oid");
    let ns_member = member_of("pg_namespace", "n.oid");
    let lang_member = member_of("pg_language", "l.oid");
    let fdw_member = member_of("pg_foreign_data_wrapper", "w.oid");
    let srv_member = member_of("pg_foreign_server", "s.oid");
    let class_base = baseline(
        "pg_class",
        "c.oid",
        "CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::\"char\"",
        "c.relowner",
    );
    let ns_base = baseline("pg_namespace", "n.oid", "'n'", "n.nspowner");
    let proc_base = baseline("pg_proc", "p.oid", "'f'", "p.proowner");
    let type_base = baseline("pg_type", "t.oid", "'T'", "t.typowner");
    let lang_base = baseline("pg_language", "l.oid", "'l'", "l.lanowner");
    let srv_base = baseline("pg_foreign_server", "s.oid", "'S'", "s.srvowner");
    let fdw_base = baseline("pg_foreign_data_wrapper", "w.oid", "'F'", "w.fdwowner");
    format!(
        "SELECT 'pg_class'::regclass::oid AS class, c.oid, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
                format('%I.%I', n.nspname, c.relname) AS target, NULL::text AS col, c.relacl AS acl,
                {class_base} AS dflt, n.nspname AS schema, c.relname AS name, c.relowner AS owner,
                {class_member} AS extension
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
            AND (c.oid = ANY($1) OR ($3 AND ({class_member} IS NOT NULL OR c.relnamespace = 'pg_catalog'::regnamespace)))
         UNION ALL
         SELECT 'pg_class'::regclass::oid, c.oid, 'TABLE', format('%I.%I', n.nspname, c.relname), quote_ident(a.attname), a.attacl,
                (SELECT i.initprivs FROM pg_init_privs i WHERE i.classoid = 'pg_class'::regclass AND i.objoid = c.oid AND i.objsubid = a.attnum),
                n.nspname, c.relname || '.' || a.attname, c.relowner, {class_member}
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE (c.oid = ANY($1) OR ($3 AND ({class_member} IS NOT NULL OR c.relnamespace = 'pg_catalog'::regnamespace))) AND a.attnum > 0 AND NOT a.attisdropped
         UNION ALL
         SELECT 'pg_namespace'::regclass::oid, n.oid, 'SCHEMA', quote_ident(n.nspname), NULL, n.nspacl,
                {ns_base}, NULL, n.nspname, n.nspowner, {ns_member}
           FROM pg_namespace n WHERE $3 AND (n.oid = ANY($2) OR {ns_member} IS NOT NULL)
         UNION ALL
         SELECT 'pg_proc'::regclass::oid, p.oid, CASE WHEN p.prokind = 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), NULL, p.proacl,
                {proc_base}, n.nspname, p.proname, p.proowner, {proc_member}
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE $3 AND ((p.pronamespace = ANY($2) AND {proc_member} IS NULL) OR {proc_member} IS NOT NULL
                      OR p.pronamespace = 'pg_catalog'::regnamespace)
         UNION ALL
         SELECT 'pg_type'::regclass::oid, t.oid, CASE WHEN t.typtype = 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                format('%I.%I', n.nspname, t.typname), NULL, t.typacl, {type_base}, n.nspname, t.typname, t.typowner, {type_member}
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE $3 AND ((t.typnamespace = ANY($2) AND {type_member} IS NULL) OR {type_member} IS NOT NULL
                      OR t.typnamespace = 'pg_catalog'::regnamespace)
            AND NOT (t.typcategory = 'A' AND t.typelem <> 0)
            AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
         UNION ALL
         SELECT 'pg_largeobject'::regclass::oid, l.oid, 'LARGE OBJECT', l.oid::text, NULL, l.lomacl, acldefault('L', l.lomowner),
                NULL, l.oid::text, l.lomowner, NULL
           FROM pg_largeobject_metadata l WHERE l.lomacl IS NOT NULL AND $4
         UNION ALL
         SELECT 'pg_language'::regclass::oid, l.oid, 'LANGUAGE', quote_ident(l.lanname), NULL, l.lanacl, {lang_base},
                NULL, l.lanname, l.lanowner, {lang_member}
           FROM pg_language l WHERE $3 AND l.lanispl
         UNION ALL
         SELECT 'pg_foreign_server'::regclass::oid, s.oid, 'FOREIGN SERVER', quote_ident(s.srvname), NULL, s.srvacl, {srv_base},
                NULL, s.srvname, s.srvowner, {srv_member}
           FROM pg_foreign_server s WHERE s.oid >= 16384 AND $3
         UNION ALL
         SELECT 'pg_foreign_data_wrapper'::regclass::oid, w.oid, 'FOREIGN DATA WRAPPER', quote_ident(w.fdwname), NULL, w.fdwacl, {fdw_base},
                NULL, w.fdwname, w.fdwowner, {fdw_member}
           FROM pg_foreign_data_wrapper w WHERE w.oid >= 16384 AND $3"
    )
}

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    // each difference between an object's privileges and its baseline, with its grantor:
    // REVOKE what the baseline has and the object has not, GRANT what it has beyond it
    // (grants in the order of the ACL, so that a grant option is given before a grant
    // made through it)
    // Every database has a public schema, whose privileges for PUBLIC changed in 15 (it
    // lost CREATE): what a target starts with depends on the target's release, so
    // PUBLIC's privileges on it are revoked whatever they are and granted as they were
    // (rdflt is what may need revoking, gdflt what need not be granted). pg_dump instead
    // compares with what 15 gives, which loses an older server's REVOKE CREATE when it
    // is restored into the same release.
    let sql = format!(
        "WITH o0 AS ({}),
         o AS (
             SELECT o0.*,
                    CASE WHEN public THEN owned || ARRAY[makeaclitem(0, o0.owner, 'CREATE', false), makeaclitem(0, o0.owner, 'USAGE', false)]
                         ELSE o0.dflt END AS rdflt,
                    CASE WHEN public THEN owned ELSE o0.dflt END AS gdflt
             FROM o0, LATERAL (
                 SELECT o0.class = 'pg_namespace'::regclass AND o0.name = 'public' AND o0.col IS NULL AS public,
                        ARRAY[makeaclitem(o0.owner, o0.owner, 'CREATE', false), makeaclitem(o0.owner, o0.owner, 'USAGE', false)] AS owned
             ) p
         )
         SELECT o.class, o.oid, o.kind, o.target, o.col, o.schema, o.name, x.action,
                CASE WHEN x.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(x.grantee)) END,
                x.privilege_type, x.is_grantable,
                CASE WHEN x.grantor <> o.owner THEN quote_ident(pg_get_userbyid(x.grantor)) END,
                o.extension
         FROM o, LATERAL (
             SELECT 'REVOKE' AS action, d.grantor, d.grantee, d.privilege_type, d.is_grantable, 0::int8 AS n
               FROM aclexplode(NULLIF(o.rdflt, '{{}}')) d
              WHERE NOT EXISTS (SELECT 1 FROM aclexplode(NULLIF(COALESCE(o.acl, o.dflt), '{{}}')) a
                                 WHERE (a.grantor, a.grantee, a.privilege_type, a.is_grantable) = (d.grantor, d.grantee, d.privilege_type, d.is_grantable))
             UNION ALL
             SELECT 'GRANT', a.grantor, a.grantee, a.privilege_type, a.is_grantable, a.n
               FROM aclexplode(NULLIF(COALESCE(o.acl, o.dflt), '{{}}')) WITH ORDINALITY AS a(grantor, grantee, privilege_type, is_grantable, n)
              WHERE NOT EXISTS (SELECT 1 FROM aclexplode(NULLIF(o.gdflt, '{{}}')) d
                                 WHERE (d.grantor, d.grantee, d.privilege_type, d.is_grantable) = (a.grantor, a.grantee, a.privilege_type, a.is_grantable))
         ) x
         ORDER BY o.schema, o.name, o.class, o.oid, o.col NULLS FIRST, x.action DESC, x.grantor <> o.owner, x.n, 9, 10",
        objects()
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
                extension: r.get(12),
                statements: Vec::new(),
            });
        }
        let obj = objects.last_mut().expect("just pushed");
        let (action, grantee, grantable): (String, String, bool) = (r.get(7), r.get(8), r.get(10));
        let privilege: String = r.get(9);
        let grantor: Option<String> = r.get(11);
        let same = |s: &&mut Statement| {
            s.action == action
                && s.grantee == grantee
                && s.grantable == grantable
                && s.grantor == grantor
        };
        match obj.statements.iter_mut().find(same) {
            Some(s) => s.privileges.push(privilege),
            None => obj.statements.push(Statement {
                action,
                kind: r.get(2),
                target: r.get(3),
                grantee,
                grantable,
                grantor,
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
        if let Some(ext) = obj.extension {
            // the object itself comes with CREATE EXTENSION
            o = o.dep((PG_EXTENSION, ext));
        }
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
    /// The extension the object belongs to, if it does.
    extension: Option<u32>,
    statements: Vec<Statement>,
}

/// One GRANT or REVOKE: the privileges given to or taken from one grantee by one grantor.
struct Statement {
    action: String,
    kind: String,
    target: String,
    grantee: String,
    grantable: bool,
    /// Quoted, when it is not the object's owner: a grant made through WITH GRANT
    /// OPTION is replayed as its grantor.
    grantor: Option<String>,
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
        let sql = if self.action == "GRANT" {
            let with = if self.grantable {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            format!("GRANT {privs} ON {kind} {target} TO {grantee}{with};")
        } else {
            format!("REVOKE {privs} ON {kind} {target} FROM {grantee};")
        };
        match &self.grantor {
            // as pg_dump does: a privilege's grantor is whoever runs the GRANT
            Some(g) => {
                format!("SET SESSION AUTHORIZATION {g};\n{sql}\nRESET SESSION AUTHORIZATION;")
            }
            None => sql,
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
                         acldefault(CASE d.defaclobjtype WHEN 'S' THEN 's' ELSE d.defaclobjtype END, d.defaclrole)
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
            "n" => "SCHEMAS",
            "L" => "LARGE OBJECTS", // 18
            other => {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    format!(
                        "default privileges on objects of kind {other:?} are not known to this coffer: refusing to dump a different schema"
                    ),
                ));
            }
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

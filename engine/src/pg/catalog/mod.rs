//! Reading the catalogs into [`Object`]s with their DDL (pg-anchors §5).
//!
//! One query per object kind, never one per object; names come back already quoted by the
//! server (`quote_ident`, `format('%I.%I')`), so hostile identifiers cannot break the SQL
//! coffer writes. DDL is deparsed with the server's `pg_get_*def` functions where they
//! exist, and built from the catalogs where they do not (tables, types, sequences).
//! Every query runs in the leader's snapshot, after the dumped tables are locked.

mod access_methods;
mod acl;
mod comments;
mod filter;
mod foreign;
mod functions;
mod languages;
mod large_objects;
mod planner_stats;
mod publications;
mod relations;
mod schema_objects;
mod table_parts;
mod text_search;

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

pub use filter::{Filters, Pattern};

use super::session::sql_error;
use super::toc::{CatalogKey, Object, Section};
use crate::error::Result;

/// Catalog oids (fixed in every PostgreSQL release: they are bootstrap catalogs).
pub mod class {
    pub const PG_CLASS: u32 = 1259;
    pub const PG_TYPE: u32 = 1247;
    pub const PG_PROC: u32 = 1255;
    pub const PG_NAMESPACE: u32 = 2615;
    pub const PG_CONSTRAINT: u32 = 2606;
    pub const PG_TRIGGER: u32 = 2620;
    pub const PG_REWRITE: u32 = 2618;
    pub const PG_COLLATION: u32 = 3456;
    pub const PG_EXTENSION: u32 = 3079;
    pub const PG_POLICY: u32 = 3256;
    pub const PG_EVENT_TRIGGER: u32 = 3466;
    pub const PG_CAST: u32 = 2605;
    pub const PG_OPERATOR: u32 = 2617;
    pub const PG_STATISTIC_EXT: u32 = 3381;
    pub const PG_TS_DICT: u32 = 3600;
    pub const PG_TS_CONFIG: u32 = 3602;
    pub const PG_FDW: u32 = 2328;
    pub const PG_FOREIGN_SERVER: u32 = 1417;
    pub const PG_USER_MAPPING: u32 = 1418;
    pub const PG_PUBLICATION: u32 = 6104;
    pub const PG_PUBLICATION_REL: u32 = 6106;
    pub const PG_LARGEOBJECT: u32 = 2613;
    pub const PG_DEFAULT_ACL: u32 = 826;
    pub const PG_LANGUAGE: u32 = 2612;
    pub const PG_ATTRDEF: u32 = 2604;
    pub const PG_AM: u32 = 2601;
    pub const PG_AMOP: u32 = 2602;
    pub const PG_AMPROC: u32 = 2603;
    pub const PG_OPCLASS: u32 = 2616;
    pub const PG_OPFAMILY: u32 = 2753;
    pub const PG_CONVERSION: u32 = 2607;
    pub const PG_TRANSFORM: u32 = 3576;
    pub const PG_TS_PARSER: u32 = 3601;
    pub const PG_TS_TEMPLATE: u32 = 3764;
    pub const PG_SUBSCRIPTION: u32 = 6100;
    /// Not a catalog: the key of a base type's shell (`CREATE TYPE name;`), which its
    /// input and output functions need before the type can be defined.
    pub const SHELL_TYPE: u32 = 0;
    /// Not a catalog: the key of a materialized view's refresh, which the refreshes of
    /// those it reads must precede.
    pub const MATVIEW_REFRESH: u32 = 1;
}

/// A table (or other relation) selected for the dump.
#[derive(Clone, Debug)]
pub struct Relation {
    pub oid: u32,
    /// Unquoted schema and name, for listings.
    pub schema: String,
    pub name: String,
    /// `"schema"."name"` quoted for SQL.
    pub qualified: String,
    /// Heap + TOAST size in bytes at dump time.
    pub bytes: u64,
    /// Pages of the heap (for ctid splitting).
    pub pages: u64,
    /// Columns to COPY (quoted), in attribute order, generated columns excluded.
    pub copy_columns: Vec<String>,
    /// For an extension's configuration table: the condition (`WHERE …`) its extension
    /// gave for the rows that are the user's (`pg_extension_config_dump`).
    pub condition: Option<String>,
}

/// What the catalogs hold for this dump.
pub struct Catalog {
    pub objects: Vec<Object>,
    /// Tables whose data is dumped (plain and partition leaves; not views, not partitioned
    /// parents, not unlogged when asked).
    pub data_tables: Vec<Relation>,
    /// Every table to lock.
    pub lock_list: Vec<String>,
    /// Large objects whose content is dumped.
    pub large_objects: Vec<u32>,
    /// What was left out, and why (subscriptions a non-superuser cannot read).
    pub warnings: Vec<String>,
}

/// Shared state while reading: the client, what is selected, pg_depend.
pub(crate) struct Cx<'a> {
    pub client: &'a Client,
    pub version: i32,
    /// Namespaces whose objects are dumped.
    pub namespaces: HashSet<u32>,
    /// Relations selected (by oid).
    pub relations: HashSet<u32>,
    /// Whether non-table objects (functions, types…) are dumped at all (`-t` alone dumps
    /// only tables and what hangs off them, as pg_dump does).
    pub whole_schemas: bool,
    /// Tables whose rows are not dumped (`--exclude-table-data`).
    pub no_data: HashSet<u32>,
    /// Whether large objects are dumped: in whole-database dumps, as pg_dump does.
    pub large_objects: bool,
    /// Base types and their input, output… functions, which need only the type's shell.
    pub base_type_functions: Vec<(u32, Vec<u32>)>,
    /// Catalog rows that belong to another dumped object ([`load_owners`]).
    pub owners: HashMap<CatalogKey, CatalogKey>,
    /// Dependencies, object → the objects it needs, sub-objects mapped to their owners.
    pub deps: HashMap<CatalogKey, Vec<CatalogKey>>,
    pub objects: Vec<Object>,
}

impl Cx<'_> {
    pub async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>> {
        self.client
            .query(sql, params)
            .await
            .map_err(|e| sql_error(e, "reading the catalogs"))
    }

    /// `oid[]` parameter of the selected namespaces.
    pub fn ns_array(&self) -> Vec<u32> {
        self.namespaces.iter().copied().collect()
    }

    pub fn rel_array(&self) -> Vec<u32> {
        self.relations.iter().copied().collect()
    }

    /// The dumped object a catalog row belongs to: itself, unless [`load_owners`] maps it.
    pub fn owner_of(&self, key: CatalogKey) -> CatalogKey {
        self.owners.get(&key).copied().unwrap_or(key)
    }

    /// A dependency on a row that is part of another object is one on that object.
    fn resolve_owners(&mut self) {
        for o in &mut self.objects {
            for d in &mut o.deps {
                *d = self.owners.get(d).copied().unwrap_or(*d);
            }
        }
    }

    /// A base type's own functions need only its shell, since they are what defines it.
    fn shells_first(&mut self) {
        for (ty, functions) in &self.base_type_functions {
            for o in self
                .objects
                .iter_mut()
                .filter(|o| o.key.0 == class::PG_PROC && functions.contains(&o.key.1))
            {
                for d in &mut o.deps {
                    if *d == (class::PG_TYPE, *ty) {
                        *d = (class::SHELL_TYPE, *ty);
                    }
                }
                // --clean: DROP TYPE … CASCADE (dropped first) has taken it already
                if let Some((_, if_exists)) = &o.drop {
                    o.drop = Some((if_exists.clone(), if_exists.clone()));
                }
            }
        }
    }

    /// The object's dependencies from pg_depend.
    pub fn deps_of(&self, key: CatalogKey) -> Vec<CatalogKey> {
        self.deps.get(&key).cloned().unwrap_or_default()
    }

    /// Pushes an object, with its pg_depend dependencies added.
    pub fn push(&mut self, mut o: Object) {
        let extra = self.deps_of(o.key);
        o.deps.extend(extra);
        self.objects.push(o);
    }
}

/// The oldest and the newest major whose catalogs this reader knows.
pub const OLDEST_MAJOR: i32 = 13;
pub const NEWEST_MAJOR: i32 = 18;

/// A server whose catalogs this reader does not know is refused: a newer major may hold
/// objects or properties that no query here reads, and the dump would silently be a
/// different schema.
pub fn check_version(server_version_num: i32) -> Result<()> {
    let major = server_version_num / 10000;
    if (OLDEST_MAJOR..=NEWEST_MAJOR).contains(&major) {
        return Ok(());
    }
    let why = if major > NEWEST_MAJOR {
        "is newer than this coffer knows: its catalogs may hold what coffer would leave out, so it refuses rather than write a different schema (upgrade coffer)"
    } else {
        "is older than coffer supports"
    };
    Err(crate::error::Error::new(
        crate::error::ErrorKind::Unsupported,
        format!(
            "PostgreSQL {major} (server_version_num {server_version_num}) {why}; coffer dumps PostgreSQL {OLDEST_MAJOR} to {NEWEST_MAJOR}"
        ),
    ))
}

/// Reads everything the dump needs. The caller has opened the snapshot; this locks the
/// selected tables (before any deparse function runs) and then reads.
pub async fn read(
    client: &Client,
    version: i32,
    filters: &Filters,
    lock_timeout: Option<std::time::Duration>,
) -> Result<Catalog> {
    check_version(version)?;
    let selection = filter::select(client, filters).await?;
    let mut lock_list = selection.lock_list.clone();
    if selection.whole_schemas {
        // extensions' configuration tables, whose rows are dumped too
        let rows = client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_extension x, unnest(x.extconfig) t(oid)
                   JOIN pg_class c ON c.oid = t.oid JOIN pg_namespace n ON n.oid = c.relnamespace
                  WHERE c.relkind = 'r' ORDER BY 1",
                &[],
            )
            .await
            .map_err(|e| sql_error(e, "reading the extensions' configuration tables"))?;
        lock_list.extend(rows.iter().map(|r| r.get::<_, String>(0)));
    }
    super::session::lock_tables(client, &lock_list, lock_timeout).await?;
    let mut cx = Cx {
        client,
        version,
        namespaces: selection.namespaces,
        relations: selection.relations,
        whole_schemas: selection.whole_schemas,
        no_data: selection.no_data,
        large_objects: selection.whole_schemas
            && !filters.schema_only
            && filters.schemas.is_empty()
            && filters.exclude_schemas.is_empty(),
        base_type_functions: Vec::new(),
        owners: HashMap::new(),
        deps: HashMap::new(),
        objects: Vec::new(),
    };
    cx.owners = load_owners(client, version).await?;
    cx.deps = load_dependencies(client, &cx.owners).await?;
    if cx.whole_schemas {
        schema_objects::load(&mut cx).await?;
        functions::load(&mut cx).await?;
        languages::load(&mut cx).await?;
        access_methods::load(&mut cx).await?;
        text_search::load(&mut cx).await?;
        foreign::load(&mut cx).await?;
    }
    let mut data_tables = relations::load(&mut cx).await?;
    if cx.whole_schemas && !filters.schema_only {
        data_tables.extend(relations::extension_configuration(&mut cx).await?);
    }
    table_parts::load(&mut cx).await?;
    let mut warnings = Vec::new();
    if cx.whole_schemas {
        publications::load(&mut cx).await?;
        warnings.extend(publications::subscriptions(&mut cx).await?);
    }
    let large_objects = if cx.large_objects {
        large_objects::load(&mut cx).await?
    } else {
        Vec::new()
    };
    cx.resolve_owners();
    cx.shells_first();
    postpone(&mut cx.objects);
    refresh_order(&mut cx.objects);
    if !filters.schema_only {
        // as pg_dump: no statistics in a schema-only dump, nor of tables whose rows
        // are left out
        let skip = cx.no_data.clone();
        planner_stats::load(&mut cx, &skip).await?;
    }
    acl::load(&mut cx).await?;
    comments::load(&mut cx).await?;
    cx.resolve_owners();
    let data_tables = if filters.schema_only {
        cx.objects.retain(|o| o.section != Section::Data);
        Vec::new()
    } else {
        data_tables
    };
    Ok(Catalog {
        objects: cx.objects,
        data_tables,
        lock_list,
        large_objects,
        warnings,
    })
}

/// A function, view or materialized view that needs something created after the data
/// (a query that groups by a primary key relies on the key) is created after the data
/// too, as pg_dump postpones it; so is whatever else of those kinds needs it in turn.
fn postpone(objects: &mut [Object]) {
    const MOVABLE: &[&str] = &[
        "FUNCTION",
        "PROCEDURE",
        "AGGREGATE",
        "VIEW",
        "MATERIALIZED VIEW",
    ];
    loop {
        let sections: HashMap<CatalogKey, Section> = objects
            .iter()
            .filter(|o| super::toc::defines(o.kind))
            .map(|o| (o.key, o.section))
            .collect();
        let mut moved = false;
        for o in objects.iter_mut() {
            if o.section == Section::PreData
                && MOVABLE.contains(&o.kind)
                && o.deps
                    .iter()
                    .any(|d| sections.get(d) == Some(&Section::PostData))
            {
                o.section = Section::PostData;
                moved = true;
            }
        }
        if !moved {
            return;
        }
    }
}

/// A materialized view is refreshed after those it reads, directly or through views (as
/// pg_dump orders them): a refresh of one that reads one not yet populated fails.
fn refresh_order(objects: &mut [Object]) {
    let by_key: HashMap<CatalogKey, &Object> = objects
        .iter()
        .filter(|o| super::toc::defines(o.kind))
        .map(|o| (o.key, o))
        .collect();
    let mut needs: Vec<(usize, Vec<CatalogKey>)> = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        if o.kind != "MATERIALIZED VIEW DATA" {
            continue;
        }
        let mut read = Vec::new();
        let mut stack: Vec<CatalogKey> = by_key
            .get(&(class::PG_CLASS, o.key.1))
            .map(|mv| mv.deps.clone())
            .unwrap_or_default();
        let mut seen = HashSet::new();
        while let Some(k) = stack.pop() {
            if !seen.insert(k) {
                continue;
            }
            match by_key.get(&k) {
                Some(d) if d.kind == "MATERIALIZED VIEW" && k.1 != o.key.1 => {
                    read.push((class::MATVIEW_REFRESH, k.1))
                }
                Some(d) if d.kind == "VIEW" => stack.extend(d.deps.iter().copied()),
                _ => {}
            }
        }
        needs.push((i, read));
    }
    for (i, read) in needs {
        objects[i].deps.extend(read);
    }
}

/// Catalog rows that are not objects of their own in a dump, mapped onto the object that
/// dumps them: a view's `_RETURN` rule onto the view, a column default onto its table, a
/// table's row type onto the table, a composite type's `pg_class` row onto the type, an
/// array type onto its element type, a multirange onto its range, a key constraint's
/// index onto the constraint, a CHECK constraint
/// written inside CREATE TABLE onto its table and a validated domain constraint onto
/// the domain. pg_depend records dependencies on such rows; the dump sorts, comments
/// and grants the objects they belong to, so every lookup goes through this map
/// ([`Cx::owner_of`]). Only user objects (oid ≥ 16384) are read.
async fn load_owners(client: &Client, version: i32) -> Result<HashMap<CatalogKey, CatalogKey>> {
    use class::*;
    let q = |sql: &'static str| async move {
        client
            .query(sql, &[])
            .await
            .map_err(|e| sql_error(e, "reading dependencies"))
    };
    let mut map: HashMap<CatalogKey, CatalogKey> = HashMap::new();
    for r in q("SELECT oid, ev_class FROM pg_rewrite WHERE rulename = '_RETURN' AND oid >= 16384")
        .await?
    {
        map.insert((PG_REWRITE, r.get(0)), (PG_CLASS, r.get(1)));
    }
    for r in q("SELECT oid, adrelid FROM pg_attrdef WHERE oid >= 16384").await? {
        map.insert((PG_ATTRDEF, r.get(0)), (PG_CLASS, r.get(1)));
    }
    for r in q(
        "SELECT t.oid, t.typrelid, t.typelem, t.typcategory = 'A', COALESCE(c.relkind = 'c', false)
                FROM pg_type t LEFT JOIN pg_class c ON c.oid = t.typrelid WHERE t.oid >= 16384",
    )
    .await?
    {
        let (oid, relid, elem, is_array, composite): (u32, u32, u32, bool, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        if relid != 0 && composite {
            // CREATE TYPE … AS (…) is the type; its attributes live on a pg_class row
            map.insert((PG_CLASS, relid), (PG_TYPE, oid));
        } else if relid != 0 {
            map.insert((PG_TYPE, oid), (PG_CLASS, relid));
        } else if is_array && elem != 0 {
            map.insert((PG_TYPE, oid), (PG_TYPE, elem));
        }
    }
    if version >= 140000 {
        for r in q("SELECT rngmultitypid, rngtypid FROM pg_range WHERE rngtypid >= 16384").await? {
            map.insert((PG_TYPE, r.get(0)), (PG_TYPE, r.get(1)));
        }
    }
    for r in q(
        "SELECT oid, contype::text, conrelid, contypid, convalidated AND (conislocal OR contype = 'n') FROM pg_constraint WHERE oid >= 16384",
    )
    .await?
    {
        let (oid, contype, relid, typid, inline): (u32, String, u32, u32, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        // a NOT VALID check is an entry of its own, after the rows it does not hold for
        if matches!(contype.as_str(), "c" | "n") && relid != 0 && inline {
            map.insert((PG_CONSTRAINT, oid), (PG_CLASS, relid));
        } else if typid != 0 && inline {
            map.insert((PG_CONSTRAINT, oid), (PG_TYPE, typid));
        }
    }
    // a member of an operator class or family (pg_amop, pg_amproc) is written with it
    for r in q("SELECT classid, objid, refclassid, refobjid FROM pg_depend
          WHERE classid IN ('pg_amop'::regclass, 'pg_amproc'::regclass)
            AND refclassid IN ('pg_opclass'::regclass, 'pg_opfamily'::regclass)
            AND deptype IN ('a', 'i') AND objid >= 16384")
    .await?
    {
        map.insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
    }
    // the index of a key or exclusion constraint is built by ADD CONSTRAINT: what needs
    // the index (a foreign key, a CLUSTER ON) needs the constraint
    for r in q(
        "SELECT conindid, oid FROM pg_constraint WHERE contype IN ('p', 'u', 'x') AND conindid <> 0 AND oid >= 16384",
    )
    .await?
    {
        map.insert((PG_CLASS, r.get(0)), (PG_CONSTRAINT, r.get(1)));
    }
    // chains (the array of a table's row type) resolve in a few steps; a cycle cannot
    // occur (each step goes from a row to the object holding it), but is cut anyway
    let keys: Vec<CatalogKey> = map.keys().copied().collect();
    for k in keys {
        let mut to = map[&k];
        for _ in 0..4 {
            match map.get(&to) {
                Some(&next) if next != k => to = next,
                _ => break,
            }
        }
        map.insert(k, to);
    }
    Ok(map)
}

/// pg_depend (normal and automatic dependencies of user objects), each end mapped onto
/// the object that dumps it.
async fn load_dependencies(
    client: &Client,
    owners: &HashMap<CatalogKey, CatalogKey>,
) -> Result<HashMap<CatalogKey, Vec<CatalogKey>>> {
    let resolve = |k: CatalogKey| owners.get(&k).copied().unwrap_or(k);
    let rows = client
        .query(
            "SELECT classid, objid, refclassid, refobjid FROM pg_depend WHERE deptype IN ('n', 'a') AND objid >= 16384",
            &[],
        )
        .await
        .map_err(|e| sql_error(e, "reading dependencies"))?;
    let mut deps: HashMap<CatalogKey, Vec<CatalogKey>> = HashMap::new();
    for r in rows {
        let from = resolve((r.get(0), r.get(1)));
        let to = resolve((r.get(2), r.get(3)));
        if from != to {
            deps.entry(from).or_default().push(to);
        }
    }
    Ok(deps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_majors_whose_catalogs_are_known_are_dumped() {
        for v in [130000, 130023, 150018, 180004, 189999] {
            assert!(check_version(v).is_ok(), "{v}");
        }
        for (v, says) in [
            (190000, "PostgreSQL 19"),
            (200001, "PostgreSQL 20"),
            (120022, "PostgreSQL 12"),
        ] {
            let e = check_version(v).unwrap_err();
            assert_eq!(e.kind(), crate::error::ErrorKind::Unsupported);
            assert!(e.message().contains(says), "{}", e.message());
        }
        assert!(
            check_version(190000)
                .unwrap_err()
                .message()
                .contains("newer")
        );
    }
}

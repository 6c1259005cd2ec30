//! Large objects: created (with their owner) before the data, filled in the data section.
//! Their content is copied by the dump workers (see `dump.rs`).

use super::Cx;
use super::class::PG_LARGEOBJECT;
use crate::error::Result;
use crate::pg::toc::{Object, Section};

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<Vec<u32>> {
    let rows = cx
        .query(
            "SELECT l.oid, pg_get_userbyid(l.lomowner), quote_ident(pg_get_userbyid(l.lomowner))
             FROM pg_largeobject_metadata l ORDER BY l.oid",
            &[],
        )
        .await?;
    let mut oids = Vec::with_capacity(rows.len());
    for r in rows {
        let oid: u32 = r.get(0);
        let (owner, qowner): (String, String) = (r.get(1), r.get(2));
        let key = (PG_LARGEOBJECT, oid);
        let create = Object::new(
            key,
            Section::PreData,
            "LARGE OBJECT",
            oid.to_string(),
            format!("SELECT pg_catalog.lo_create('{oid}');"),
        )
        .owned(&owner, "LARGE OBJECT", &oid.to_string(), &qowner);
        cx.push(create);
        let mut data = Object::new(
            key,
            Section::Data,
            "LARGE OBJECT DATA",
            oid.to_string(),
            String::new(),
        )
        .dep(key);
        data.large_object = Some(oid);
        cx.objects.push(data);
        oids.push(oid);
    }
    Ok(oids)
}

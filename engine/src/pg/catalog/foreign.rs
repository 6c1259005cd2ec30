//! Foreign-data wrappers, foreign servers and user mappings (foreign tables are read with
//! the other relations).

use super::Cx;
use super::class::{PG_FDW, PG_FOREIGN_SERVER, PG_USER_MAPPING};
use super::schema_objects::not_member;
use crate::error::Result;
use crate::pg::toc::{Object, Section};

/// `OPTIONS (k 'v', …)` from an options array, quoted by the server.
pub(super) fn options_sql(column: &str) -> String {
    format!(
        "(SELECT string_agg(quote_ident(option_name) || ' ' || quote_literal(option_value), ', ') FROM pg_options_to_table({column}))"
    )
}

pub(super) async fn load(cx: &mut Cx<'_>) -> Result<()> {
    let sql = format!(
        "SELECT w.oid, w.fdwname, quote_ident(w.fdwname), NULLIF(w.fdwhandler, 0)::regproc::text, NULLIF(w.fdwvalidator, 0)::regproc::text,
                {}, pg_get_userbyid(w.fdwowner), quote_ident(pg_get_userbyid(w.fdwowner))
         FROM pg_foreign_data_wrapper w WHERE w.oid >= 16384 AND {} ORDER BY 2",
        options_sql("w.fdwoptions"),
        not_member("pg_foreign_data_wrapper", "w.oid")
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let q: String = r.get(2);
        let mut sql = format!("CREATE FOREIGN DATA WRAPPER {q}");
        if let Some(h) = r.get::<_, Option<String>>(3) {
            sql.push_str(&format!(" HANDLER {h}"));
        }
        if let Some(v) = r.get::<_, Option<String>>(4) {
            sql.push_str(&format!(" VALIDATOR {v}"));
        }
        if let Some(o) = r.get::<_, Option<String>>(5) {
            sql.push_str(&format!(" OPTIONS ({o})"));
        }
        sql.push(';');
        let (owner, qowner): (String, String) = (r.get(6), r.get(7));
        cx.push(
            Object::new(
                (PG_FDW, oid),
                Section::PreData,
                "FOREIGN DATA WRAPPER",
                &name,
                sql,
            )
            .owned(&owner, "FOREIGN DATA WRAPPER", &q, &qowner),
        );
    }
    let sql = format!(
        "SELECT s.oid, s.srvname, quote_ident(s.srvname), quote_ident(w.fdwname), s.srvtype, s.srvversion, {},
                pg_get_userbyid(s.srvowner), quote_ident(pg_get_userbyid(s.srvowner)), s.srvfdw
         FROM pg_foreign_server s JOIN pg_foreign_data_wrapper w ON w.oid = s.srvfdw
         WHERE s.oid >= 16384 AND {} ORDER BY 2",
        options_sql("s.srvoptions"),
        not_member("pg_foreign_server", "s.oid")
    );
    let lit = |s: String| format!("'{}'", s.replace('\'', "''"));
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let name: String = r.get(1);
        let (q, fdw): (String, String) = (r.get(2), r.get(3));
        let mut sql = format!("CREATE SERVER {q}");
        if let Some(t) = r.get::<_, Option<String>>(4) {
            sql.push_str(&format!(" TYPE {}", lit(t)));
        }
        if let Some(v) = r.get::<_, Option<String>>(5) {
            sql.push_str(&format!(" VERSION {}", lit(v)));
        }
        sql.push_str(&format!(" FOREIGN DATA WRAPPER {fdw}"));
        if let Some(o) = r.get::<_, Option<String>>(6) {
            sql.push_str(&format!(" OPTIONS ({o})"));
        }
        sql.push(';');
        let (owner, qowner): (String, String) = (r.get(7), r.get(8));
        let fdw_oid: u32 = r.get(9);
        let o = Object::new(
            (PG_FOREIGN_SERVER, oid),
            Section::PreData,
            "SERVER",
            &name,
            sql,
        )
        .owned(&owner, "SERVER", &q, &qowner)
        .dep((PG_FDW, fdw_oid));
        cx.push(o);
    }
    // user mappings: their options (often passwords) are visible only to privileged users
    let sql = format!(
        "SELECT m.umid, CASE WHEN m.umuser = 0 THEN 'PUBLIC' ELSE quote_ident(m.usename) END, quote_ident(m.srvname), {}, m.srvid
         FROM pg_user_mappings m WHERE m.srvid >= 16384 ORDER BY 2, 3",
        options_sql("m.umoptions")
    );
    for r in cx.query(&sql, &[]).await? {
        let oid: u32 = r.get(0);
        let (user, server): (String, String) = (r.get(1), r.get(2));
        let mut sql = format!("CREATE USER MAPPING FOR {user} SERVER {server}");
        if let Some(o) = r.get::<_, Option<String>>(3) {
            sql.push_str(&format!(" OPTIONS ({o})"));
        }
        sql.push(';');
        let srv: u32 = r.get(4);
        cx.push(
            Object::new(
                (PG_USER_MAPPING, oid),
                Section::PreData,
                "USER MAPPING",
                format!("USER MAPPING {user} SERVER {server}"),
                sql,
            )
            .dep((PG_FOREIGN_SERVER, srv))
            .dropped_by(
                format!("DROP USER MAPPING FOR {user} SERVER {server};"),
                format!("DROP USER MAPPING IF EXISTS FOR {user} SERVER {server};"),
            ),
        );
    }
    Ok(())
}

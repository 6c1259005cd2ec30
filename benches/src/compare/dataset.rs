//! The benchmark database: pgbench's tables, one wide table of many column types, and many
//! small tables.

use std::time::Instant;

use coffer_testkit::PgServer;

/// What to build.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// `pgbench -i -s SCALE` (100 000 `pgbench_accounts` rows per unit, ~15 MB).
    pub scale: u32,
    /// Rows of `public.wide`.
    pub wide_rows: u64,
    /// Tables `app.small_NNNN` of 1–5 rows each.
    pub small_tables: u32,
}

impl Spec {
    /// The default wide table: 20 000 rows per scale unit (400 000 at scale 20), so that it
    /// grows with the pgbench tables.
    pub fn default_wide_rows(scale: u32) -> u64 {
        u64::from(scale.max(1)) * 20_000
    }
}

/// One user table, for the COPY floor.
#[derive(Clone, Debug)]
pub struct Table {
    /// `schema.name`, quoted as needed.
    pub qualified: String,
    /// Heap + TOAST bytes (`pg_table_size`).
    pub bytes: u64,
}

/// The built database.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub db: String,
    pub spec: Spec,
    /// `pg_database_size`.
    pub db_bytes: u64,
    /// Out-of-line TOAST bytes of `public.wide` (its long texts).
    pub wide_toast_bytes: u64,
    /// Every ordinary user table, largest first.
    pub tables: Vec<Table>,
    /// Seconds it took to build.
    pub build_secs: f64,
}

/// Words the free text of `public.wide` is drawn from, so that it compresses like prose
/// rather than like random hex.
const WORDS: &str = "the customer asked for delivery before noon please leave parcel at \
front door gift wrap with card reading happy birthday replacement order previous item arrived \
damaged refund issued via original payment method contact support if not received within \
five business days warehouse note fragile handle care backorder expected next week and a to \
of on in is was by address updated phone call signature";

/// `public.wide`: text (a short note on most rows; on one row in 50 a long one, 1 500–2 500
/// words, which PostgreSQL compresses and stores out of line in TOAST), jsonb, numeric,
/// bytea, timestamptz, uuid and int[] columns, all generated in SQL.
fn wide_sql(rows: u64) -> String {
    let words = WORDS
        .split_whitespace()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(",");
    // w[1 + hash % n]: a deterministic pseudo-random word for (row, position).
    let word = "v.w[1 + (hashint8(g * 10000 + i) & 65535) % array_length(v.w, 1)]";
    format!(
        "CREATE TABLE public.wide (
            id bigint PRIMARY KEY,
            title text NOT NULL,
            body text,
            doc jsonb,
            amount numeric(14,4),
            payload bytea,
            created timestamptz,
            uid uuid,
            tags int[]
        );
        INSERT INTO public.wide
        SELECT g,
               'item ' || substr(md5(g::text), 1, 12) || ' ' || (g % 997),
               CASE
                 WHEN g % 50 = 0 THEN
                   (SELECT string_agg({word}, ' ') FROM generate_series(1, 1500 + g % 1000) i)
                 WHEN g % 3 = 0 THEN NULL
                 ELSE (SELECT string_agg({word}, ' ') FROM generate_series(1, 3 + g % 12) i)
               END,
               jsonb_build_object(
                 'id', g,
                 'sku', 'SKU-' || lpad((g % 50000)::text, 6, '0'),
                 'name', substr(md5((g * 3)::text), 1, 10),
                 'active', g % 3 <> 0,
                 'score', round(((g * 7919) % 10000) / 100.0, 2),
                 'tags', jsonb_build_array('t' || (g % 7), 't' || (g % 11), 't' || (g % 13)),
                 'dims', jsonb_build_object('w', g % 100, 'h', g % 37, 'unit', 'cm')),
               round(((g::numeric * 37.0123) % 100000), 4),
               decode(md5(g::text) || substr(md5((g + 1)::text), 1, 16 + 2 * (g % 9)::int), 'hex'),
               timestamptz '2020-01-01 00:00:00+00' + g * interval '17.123 seconds',
               gen_random_uuid(),
               ARRAY[g % 100, g % 1000, (g * 31) % 100000]::int[]
        FROM generate_series(1::bigint, {rows}) g, (SELECT ARRAY[{words}]::text[] AS w) v;"
    )
}

/// `app.small_0001` … : each with a primary key and 1–5 rows.
fn small_sql(count: u32) -> String {
    format!(
        "CREATE SCHEMA app;
        DO $$
        BEGIN
          FOR i IN 1..{count} LOOP
            EXECUTE format('CREATE TABLE app.small_%s (id int PRIMARY KEY, name text NOT NULL,
                            qty int, price numeric(10,2), updated timestamptz DEFAULT now())',
                           lpad(i::text, 4, '0'));
            EXECUTE format('INSERT INTO app.small_%s (id, name, qty, price)
                            SELECT g, md5(%s || g::text), g * %s, g * 1.25
                            FROM generate_series(1, %s) g',
                           lpad(i::text, 4, '0'), i, i, 1 + i % 5);
          END LOOP;
        END $$;"
    )
}

/// Creates database `db` on `pg` and fills it as `spec` says (pgbench's initialisation and
/// the wide table run at the same time), then `VACUUM ANALYZE` and `CHECKPOINT`.
pub fn build(pg: &PgServer, db: &str, spec: Spec) -> Result<Dataset, String> {
    let started = Instant::now();
    pg.create_database(db).map_err(|e| e.to_string())?;
    std::thread::scope(|s| {
        let pgbench = s.spawn(|| {
            let out = pg
                .client("pgbench")
                .args(["-i", "-q", "-s", &spec.scale.to_string(), db])
                .output()
                .map_err(|e| format!("running pgbench: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "pgbench -i failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                ))
            }
        });
        let wide = pg
            .psql(db, &wide_sql(spec.wide_rows))
            .and_then(|_| pg.psql(db, &small_sql(spec.small_tables)))
            .map(drop)
            .map_err(|e| e.to_string());
        let pgbench = pgbench.join().expect("pgbench thread");
        wide.and(pgbench)
    })?;
    pg.psql(db, "VACUUM ANALYZE; CHECKPOINT;")
        .map_err(|e| e.to_string())?;
    let db_bytes = pg
        .psql(db, "SELECT pg_database_size(current_database())")
        .map_err(|e| e.to_string())?
        .trim()
        .parse()
        .map_err(|e| format!("pg_database_size: {e}"))?;
    let wide_toast_bytes = pg
        .psql(
            db,
            "SELECT pg_relation_size(reltoastrelid) FROM pg_class WHERE oid = 'public.wide'::regclass",
        )
        .map_err(|e| e.to_string())?
        .trim()
        .parse()
        .map_err(|e| format!("TOAST size: {e}"))?;
    let list = pg
        .psql(
            db,
            "SELECT format('%I.%I', n.nspname, c.relname), pg_table_size(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind = 'r'
               AND n.nspname NOT IN ('pg_catalog', 'information_schema')
               AND n.nspname NOT LIKE 'pg_toast%'
             ORDER BY 2 DESC, 1",
        )
        .map_err(|e| e.to_string())?;
    let tables = list
        .lines()
        .filter_map(|l| {
            let (name, bytes) = l.rsplit_once('|')?;
            Some(Table {
                qualified: name.to_string(),
                bytes: bytes.parse().ok()?,
            })
        })
        .collect();
    Ok(Dataset {
        db: db.to_string(),
        spec,
        db_bytes,
        wide_toast_bytes,
        tables,
        build_secs: started.elapsed().as_secs_f64(),
    })
}

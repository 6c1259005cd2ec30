//! PostgreSQL: connection, snapshot, schema from the catalogs, COPY streaming.

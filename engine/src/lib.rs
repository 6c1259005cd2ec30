//! coffer's engine: PostgreSQL and Redis sources and sinks, and the dump and restore
//! pipelines that connect them to the archive format. Empty until the dump issues land;
//! it exists now so that the workspace has its final shape.

//! The RDB format: the streaming parser ([`RdbParser`]), the logical decoder
//! ([`decode_value`]) and the constants both use.
//!
//! Versions 1–12 are read (Redis up to 8.4, Valkey 7.2–8.x which write RDB 11). Redis
//! Enterprise's RAM-LRU opcode (107) is skipped. Newer versions and Valkey 9's `VALKEY080`
//! are refused with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).

mod collect;
mod decode;
mod parser;
pub mod primitives;
mod walker;

pub use collect::{Rdb, RdbKey, parse_bytes, parse_reader};
pub use decode::{
    Consumer, ConsumerGroup, HashField, PendingEntry, Stream, StreamEntry, StreamId, Value,
    decode_value, module_name,
};
pub use parser::{DEFAULT_CHUNK_SIZE, Event, KeyHeader, KeyMeta, RdbParser};

/// The newest RDB version this build reads.
pub const MAX_RDB_VERSION: u32 = 12;

/// Top-level opcodes (src/rdb.h).
pub mod opcodes {
    /// Redis Enterprise: an LRU hint before a key (a length); skipped.
    pub const ENTERPRISE_RAM_LRU: u8 = 107;
    /// Cluster slot size hints (RDB 12).
    pub const SLOT_INFO: u8 = 244;
    /// A function library (RDB 10).
    pub const FUNCTION2: u8 = 245;
    /// Redis 7.0 release-candidate functions; refused.
    pub const FUNCTION_PRE_GA: u8 = 246;
    /// Module global data.
    pub const MODULE_AUX: u8 = 247;
    /// LRU idle seconds of the next key.
    pub const IDLE: u8 = 248;
    /// LFU counter of the next key.
    pub const FREQ: u8 = 249;
    /// Auxiliary field.
    pub const AUX: u8 = 250;
    /// Database size hints.
    pub const RESIZEDB: u8 = 251;
    /// Expiry of the next key, ms.
    pub const EXPIRETIME_MS: u8 = 252;
    /// Expiry of the next key, s (old).
    pub const EXPIRETIME: u8 = 253;
    /// Database selector.
    pub const SELECTDB: u8 = 254;
    /// End of the RDB.
    pub const EOF: u8 = 255;
}

/// Value type bytes (src/rdb.h).
#[allow(missing_docs)]
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE_PRE_GA: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
    pub const SET_LISTPACK: u8 = 20;
    pub const STREAM_LISTPACKS_3: u8 = 21;
    pub const HASH_METADATA_PRE_GA: u8 = 22;
    pub const HASH_LISTPACK_EX_PRE_GA: u8 = 23;
    pub const HASH_METADATA: u8 = 24;
    pub const HASH_LISTPACK_EX: u8 = 25;
}

/// Whether `b` is a value type byte this build knows (types 0–25 except 8).
pub fn is_value_type(b: u8) -> bool {
    b <= types::HASH_LISTPACK_EX && b != 8
}

/// The name of a type byte, for messages.
pub fn type_name(b: u8) -> &'static str {
    match b {
        0 => "string",
        1 => "list",
        2 => "set",
        3 => "zset (string scores)",
        4 => "hash",
        5 => "zset",
        6 => "module (pre-release)",
        7 => "module",
        9 => "hash (zipmap)",
        10 => "list (ziplist)",
        11 => "set (intset)",
        12 => "zset (ziplist)",
        13 => "hash (ziplist)",
        14 => "list (quicklist)",
        15 => "stream (v1)",
        16 => "hash (listpack)",
        17 => "zset (listpack)",
        18 => "list (quicklist v2)",
        19 => "stream (v2)",
        20 => "set (listpack)",
        21 => "stream (v3)",
        22 => "hash with field TTLs (pre-release)",
        23 => "hash (listpack with TTLs, pre-release)",
        24 => "hash with field TTLs",
        25 => "hash (listpack with TTLs)",
        _ => "unknown",
    }
}

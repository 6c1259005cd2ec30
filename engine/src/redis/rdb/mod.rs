//! The RDB format: the streaming parser ([`RdbParser`]), the logical decoder
//! ([`decode_value`]) and the constants both use.
//!
//! Versions 1–12 are read (Redis up to 8.4, Valkey 7.2–8.x which write RDB 11), and Valkey
//! 9's `VALKEY080` (RDB 80). Redis Enterprise's RAM-LRU opcode (107) is skipped. Newer
//! versions are refused with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported).
//!
//! Redis and Valkey went separate ways after RDB 11: Redis 7.4 took types 22–25 for hashes
//! with field TTLs, Valkey 9 took type 22 for its own (`RDB_TYPE_HASH_2`) and moved to RDB
//! 80 with a `VALKEY` magic. So a type byte above 21 means what the RDB version says:
//! [`is_valkey`] tells which family a version belongs to.

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

/// The newest Redis RDB version this build reads.
pub const MAX_RDB_VERSION: u32 = 12;

/// The Valkey RDB version this build reads (`VALKEY080`, Valkey 9).
pub const VALKEY_RDB_VERSION: u32 = 80;

/// Whether RDB `version` is Valkey's (80 and up, magic `VALKEY`) rather than Redis'.
pub fn is_valkey(version: u32) -> bool {
    version >= VALKEY_RDB_VERSION
}

/// Whether this build reads RDB `version` (1–12, or 80).
pub fn is_supported_version(version: u32) -> bool {
    (1..=MAX_RDB_VERSION).contains(&version) || version == VALKEY_RDB_VERSION
}

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
    /// Valkey 9 (RDB 80): a hash with field TTLs, `(field, value, expiry ms | -1)` triples.
    /// The same byte as Redis' [`HASH_METADATA_PRE_GA`]: the RDB version tells which.
    pub const VALKEY_HASH_2: u8 = 22;
}

/// Whether `b` is a value type byte this build knows in RDB `version`: types 0–25 except
/// 8 in a Redis RDB, 0–22 except 8 in a Valkey one.
pub fn is_value_type(b: u8, version: u32) -> bool {
    let last = if is_valkey(version) {
        types::VALKEY_HASH_2
    } else {
        types::HASH_LISTPACK_EX
    };
    b <= last && b != 8
}

/// Whether a value of `type_byte` in RDB `version` is a hash that carries field TTLs.
pub fn has_field_ttls(type_byte: u8, version: u32) -> bool {
    if is_valkey(version) {
        type_byte == types::VALKEY_HASH_2
    } else {
        (types::HASH_METADATA_PRE_GA..=types::HASH_LISTPACK_EX).contains(&type_byte)
    }
}

/// The name of a type byte in RDB `version`, for messages.
pub fn type_name(b: u8, version: u32) -> &'static str {
    if is_valkey(version) && b == types::VALKEY_HASH_2 {
        return "hash with field TTLs (Valkey)";
    }
    if is_valkey(version) && b > types::VALKEY_HASH_2 {
        return "unknown";
    }
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

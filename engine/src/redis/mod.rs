//! Redis: replica handshake, streaming RDB parser, restore.

//! COPY ... TO STDOUT into archive frames.
//!
//! The server sends one CopyData message per row in text format, so frames are cut on row
//! boundaries for free: rows are appended to a buffer until it reaches the frame size, and
//! any frame can later be loaded by itself. Each row also feeds an order-independent
//! checksum ([`RowChecksum`]). Sealing (zstd, BLAKE3) happens on a separate thread per
//! worker, so receiving the next rows overlaps compressing the last frame.

use bytes::Bytes;
use futures::StreamExt;
use tokio_postgres::Client;
use xxhash_rust::xxh3::xxh3_64;

use super::session::sql_error;
use crate::error::{Error, ErrorKind, Result};

/// Row count and the wrapping sum of the 64-bit XXH3 of each row's COPY text line
/// (newline included). Addition makes it independent of row order, so a restored table can
/// be checked against the dump by copying it out again, in any order, with nothing but
/// COPY; parts of a split table add up to the table's checksum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RowChecksum {
    pub rows: u64,
    pub sum: u64,
}

impl RowChecksum {
    pub fn add_row(&mut self, line: &[u8]) {
        self.rows += 1;
        self.sum = self.sum.wrapping_add(xxh3_64(line));
    }

    pub fn merge(&mut self, other: RowChecksum) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// `xxh3sum:<16 hex digits>`, as stored in the manifest.
    pub fn hex(&self) -> String {
        format!("xxh3sum:{:016x}", self.sum)
    }

    /// The sum of a checksum written by [`RowChecksum::hex`].
    pub fn parse(hex: &str) -> Option<u64> {
        u64::from_str_radix(hex.strip_prefix("xxh3sum:")?, 16).ok()
    }
}

/// Runs `copy_sql` (a `COPY … TO STDOUT`) and hands frames of whole rows, each at least
/// `frame_size` bytes (but the last), to `emit`. Returns the rows' checksum.
pub async fn copy_out<F>(
    client: &Client,
    copy_sql: &str,
    frame_size: usize,
    mut emit: F,
) -> Result<RowChecksum>
where
    F: AsyncFnMut(Vec<u8>) -> Result<()>,
{
    let stream = client
        .copy_out(copy_sql)
        .await
        .map_err(|e| sql_error(e, "starting COPY"))?;
    futures::pin_mut!(stream);
    let mut sum = RowChecksum::default();
    let mut buf: Vec<u8> = Vec::with_capacity(frame_size + (64 << 10));
    let mut partial: Vec<u8> = Vec::new();
    while let Some(msg) = stream.next().await {
        let msg: Bytes = msg.map_err(|e| sql_error(e, "receiving COPY data"))?;
        rows_of(&msg, &mut partial, &mut sum, &mut buf);
        if buf.len() >= frame_size {
            let full = std::mem::replace(&mut buf, Vec::with_capacity(frame_size + (64 << 10)));
            emit(full).await?;
        }
    }
    if !partial.is_empty() {
        return Err(Error::new(
            ErrorKind::Protocol,
            "COPY data ended in the middle of a row",
        ));
    }
    if !buf.is_empty() {
        emit(buf).await?;
    }
    Ok(sum)
}

/// Appends a CopyData message to `buf`, counting its rows. PostgreSQL sends exactly one
/// row per message; this does not rely on it: a message that does not end a row is held
/// in `partial` until the row is complete.
fn rows_of(msg: &[u8], partial: &mut Vec<u8>, sum: &mut RowChecksum, buf: &mut Vec<u8>) {
    if partial.is_empty() && msg.last() == Some(&b'\n') && memchr_count_one(msg) {
        sum.add_row(msg);
        buf.extend_from_slice(msg);
        return;
    }
    partial.extend_from_slice(msg);
    // whole rows are taken in place and drained once, not copied out one by one
    let mut start = 0;
    while let Some(i) = partial[start..].iter().position(|&b| b == b'\n') {
        let row = &partial[start..=start + i];
        sum.add_row(row);
        buf.extend_from_slice(row);
        start += i + 1;
    }
    partial.drain(..start);
}

/// True when the only newline in `msg` is its last byte (text COPY escapes newlines in
/// data as `\n`, so a raw newline always ends a row).
fn memchr_count_one(msg: &[u8]) -> bool {
    !msg[..msg.len() - 1].contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_order_independent_and_parts_add_up() {
        let rows: [&[u8]; 3] = [b"1\ta\n", b"2\tb\n", b"3\t\\N\n"];
        let mut a = RowChecksum::default();
        rows.iter().for_each(|r| a.add_row(r));
        let mut b = RowChecksum::default();
        rows.iter().rev().for_each(|r| b.add_row(r));
        assert_eq!(a, b);
        let (mut p1, mut p2) = (RowChecksum::default(), RowChecksum::default());
        p1.add_row(rows[0]);
        p2.add_row(rows[1]);
        p2.add_row(rows[2]);
        p1.merge(p2);
        assert_eq!(p1, a);
        let mut c = RowChecksum::default();
        c.add_row(b"1\ta\n");
        c.add_row(b"1\ta\n");
        assert_ne!(c, a);
    }

    #[test]
    fn rows_split_across_messages_are_reassembled() {
        let (mut partial, mut sum, mut buf) = (Vec::new(), RowChecksum::default(), Vec::new());
        rows_of(b"1\tab", &mut partial, &mut sum, &mut buf);
        assert_eq!(sum.rows, 0);
        rows_of(b"c\n2\tx\n", &mut partial, &mut sum, &mut buf);
        assert_eq!(
            (sum.rows, buf.as_slice(), partial.len()),
            (2, &b"1\tabc\n2\tx\n"[..], 0)
        );
        let mut whole = RowChecksum::default();
        whole.add_row(b"1\tabc\n");
        whole.add_row(b"2\tx\n");
        assert_eq!(sum, whole);
    }
}

//! Intsets (RDB type 11): a sorted array of unique integers.
//!
//! ```text
//! u32 LE encoding (2, 4 or 8 bytes per integer) | u32 LE count | count × int LE, ascending
//! ```

use crate::Result;
use crate::redis::{corrupt, take};

/// The integers of an intset, in their stored (ascending) order.
pub fn values(blob: &[u8]) -> Result<Vec<i64>> {
    const WHAT: &str = "intset";
    let encoding = u32::from_le_bytes(take::<4>(blob, 0, WHAT)?);
    let count = u32::from_le_bytes(take::<4>(blob, 4, WHAT)?) as usize;
    let width = match encoding {
        2 | 4 | 8 => encoding as usize,
        other => {
            return Err(corrupt(
                WHAT,
                0,
                format!("encoding {other}, expected 2, 4 or 8"),
            ));
        }
    };
    let body = &blob[8..];
    if count == 0 || body.len() / width != count || body.len() % width != 0 {
        return Err(corrupt(
            WHAT,
            4,
            format!(
                "{count} integers of {width} bytes do not fill {} bytes",
                body.len()
            ),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for (i, c) in body.chunks_exact(width).enumerate() {
        let v = match width {
            2 => i64::from(i16::from_le_bytes(c.try_into().expect("2"))),
            4 => i64::from(i32::from_le_bytes(c.try_into().expect("4"))),
            _ => i64::from_le_bytes(c.try_into().expect("8")),
        };
        if out.last().is_some_and(|&prev| prev >= v) {
            return Err(corrupt(
                WHAT,
                8 + i * width,
                "integers not strictly ascending",
            ));
        }
        out.push(v);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_width() {
        let mut b = vec![2, 0, 0, 0, 2, 0, 0, 0];
        b.extend_from_slice(&(-5i16).to_le_bytes());
        b.extend_from_slice(&7i16.to_le_bytes());
        assert_eq!(values(&b).unwrap(), vec![-5, 7]);
        let mut b = vec![8, 0, 0, 0, 1, 0, 0, 0];
        b.extend_from_slice(&i64::MIN.to_le_bytes());
        assert_eq!(values(&b).unwrap(), vec![i64::MIN]);
    }

    #[test]
    fn rejects_bad_blobs() {
        for bad in [
            &[][..],
            &[2, 0, 0, 0, 1, 0, 0, 0, 1][..],
            &[3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0][..],
            &[2, 0, 0, 0, 0, 0, 0, 0][..],
            &[2, 0, 0, 0, 2, 0, 0, 0, 5, 0, 5, 0][..],
            &[2, 0, 0, 0, 255, 255, 255, 255, 1, 0][..],
        ] {
            assert!(values(bad).is_err(), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod proptests {
    proptest::proptest! {
        #[test]
        fn never_panics(input in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            let _ = super::values(&input);
        }
    }
}

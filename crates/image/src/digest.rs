//! Digests and chain IDs.

use sha2::{Digest as _, Sha256};

use crate::Error;

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks that `d` is `sha256:<64 lowercase hex>` and returns the hex part; any other text
/// is refused before it can become a path in the store.
pub fn validate_digest(d: &str) -> Result<&str, Error> {
    match d.split_once(':') {
        Some(("sha256", hex))
            if hex.len() == 64
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            Ok(hex)
        }
        _ => Err(Error::InvalidDigest {
            digest: d.to_string(),
        }),
    }
}

/// Chain IDs of a layer stack (image-spec: `chain(n) = sha256(chain(n-1) + " " + diff(n))`),
/// which name a snapshot by everything beneath it.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => format!("sha256:{}", sha256_hex(format!("{parent} {d}").as_bytes())),
        };
        out.push(next);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = format!("sha256:{}", "a".repeat(64));
        let b = format!("sha256:{}", "b".repeat(64));
        let c = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(c[0], a);
        assert_eq!(
            c[1],
            format!("sha256:{}", sha256_hex(format!("{a} {b}").as_bytes()))
        );
    }

    #[test]
    fn digests_are_checked_before_use_as_paths() {
        assert!(validate_digest(&format!("sha256:{}", "0".repeat(64))).is_ok());
        for bad in ["sha256:../../etc", "md5:00", "sha256:ABC", ""] {
            assert!(validate_digest(bad).is_err(), "{bad}");
        }
    }
}

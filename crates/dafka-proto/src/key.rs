//! CURVE public keys as they travel in beacons: ZeroMQ's Z85 text form.

/// ZeroMQ's Z85 alphabet (RFC 32).
pub const Z85: &str =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Z85 characters of a 32-byte key.
pub const KEY_CHARS: usize = 40;

/// Whether `k` has the shape of a Z85 key: 40 characters of the alphabet.
/// (A few such strings still do not decode: five characters can exceed 32
/// bits. Key files are decoded in full when read; a key in a beacon only
/// has to equal the key its sender authenticated with.)
pub fn is_z85_key(k: &str) -> bool {
    k.len() == KEY_CHARS && k.bytes().all(|c| Z85.as_bytes().contains(&c))
}

#[cfg(test)]
mod tests {
    use super::is_z85_key;

    #[test]
    fn a_key_is_forty_z85_characters() {
        assert!(is_z85_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"));
        assert!(!is_z85_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf"));
        assert!(!is_z85_key("rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf~"));
        assert!(!is_z85_key(""));
    }
}

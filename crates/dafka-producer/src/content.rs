//! What `Producer::publish` accepts as a record's content.

use bytes::Bytes;

/// A record's content. Owned buffers (`Bytes`, `Vec<u8>`, `String`) are
/// taken without a copy; borrowed ones (`&[u8]`, `&str`, byte-string
/// literals) are copied, so an application can publish from a buffer it
/// reuses.
pub trait Content {
    /// The content as `Bytes`.
    fn into_bytes(self) -> Bytes;
}

impl Content for Bytes {
    fn into_bytes(self) -> Bytes {
        self
    }
}

impl Content for Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl Content for String {
    fn into_bytes(self) -> Bytes {
        Bytes::from(self)
    }
}

impl Content for &[u8] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl<const N: usize> Content for &[u8; N] {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

impl Content for &str {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Content for &String {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self.as_bytes())
    }
}

impl Content for &Vec<u8> {
    fn into_bytes(self) -> Bytes {
        Bytes::copy_from_slice(self)
    }
}

#[cfg(test)]
mod tests {
    use super::Content;

    #[test]
    fn borrowed_content_is_copied_and_owned_content_taken() {
        let buf = vec![1u8, 2, 3];
        let line = String::from("a line");
        assert_eq!(buf[..].into_bytes(), [1, 2, 3][..]);
        assert_eq!((&buf).into_bytes(), [1, 2, 3][..]);
        assert_eq!(b"lit".into_bytes(), b"lit"[..]);
        assert_eq!((&line).into_bytes(), b"a line"[..]);
        assert_eq!(line.as_str().into_bytes(), b"a line"[..]);
        let owned = buf.clone();
        let ptr = owned.as_ptr();
        assert_eq!(owned.into_bytes().as_ptr(), ptr, "a Vec is not copied");
    }
}

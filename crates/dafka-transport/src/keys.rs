//! CURVE keys as files: what `dafka_keygen` writes and nodes read.
//!
//! A key is 32 bytes, written as 40 characters of Z85 (ZeroMQ's text
//! form) on one line. The secret key's file is created with mode 0600 and
//! never overwritten: a secret key replaced by accident locks the node out
//! of every cluster that knew its public key. An `authorized_keys` file
//! lists public keys, one a line, like SSH's.

use dafka_proto::{is_z85_key, KEY_CHARS};
use std::collections::HashSet;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Why a key file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file cannot be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no valid key.
    #[error("{path}: {why}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// This libzmq cannot make keys.
    #[error("cannot make a CURVE key pair: {0} (is libzmq built with libsodium?)")]
    NoCurve(zmq::Error),
}

/// A CURVE key pair in Z85.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyPair {
    /// The public key: given to peers.
    pub public: String,
    /// The secret key: stays on the node.
    pub secret: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a secret key.
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish()
    }
}

/// A fresh key pair. A public key starting with `#` is drawn again: in an
/// `authorized_keys` file it would look like a comment to a person.
pub fn generate() -> Result<KeyPair, KeyError> {
    loop {
        let pair = zmq::CurveKeyPair::new().map_err(KeyError::NoCurve)?;
        let z85 = |k: &[u8; 32]| zmq::z85_encode(k).unwrap_or_default();
        let pair = KeyPair {
            public: z85(&pair.public_key),
            secret: z85(&pair.secret_key),
        };
        if !pair.public.starts_with('#') {
            return Ok(pair);
        }
    }
}

/// The key pair of a secret key file: the public key is derived.
pub fn read_pair(path: &Path, warnings: &mut Vec<String>) -> Result<KeyPair, KeyError> {
    let secret = read_key(path, warnings)?;
    let public = dafka_sockopt::curve_public(&secret).ok_or_else(|| KeyError::Bad {
        path: path.to_path_buf(),
        why: "not a CURVE secret key".into(),
    })?;
    Ok(KeyPair { public, secret })
}

/// Reads an `authorized_keys` file: one public key a line, words after
/// it a comment; blank lines and lines starting with `#` that are not a
/// key are comments. A line that is neither is an error naming it.
pub fn read_authorized(path: &Path) -> Result<HashSet<String>, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut keys = HashSet::new();
    for (n, line) in text.lines().enumerate() {
        let Some(word) = line.split_whitespace().next() else {
            continue;
        };
        match check_key(word) {
            Ok(()) => {
                keys.insert(word.to_string());
            }
            Err(_) if word.starts_with('#') => {}
            Err(why) => {
                return Err(KeyError::Bad {
                    path: path.to_path_buf(),
                    why: format!("line {}: {why}", n + 1),
                })
            }
        }
    }
    Ok(keys)
}

/// The files of a key pair named `base`: `base.secret` and `base.public`.
pub fn key_files(base: &Path) -> (PathBuf, PathBuf) {
    let with = |ext: &str| {
        let mut p = base.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    (with(".secret"), with(".public"))
}

/// Writes `pair` to `base.secret` (mode 0600) and `base.public`, refusing
/// to replace either.
pub fn write_pair(base: &Path, pair: &KeyPair) -> Result<(PathBuf, PathBuf), KeyError> {
    let (secret, public) = key_files(base);
    for p in [&secret, &public] {
        if p.exists() {
            return Err(KeyError::Bad {
                path: p.clone(),
                why: "already exists; refusing to overwrite a key (remove it first)".into(),
            });
        }
    }
    create(&secret, 0o600, &pair.secret)?;
    create(&public, 0o644, &pair.public)?;
    Ok((secret, public))
}

fn create(path: &Path, mode: u32, key: &str) -> Result<(), KeyError> {
    let io = |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    writeln!(f, "{key}").and_then(|()| f.sync_all()).map_err(io)
}

/// Reads a key file: one Z85 key (40 characters of ZeroMQ's alphabet);
/// blank lines, lines starting with `#`, and anything after the key and a
/// space are ignored (`#` is a Z85 character, so only a whole line or a
/// word after the key can be a comment). A secret key file others
/// may read is accepted with a warning in `warnings`.
pub fn read_key(path: &Path, warnings: &mut Vec<String>) -> Result<String, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let key = parse_key(&text).map_err(|why| KeyError::Bad {
        path: path.to_path_buf(),
        why,
    })?;
    let others = std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o077);
    if path.extension().is_some_and(|e| e == "secret") && others != 0 {
        warnings.push(format!(
            "{}: a secret key others can read (mode {:o}; chmod 600 it)",
            path.display(),
            others
        ));
    }
    Ok(key)
}

/// The one key in a key file's text.
pub fn parse_key(text: &str) -> Result<String, String> {
    let mut keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next());
    let key = keys.next().ok_or("no key in it")?;
    if keys.next().is_some() {
        return Err("more than one key in it".into());
    }
    check_key(key).map(|()| key.to_string())
}

/// Checks a Z85 key: 40 characters that decode to 32 bytes.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.len() != KEY_CHARS {
        return Err(format!(
            "a key is {KEY_CHARS} characters of Z85, this is {}",
            key.len()
        ));
    }
    if let Some(c) = key.chars().find(|c| !dafka_proto::Z85.contains(*c)) {
        return Err(format!(
            "{c:?} is not a Z85 character (ZeroMQ's key alphabet)"
        ));
    }
    match zmq::z85_decode(key) {
        Ok(bytes) if bytes.len() == 32 && is_z85_key(key) => Ok(()),
        _ => Err("not Z85 (ZeroMQ's key alphabet)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_written_once_read_back_and_kept_secret() {
        let d = tempfile::tempdir().expect("dir");
        let base = d.path().join("node1");
        let pair = generate().expect("CURVE");
        let (secret, public) = write_pair(&base, &pair).expect("written");
        let mode = std::fs::metadata(&secret)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut warnings = Vec::new();
        assert_eq!(read_key(&secret, &mut warnings).expect("read"), pair.secret);
        assert_eq!(read_key(&public, &mut warnings).expect("read"), pair.public);
        assert!(warnings.is_empty());
        let again = write_pair(&base, &pair).expect_err("no overwrite");
        assert!(
            again.to_string().contains("refusing to overwrite"),
            "{again}"
        );
        assert!(!format!("{pair:?}").contains(&pair.secret), "never printed");
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        read_key(&secret, &mut warnings).expect("still read");
        assert!(warnings[0].contains("chmod 600"), "{warnings:?}");
    }

    #[test]
    fn a_bad_key_is_named() {
        assert!(parse_key("# nothing\n\n")
            .expect_err("refused")
            .contains("no key"));
        assert!(parse_key("abc")
            .expect_err("refused")
            .contains("40 characters"));
        let not_z85 = "~".repeat(40);
        assert!(parse_key(&not_z85).expect_err("refused").contains("Z85"));
        let pair = generate().expect("CURVE");
        let two = format!("{}\n{}\n", pair.public, pair.secret);
        assert!(parse_key(&two)
            .expect_err("refused")
            .contains("more than one"));
        let commented = format!("# node1\n{}  # its public key\n", pair.public);
        assert_eq!(parse_key(&commented), Ok(pair.public));
    }

    #[test]
    fn an_authorized_keys_file_has_keys_comments_and_names_a_bad_line() {
        let d = tempfile::tempdir().expect("dir");
        let path = d.path().join("authorized_keys");
        let (a, b) = (generate().expect("a"), generate().expect("b"));
        let text = format!("# the cluster\n\n{} store1\n  {}\n", a.public, b.public);
        std::fs::write(&path, text).expect("write");
        let keys = read_authorized(&path).expect("read");
        assert_eq!(keys.len(), 2);
        assert!(keys.contains(&a.public) && keys.contains(&b.public));
        std::fs::write(&path, format!("{}\nnot-a-key\n", a.public)).expect("write");
        let e = read_authorized(&path).expect_err("bad line").to_string();
        assert!(e.contains("line 2"), "{e}");
        let pair = read_pair_of(&d, &a);
        assert_eq!(pair.public, a.public);
    }

    fn read_pair_of(d: &tempfile::TempDir, pair: &KeyPair) -> KeyPair {
        let (secret, _) = write_pair(&d.path().join("n"), pair).expect("written");
        read_pair(&secret, &mut Vec::new()).expect("pair")
    }
}

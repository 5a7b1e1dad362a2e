//! The `[security]` section: CURVE encryption and a key allowlist.
//!
//! With `enabled`, every socket of every node and tower speaks CURVE: the
//! node proves it holds the secret key of its public key, and a peer lets
//! it in only if that public key is listed in the peer's
//! `authorized_keys`. There is no certificate authority: a key is trusted
//! because an operator wrote it in that file (like SSH's).
//!
//! ```toml
//! [security]
//! enabled = true
//! secret_key_file = "/etc/dafka/node1.secret"     # from dafka_keygen
//! authorized_keys = "/etc/dafka/authorized_keys"  # public keys, one a line
//! tower_keys = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID"  # one per tower
//! ```

use crate::config::{split_endpoints, ConfigError};
use serde::Deserialize;

/// Security settings shared by every node and tower.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// CURVE on every socket. Off by default: a cluster on one host or a
    /// private network needs no keys.
    pub enabled: bool,
    /// This node's secret key (written by `dafka_keygen NAME` as
    /// `NAME.secret`); its public key is derived from it.
    pub secret_key_file: String,
    /// The public keys allowed to connect, one a line; `#` starts a
    /// comment line, and words after a key are its comment. Re-read when
    /// it changes or on SIGHUP.
    pub authorized_keys: String,
    /// The towers' public keys, comma-separated, in the order of
    /// `beacon.sub_address` and `beacon.pub_address` (a tower's two
    /// sockets share its key). Not used by a tower itself.
    pub tower_keys: String,
}

impl SecurityConfig {
    /// The towers' keys, one per tower.
    pub fn tower_keys(&self) -> Vec<String> {
        split_endpoints(&self.tower_keys)
    }

    /// Checks what can be checked without reading the files: both files
    /// named when enabled, and well-formed tower keys. A node passes
    /// `towers`, how many towers it connects to (a tower passes `None`).
    pub fn validate(&self, towers: Option<usize>) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        if self.secret_key_file.trim().is_empty() {
            return Err(ConfigError::new(
                "security.secret_key_file",
                "security is enabled but no secret key file is given (make one with dafka_keygen)",
            ));
        }
        if self.authorized_keys.trim().is_empty() {
            return Err(ConfigError::new(
                "security.authorized_keys",
                "security is enabled but no file of authorized public keys is given",
            ));
        }
        let Some(towers) = towers else {
            return Ok(());
        };
        let keys = self.tower_keys();
        if let Some(bad) = keys.iter().find(|k| !dafka_proto::is_z85_key(k)) {
            return Err(ConfigError::new(
                "security.tower_keys",
                format!("'{bad}' is not a CURVE public key (40 characters of Z85)"),
            ));
        }
        if keys.len() != towers {
            return Err(ConfigError::new(
                "security.tower_keys",
                format!(
                    "{} key(s) for {towers} tower(s): give each tower's public key, in the order of beacon.sub_address",
                    keys.len()
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";

    fn on() -> SecurityConfig {
        SecurityConfig {
            enabled: true,
            secret_key_file: "n.secret".into(),
            authorized_keys: "keys".into(),
            tower_keys: KEY.into(),
        }
    }

    #[test]
    fn off_needs_nothing() {
        assert_eq!(SecurityConfig::default().validate(Some(1)), Ok(()));
    }

    #[test]
    fn on_needs_files_and_a_key_per_tower() {
        assert_eq!(on().validate(Some(1)), Ok(()));
        assert_eq!(on().validate(None), Ok(()));
        let no_secret = SecurityConfig {
            secret_key_file: String::new(),
            ..on()
        };
        assert_eq!(
            no_secret.validate(Some(1)).map_err(|e| e.key),
            Err("security.secret_key_file")
        );
        let no_list = SecurityConfig {
            authorized_keys: " ".into(),
            ..on()
        };
        assert_eq!(
            no_list.validate(Some(1)).map_err(|e| e.key),
            Err("security.authorized_keys")
        );
        let e = on().validate(Some(2)).expect_err("one key, two towers");
        assert!(e.reason.contains("1 key(s) for 2 tower(s)"), "{e}");
        let bad = SecurityConfig {
            tower_keys: "short".into(),
            ..on()
        };
        assert!(bad
            .validate(Some(1))
            .expect_err("bad")
            .reason
            .contains("'short'"));
    }
}

//! A phone's credentials from its password: the `devices` row with both HA1 digests for the
//! realm, never the password. `callfleet device add` and the admin pages both make devices
//! here, so the rules for extensions and the digests are the same on either path.

use callfleet_store::Device;

use super::digest::{ha1, Algorithm};

/// Longest extension accepted.
pub const MAX_EXT: usize = 32;

/// Why a device cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialsError {
    /// The extension is empty, too long, or has characters a SIP URI user part should not.
    #[error("extension {ext:?}: use 1 to {MAX_EXT} letters, digits, '-', '_', '.' or '+'")]
    BadExtension { ext: String },
    /// An empty password.
    #[error("the password is empty")]
    EmptyPassword,
}

/// Extensions are what phones put in their SIP URI user part: keep them to safe characters.
pub fn check_extension(ext: &str) -> Result<(), CredentialsError> {
    let ok = !ext.is_empty()
        && ext.len() <= MAX_EXT
        && ext
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(CredentialsError::BadExtension {
            ext: ext.to_owned(),
        })
    }
}

/// The device row for phone `ext` with `password` in `realm`: MD5 and SHA-256 HA1 of
/// `ext:realm:password`.
pub fn device(
    ext: &str,
    realm: &str,
    password: &str,
    display_name: &str,
    created_at_ms: i64,
) -> Result<Device, CredentialsError> {
    check_extension(ext)?;
    if password.is_empty() {
        return Err(CredentialsError::EmptyPassword);
    }
    Ok(Device {
        extension: ext.to_owned(),
        ha1_md5: ha1(Algorithm::Md5, ext, realm, password),
        ha1_sha256: ha1(Algorithm::Sha256, ext, realm, password),
        realm: realm.to_owned(),
        display_name: display_name.to_owned(),
        created_at_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions() {
        for (ext, ok) in [
            ("1001", true),
            ("+4930123", true),
            ("desk.a_1-2", true),
            ("", false),
            ("10 01", false),
            ("1001@x", false),
            ("\"1\"", false),
            (&"9".repeat(33), false),
        ] {
            assert_eq!(check_extension(ext).is_ok(), ok, "{ext:?}");
        }
    }

    #[test]
    fn device_holds_both_digests_of_ext_realm_password() {
        let d = device("1001", "callfleet", "secret", "Desk", 7).expect("device");
        assert_eq!(
            d.ha1_md5,
            ha1(Algorithm::Md5, "1001", "callfleet", "secret")
        );
        assert_eq!(
            d.ha1_sha256,
            ha1(Algorithm::Sha256, "1001", "callfleet", "secret")
        );
        assert_eq!(d.ha1_md5.len(), 32);
        assert_eq!(d.ha1_sha256.len(), 64);
        assert_eq!(
            (d.realm.as_str(), d.display_name.as_str()),
            ("callfleet", "Desk")
        );
        assert_eq!(d.created_at_ms, 7);
        assert_eq!(
            device("1001", "callfleet", "", "", 0),
            Err(CredentialsError::EmptyPassword)
        );
        assert!(matches!(
            device("a b", "callfleet", "x", "", 0),
            Err(CredentialsError::BadExtension { .. })
        ));
    }
}

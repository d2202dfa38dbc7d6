//! `[provisioning]`: phones that configure themselves over HTTP(S) (`GET /provision/{file}`,
//! see `callfleet_web::provision`): where their device extensions come from and how many new
//! phones one source address may make per hour. Provisioning needs a token
//! (`callfleet provision token add`); without one no phone is made.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use callfleet_web::provision::rules::ExtensionRange;
use callfleet_web::provision::Policy;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisioningSection {
    /// `FIRST-LAST`: a new phone gets the lowest extension of this range that no device has.
    #[serde(default = "default_extensions")]
    pub extensions: String,
    /// New phones one source address may make per hour (at least 1).
    #[serde(default = "default_per_hour")]
    pub new_per_source_per_hour: u32,
}

fn default_extensions() -> String {
    "7000-7999".to_owned()
}

fn default_per_hour() -> u32 {
    20
}

impl Default for ProvisioningSection {
    fn default() -> Self {
        Self {
            extensions: default_extensions(),
            new_per_source_per_hour: default_per_hour(),
        }
    }
}

impl ProvisioningSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if ExtensionRange::parse(&self.extensions).is_none() {
            return Err(ConfigError::Invalid {
                key: "provisioning.extensions",
                problem: "must be FIRST-LAST, two numbers with FIRST <= LAST and fewer than \
                          100000 extensions, e.g. \"7000-7999\""
                    .to_owned(),
            });
        }
        if self.new_per_source_per_hour == 0 {
            return Err(ConfigError::Invalid {
                key: "provisioning.new_per_source_per_hour",
                problem: "must be at least 1".to_owned(),
            });
        }
        Ok(())
    }

    /// The web layer's policy (the default range if `extensions` does not parse, which
    /// `validate` refuses first).
    pub fn policy(&self) -> Policy {
        let default = Policy::default();
        Policy {
            extensions: ExtensionRange::parse(&self.extensions).unwrap_or(default.extensions),
            new_per_source_per_hour: self.new_per_source_per_hour,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_rates_are_checked() {
        let cases = [
            ("7000-7999", 20, true),
            ("100-100", 1, true),
            ("7999-7000", 20, false),
            ("7000", 20, false),
            ("7000-7999", 0, false),
        ];
        for (extensions, per_hour, ok) in cases {
            let s = ProvisioningSection {
                extensions: extensions.to_owned(),
                new_per_source_per_hour: per_hour,
            };
            assert_eq!(s.validate().is_ok(), ok, "{extensions} {per_hour}");
        }
        let p = ProvisioningSection::default().policy();
        assert_eq!((p.extensions.first, p.extensions.last), (7000, 7999));
        assert_eq!(p.new_per_source_per_hour, 20);
    }
}

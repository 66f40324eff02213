//! [`IdleSpec`]: the shards' idle strategy as configured, `auto` or a named one.

use std::fmt;
use std::str::FromStr;

use dataplane::runtime::idle::IdleStrategy;

use super::ConfigError;

/// What a shard does when its loop finds no work.
///
/// Written `auto`, `spin`, `spin-yield` or `backoff`; named strategies get their default
/// parameters (see [`IdleStrategy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum IdleSpec {
    /// Per shard, [`dataplane::runtime::default_idle`]: spin only on a core shared with
    /// nothing, otherwise back off.
    #[default]
    Auto,
    /// This strategy on every shard.
    Fixed(IdleStrategy),
}

impl FromStr for IdleSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Self::Auto);
        }
        s.parse()
            .map(Self::Fixed)
            .map_err(|_| ConfigError::UnknownIdle {
                given: s.to_owned(),
            })
    }
}

impl TryFrom<String> for IdleSpec {
    type Error = ConfigError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<IdleSpec> for String {
    fn from(idle: IdleSpec) -> String {
        idle.to_string()
    }
}

impl fmt::Display for IdleSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auto => f.write_str("auto"),
            Self::Fixed(strategy) => f.write_str(strategy.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for (name, idle) in [
            ("auto", IdleSpec::Auto),
            ("spin", IdleSpec::Fixed(IdleStrategy::Spin)),
            (
                "spin-yield",
                IdleSpec::Fixed(IdleStrategy::DEFAULT_SPIN_THEN_YIELD),
            ),
            ("backoff", IdleSpec::Fixed(IdleStrategy::DEFAULT_BACKOFF)),
        ] {
            assert_eq!(name.parse::<IdleSpec>().unwrap(), idle);
            assert_eq!(idle.to_string(), name);
        }
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        assert_eq!(
            "sleep".parse::<IdleSpec>().unwrap_err().to_string(),
            r#"unknown idle strategy "sleep": use one of auto, spin, spin-yield, backoff"#
        );
        assert!("Auto".parse::<IdleSpec>().is_err());
    }
}

//! [`FeedSpec`]: which feed the shards read, as written in the config (`sim`, `file:PATH`,
//! `udp:ADDR`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use super::ConfigError;

/// Where the shards' ITCH messages come from. Every shard reads the whole feed through a
/// source of its own (see `dataplane::runtime`).
///
/// Written as `sim`, `file:PATH` or `udp:ADDR`; [`Display`](fmt::Display) prints the same form
/// (a path that is not UTF-8 lossily, and serializing it fails).
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum FeedSpec {
    /// The built-in simulator (`[simulator]`), so the service runs with no input.
    #[default]
    Simulator,
    /// A NASDAQ BinaryFILE (`[file]` says how fast it is read).
    File(PathBuf),
    /// MoldUDP64 on a UDP address: an IPv4 multicast group, or a local unicast address.
    Udp(SocketAddr),
}

impl FromStr for FeedSpec {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "sim" {
            return Ok(Self::Simulator);
        }
        if let Some(path) = s.strip_prefix("file:") {
            if path.is_empty() {
                return Err(ConfigError::EmptyFeedPath);
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(addr) = s.strip_prefix("udp:") {
            return addr
                .parse()
                .map(Self::Udp)
                .map_err(|e: std::net::AddrParseError| ConfigError::BadFeedAddress {
                    given: s.to_owned(),
                    reason: e.to_string(),
                });
        }
        Err(ConfigError::UnknownFeed {
            given: s.to_owned(),
        })
    }
}

impl TryFrom<String> for FeedSpec {
    type Error = ConfigError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl serde::Serialize for FeedSpec {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Self::File(path) = self
            && path.to_str().is_none()
        {
            return Err(serde::ser::Error::custom(format!(
                "feed file {} is not UTF-8",
                path.display()
            )));
        }
        serializer.collect_str(self)
    }
}

impl fmt::Display for FeedSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Simulator => f.write_str("sim"),
            Self::File(path) => write!(f, "file:{}", path.display()),
            Self::Udp(addr) => write!(f, "udp:{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_and_print_back() {
        for (text, feed) in [
            ("sim", FeedSpec::Simulator),
            (
                "file:/data/day.itch",
                FeedSpec::File("/data/day.itch".into()),
            ),
            ("file:rel/a:b", FeedSpec::File("rel/a:b".into())),
            (
                "udp:239.1.1.1:26400",
                FeedSpec::Udp("239.1.1.1:26400".parse().unwrap()),
            ),
            (
                "udp:[::1]:9000",
                FeedSpec::Udp("[::1]:9000".parse().unwrap()),
            ),
        ] {
            assert_eq!(text.parse::<FeedSpec>().unwrap(), feed, "{text}");
            assert_eq!(feed.to_string(), text);
        }
    }

    #[test]
    fn unknown_kinds_list_the_three_forms() {
        for bad in ["", "simulator", "SIM", "tcp:1.2.3.4:5", "/data/day.itch"] {
            let msg = bad.parse::<FeedSpec>().unwrap_err().to_string();
            assert_eq!(
                msg,
                format!(
                    "unknown feed {bad:?}: use sim, file:PATH or udp:ADDR (e.g. \
                     udp:239.1.1.1:26400)"
                )
            );
        }
    }

    #[test]
    fn bad_file_and_udp_feeds_say_how_to_write_them() {
        assert_eq!(
            "file:".parse::<FeedSpec>().unwrap_err().to_string(),
            "feed \"file:\" names no file; write file:PATH"
        );
        let msg = "udp:localhost:26400"
            .parse::<FeedSpec>()
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("feed \"udp:localhost:26400\": "), "{msg}");
        assert!(
            msg.ends_with("write udp:IP:PORT, e.g. udp:239.1.1.1:26400"),
            "{msg}"
        );
        assert!(matches!(
            "udp:239.1.1.1".parse::<FeedSpec>(),
            Err(ConfigError::BadFeedAddress { .. })
        ));
    }
}

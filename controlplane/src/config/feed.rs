//! [`FeedSpec`]: which feed the shards read, as written in the config (`sim`, `file:PATH`,
//! `dbn:PATH[,PATH…]`, `udp:ADDR[@SOURCE]`, and two lines `udp:A[@SOURCE],udp:B[@SOURCE]`).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use dataplane::source::udp::SenderFilter;

use super::ConfigError;

/// Where the shards' ITCH messages come from. Every shard reads the whole feed through a
/// source of its own (see `dataplane::runtime`).
///
/// Written as `sim`, `file:PATH`, `dbn:PATH[,PATH…]` or `udp:ADDR[@SOURCE]` (`SOURCE` an `IP`
/// or `IP:PORT`), or two such lines, `udp:A[@SOURCE],udp:B[@SOURCE]`, arbitrated;
/// [`Display`](fmt::Display) prints the same form (a path that is not UTF-8 lossily, and
/// serializing it fails).
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum FeedSpec {
    /// The built-in simulator (`[simulator]`), so the service runs with no input.
    #[default]
    Simulator,
    /// A NASDAQ BinaryFILE (`[file]` says how fast it is read).
    File(PathBuf),
    /// Databento DBN market-by-order files (`.dbn` or `.dbn.zst`), played in order as one
    /// session (`[file]` says how fast).
    Dbn(Vec<PathBuf>),
    /// MoldUDP64 on one UDP line, or on two identical lines (A and B) arbitrated: each
    /// sequence number is taken from whichever line has it first.
    Udp(Vec<UdpLine>),
}

/// One MoldUDP64 line: an IPv4 multicast group, or a local unicast address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UdpLine {
    /// The group or local address to bind.
    pub addr: SocketAddr,
    /// The only sender read from (`None`: any); datagrams from others are rejected.
    pub source: Option<SenderFilter>,
}

impl FeedSpec {
    /// A feed of one UDP line.
    pub fn udp(addr: SocketAddr, source: Option<SenderFilter>) -> FeedSpec {
        FeedSpec::Udp(vec![UdpLine { addr, source }])
    }
}

/// Parses one `udp:ADDR[@SOURCE]` line (`line` without the prefix); `given` is the whole feed
/// for the error.
fn parse_line(line: &str, given: &str) -> Result<UdpLine, ConfigError> {
    let bad = |reason: String| ConfigError::BadFeedAddress {
        given: given.to_owned(),
        reason,
    };
    let (addr, source) = match line.split_once('@') {
        Some((addr, source)) => (addr, Some(source)),
        None => (line, None),
    };
    let addr = addr
        .parse()
        .map_err(|e| bad(format!("address {addr:?}: {e}")))?;
    let source = source
        .map(|source| {
            source
                .parse()
                .map_err(|e| bad(format!("source {source:?}: {e}")))
        })
        .transpose()?;
    Ok(UdpLine { addr, source })
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
        if let Some(paths) = s.strip_prefix("dbn:") {
            let paths: Vec<PathBuf> = paths.split(',').map(PathBuf::from).collect();
            if paths.iter().any(|p| p.as_os_str().is_empty()) {
                return Err(ConfigError::EmptyDbnPath {
                    given: s.to_owned(),
                });
            }
            return Ok(Self::Dbn(paths));
        }
        if let Some(rest) = s.strip_prefix("udp:") {
            let lines = match rest.split_once(",udp:") {
                Some((a, b)) => vec![parse_line(a, s)?, parse_line(b, s)?],
                None => vec![parse_line(rest, s)?],
            };
            if let [a, b] = lines.as_slice()
                && a.addr == b.addr
            {
                return Err(ConfigError::BadFeedAddress {
                    given: s.to_owned(),
                    reason: "lines A and B are the same address".to_owned(),
                });
            }
            return Ok(Self::Udp(lines));
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
        let paths = match self {
            Self::File(path) => std::slice::from_ref(path),
            Self::Dbn(paths) => paths.as_slice(),
            _ => &[],
        };
        if let Some(path) = paths.iter().find(|p| p.to_str().is_none()) {
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
            Self::Dbn(paths) => {
                f.write_str("dbn:")?;
                for (i, path) in paths.iter().enumerate() {
                    let comma = if i > 0 { "," } else { "" };
                    write!(f, "{comma}{}", path.display())?;
                }
                Ok(())
            }
            Self::Udp(lines) => {
                for (i, line) in lines.iter().enumerate() {
                    let comma = if i > 0 { "," } else { "" };
                    write!(f, "{comma}udp:{}", line.addr)?;
                    if let Some(source) = line.source {
                        write!(f, "@{source}")?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn udp(addr: &str, source: Option<SenderFilter>) -> FeedSpec {
        FeedSpec::udp(addr.parse().unwrap(), source)
    }

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
                "dbn:/d/a.dbn.zst",
                FeedSpec::Dbn(vec!["/d/a.dbn.zst".into()]),
            ),
            (
                "dbn:a.dbn,b.dbn.zst",
                FeedSpec::Dbn(vec!["a.dbn".into(), "b.dbn.zst".into()]),
            ),
            ("udp:239.1.1.1:26400", udp("239.1.1.1:26400", None)),
            ("udp:[::1]:9000", udp("[::1]:9000", None)),
            (
                "udp:239.1.1.1:26400@10.0.0.5",
                udp(
                    "239.1.1.1:26400",
                    Some(SenderFilter::Ip("10.0.0.5".parse().unwrap())),
                ),
            ),
            (
                "udp:127.0.0.1:9000@127.0.0.1:4000",
                udp(
                    "127.0.0.1:9000",
                    Some(SenderFilter::Addr("127.0.0.1:4000".parse().unwrap())),
                ),
            ),
            (
                "udp:[::1]:9000@[::1]:4000",
                udp(
                    "[::1]:9000",
                    Some(SenderFilter::Addr("[::1]:4000".parse().unwrap())),
                ),
            ),
            (
                "udp:239.1.1.1:26400,udp:239.1.1.2:26400@10.0.0.6",
                FeedSpec::Udp(vec![
                    UdpLine {
                        addr: "239.1.1.1:26400".parse().unwrap(),
                        source: None,
                    },
                    UdpLine {
                        addr: "239.1.1.2:26400".parse().unwrap(),
                        source: Some(SenderFilter::Ip("10.0.0.6".parse().unwrap())),
                    },
                ]),
            ),
        ] {
            assert_eq!(text.parse::<FeedSpec>().unwrap(), feed, "{text}");
            assert_eq!(feed.to_string(), text);
        }
    }

    #[test]
    fn two_lines_must_differ_and_three_are_refused() {
        let msg = "udp:127.0.0.1:9000,udp:127.0.0.1:9000"
            .parse::<FeedSpec>()
            .unwrap_err()
            .to_string();
        assert!(msg.contains("lines A and B are the same address"), "{msg}");
        assert!(
            "udp:127.0.0.1:9000,udp:127.0.0.1:9001,udp:127.0.0.1:9002"
                .parse::<FeedSpec>()
                .is_err()
        );
    }

    #[test]
    fn unknown_kinds_list_the_four_forms() {
        for bad in ["", "simulator", "SIM", "tcp:1.2.3.4:5", "/data/day.itch"] {
            let msg = bad.parse::<FeedSpec>().unwrap_err().to_string();
            assert_eq!(
                msg,
                format!(
                    "unknown feed {bad:?}: use sim, file:PATH (ITCH), dbn:PATH[,PATH…] \
                     (Databento MBO) or udp:ADDR[@SOURCE] (e.g. udp:239.1.1.1:26400@10.0.0.5)"
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
            msg.ends_with(
                "write udp:IP:PORT or udp:IP:PORT@SOURCE_IP[:PORT], e.g. \
                 udp:239.1.1.1:26400@10.0.0.5 (two lines: udp:A,udp:B, two different addresses)"
            ),
            "{msg}"
        );
        for bad in [
            "udp:239.1.1.1:26400@",
            "udp:239.1.1.1:26400@feed.example",
            "udp:239.1.1.1:26400@10.0.0.5:x",
            "udp:@10.0.0.5",
        ] {
            let msg = bad.parse::<FeedSpec>().unwrap_err().to_string();
            assert!(msg.starts_with(&format!("feed {bad:?}: ")), "{msg}");
            assert!(msg.contains("@SOURCE_IP[:PORT]"), "{msg}");
        }
        assert!(
            "udp:239.1.1.1:26400@feed.example"
                .parse::<FeedSpec>()
                .unwrap_err()
                .to_string()
                .contains("source \"feed.example\""),
        );
        assert!(matches!(
            "udp:239.1.1.1".parse::<FeedSpec>(),
            Err(ConfigError::BadFeedAddress { .. })
        ));
    }
}

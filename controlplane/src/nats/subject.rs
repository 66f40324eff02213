//! The subject scheme on NATS, declared once: every subject and key-value key the publisher
//! writes and a gateway reads is built here.
//!
//! ```text
//! pinbook.v2.<partition>.<stream>.<SYMBOL>   one symbol's updates of one stream
//! pinbook.v2.<partition>.heartbeat           the publishing instance's heartbeat
//! pinbook.v2.<partition>.resync              readers ask for a subject again ("levels AAPL")
//! bucket pinbook_<partition>, key levels.<SYMBOL>   the symbol's latest full-depth snapshot
//!                             key status.<SYMBOL>   its latest status
//! ```
//!
//! `<stream>` is `levels`, `orders`, `trades` or `status` (the four `pb::Stream`s). A symbol or
//! partition is written as a NATS token: letters, digits, `-` and `_` as they are, every other
//! byte (`.` `*` `>` and spaces are not allowed in a token) as `=` and two upper-case hex digits,
//! so `BRK.A` is `BRK=2EA`. The same token is a valid key-value key. A partition's name is
//! checked instead ([`super::valid_partition`]): it names a bucket too, where `=` is not allowed.

use crate::hub::Stream;

/// The version prefix of every subject: the messages are `pinbook.v2` protobuf.
pub const PREFIX: &str = "pinbook.v2";

/// Every stream a partition publishes, in the order of their subjects' names.
pub const STREAMS: [Stream; 4] = [
    Stream::Levels,
    Stream::Orders,
    Stream::Trades,
    Stream::Status,
];

/// The stream's token in a subject.
pub const fn stream_token(stream: Stream) -> &'static str {
    match stream {
        Stream::Levels => "levels",
        Stream::Orders => "orders",
        Stream::Trades => "trades",
        Stream::Status => "status",
    }
}

/// The stream a subject token names.
pub fn stream_of(token: &str) -> Option<Stream> {
    STREAMS.into_iter().find(|s| stream_token(*s) == token)
}

/// `name` as one NATS token (see the module docs).
pub fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

/// The name a token stands for; `None` if it is not one [`token`] writes.
pub fn untoken(token: &str) -> Option<String> {
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The subjects and keys of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    partition: String,
    /// `pinbook.v2.<partition>`.
    root: String,
}

impl Subjects {
    /// The subjects of `partition`.
    pub fn new(partition: &str) -> Self {
        Self {
            partition: partition.to_owned(),
            root: format!("{PREFIX}.{partition}"),
        }
    }

    /// The partition's name.
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// Where `symbol`'s updates of `stream` go.
    pub fn updates(&self, stream: Stream, symbol: &str) -> String {
        format!("{}.{}.{}", self.root, stream_token(stream), token(symbol))
    }

    /// Every update subject of the partition (a wildcard).
    pub fn all_updates(&self) -> String {
        format!("{}.*.*", self.root)
    }

    /// The stream and symbol of an update subject of this partition.
    pub fn parse_updates(&self, subject: &str) -> Option<(Stream, String)> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix('.')?;
        let (stream, symbol) = rest.split_once('.')?;
        Some((stream_of(stream)?, untoken(symbol)?))
    }

    /// Where the publishing instance beats.
    pub fn heartbeat(&self) -> String {
        format!("{}.heartbeat", self.root)
    }

    /// Where readers ask the publisher to send a subject again from a snapshot: the payload
    /// is `<stream> <SYMBOL>` (the symbol as named, not as a token).
    pub fn resync_requests(&self) -> String {
        format!("{}.resync", self.root)
    }

    /// The key-value bucket of the partition's snapshots.
    pub fn bucket(&self) -> String {
        format!("pinbook_{}", self.partition)
    }

    /// The key of `symbol`'s latest `stream` snapshot in [`Subjects::bucket`] (levels and
    /// status are kept).
    pub fn snapshot_key(stream: Stream, symbol: &str) -> String {
        format!("{}.{}", stream_token(stream), token(symbol))
    }

    /// The stream and symbol of a snapshot key.
    pub fn parse_snapshot_key(key: &str) -> Option<(Stream, String)> {
        let (stream, symbol) = key.split_once('.')?;
        Some((stream_of(stream)?, untoken(symbol)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_tokens() {
        for name in ["AAPL", "BRK.A", "A B", "*>", "ZVZZT", "x=y", ""] {
            let t = token(name);
            assert!(!t.contains(['.', '*', '>', ' ']), "{t}");
            assert_eq!(untoken(&t).as_deref(), Some(name));
        }
        assert_eq!(token("BRK.A"), "BRK=2EA");
        assert_eq!(untoken("BAD=Z1"), None);
        assert_eq!(untoken("BAD="), None);
    }

    #[test]
    fn subjects_parse_back() {
        let s = Subjects::new("east-1");
        let subject = s.updates(Stream::Orders, "BRK.A");
        assert_eq!(subject, "pinbook.v2.east-1.orders.BRK=2EA");
        assert_eq!(
            s.parse_updates(&subject),
            Some((Stream::Orders, "BRK.A".to_owned()))
        );
        assert_eq!(s.parse_updates("pinbook.v2.other.orders.X"), None);
        assert_eq!(s.parse_updates("pinbook.v2.east-1.nope.X"), None);
        assert_eq!(s.heartbeat(), "pinbook.v2.east-1.heartbeat");
        assert_eq!(s.bucket(), "pinbook_east-1");
        assert_eq!(
            Subjects::parse_snapshot_key(&Subjects::snapshot_key(Stream::Status, "BRK.A")),
            Some((Stream::Status, "BRK.A".to_owned()))
        );
    }
}

//! Limits on what clients can claim: subscribers in total, per client and per HTTP/2
//! connection, symbols per subscription, request size, call rate, how long a call may
//! take to deliver its request, and how long a vanished peer keeps its connection.
//!
//! Every limit is one [`Limit`]: its name is the `[limits]` key, the `limit` label of
//! `pinbook_limit_hits_total` and the word in the RESOURCE_EXHAUSTED status a client gets when
//! it hits it (`limit max_subscribers_per_client = 1000 reached …`). A refusal touches nothing
//! else: the client's other calls, and every other client, go on.
//!
//! **Who is a client.** The certificate's subject under mutual TLS; else the bearer token sent
//! (kept only as a 64-bit hash, shown as `token #hhhh`); else the peer's IP address. One shared
//! book token makes its holders one client — give each client its own token (or certificate)
//! to limit them one by one.
//!
//! **What changes live** ([`Admission::set`]): every limit but `max_message_bytes` and
//! `idle_timeout_ms`, which the HTTP/2 server is built with.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

mod layer;

pub use layer::{Limits, LimitsLayer};
use subtle::ConstantTimeEq;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use crate::config::Secret;

/// One limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limit {
    /// Open subscriptions, all clients together.
    Subscribers,
    /// Open subscriptions of one client.
    SubscribersPerClient,
    /// Open subscriptions on one HTTP/2 connection.
    StreamsPerConnection,
    /// Symbols one subscription names.
    SymbolsPerSubscription,
    /// Bytes of one request message.
    MessageBytes,
    /// Calls (unary, or streams opened) per second of one client.
    CallRate,
    /// Time for a call's request to arrive and (unary) be answered or (streams) open.
    RequestDeadline,
}

impl Limit {
    /// Every limit, in the order of `[limits]`.
    pub const ALL: [Limit; 7] = [
        Limit::Subscribers,
        Limit::SubscribersPerClient,
        Limit::StreamsPerConnection,
        Limit::SymbolsPerSubscription,
        Limit::MessageBytes,
        Limit::CallRate,
        Limit::RequestDeadline,
    ];

    /// The `[limits]` key, metric label and status word.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Subscribers => "max_subscribers",
            Limit::SubscribersPerClient => "max_subscribers_per_client",
            Limit::StreamsPerConnection => "max_streams_per_connection",
            Limit::SymbolsPerSubscription => "max_symbols_per_subscription",
            Limit::MessageBytes => "max_message_bytes",
            Limit::CallRate => "calls_per_second",
            Limit::RequestDeadline => "request_deadline_ms",
        }
    }

    /// Counts a hit and returns the RESOURCE_EXHAUSTED status saying which limit, its value,
    /// and `what` happened.
    pub fn hit(self, value: u64, what: &str) -> Status {
        metrics::counter!("pinbook_limit_hits_total", "limit" => self.name()).increment(1);
        Status::resource_exhausted(format!("limit {} = {value} reached: {what}", self.name()))
    }
}

/// `[limits]`: see the module docs. Every value is above 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open subscriptions, all clients together.
    pub max_subscribers: u32,
    /// Open subscriptions of one client (certificate, token or peer IP).
    pub max_subscribers_per_client: u32,
    /// Open subscriptions on one HTTP/2 connection.
    pub max_streams_per_connection: u32,
    /// Symbols one subscription may name.
    pub max_symbols_per_subscription: u32,
    /// Largest request message, bytes (not live: the services are built with it).
    pub max_message_bytes: u32,
    /// Calls per second of one client — unary calls (GetBook, GetOrder, admin calls) and
    /// subscriptions opened; bursts of as many are allowed.
    pub calls_per_second: u32,
    /// How long a call has to deliver its request and be answered (unary) or have its stream
    /// opened (Subscribe): a client that opens streams and sends nothing holds none past it.
    pub request_deadline_ms: u64,
    /// How long a peer that stopped answering keeps its connection: HTTP/2 pings go out every
    /// half of it and must be answered within the other half (not live).
    pub idle_timeout_ms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_subscribers: 10_000,
            max_subscribers_per_client: 1_000,
            max_streams_per_connection: 1_000,
            max_symbols_per_subscription: 1_000,
            max_message_bytes: 64 << 10,
            calls_per_second: 200,
            request_deadline_ms: 10_000,
            idle_timeout_ms: 40_000,
        }
    }
}

impl LimitsConfig {
    /// The shortest `request_deadline_ms` accepted: below, a loaded server would refuse its
    /// own admin's calls (the one that could set it back included).
    pub const MIN_REQUEST_DEADLINE_MS: u64 = 100;

    /// The first value that is 0 (or, for `request_deadline_ms`, under
    /// [`Self::MIN_REQUEST_DEADLINE_MS`]), as its key.
    pub fn first_zero(&self) -> Option<&'static str> {
        if self.request_deadline_ms < Self::MIN_REQUEST_DEADLINE_MS {
            return Some(Limit::RequestDeadline.name());
        }
        let values = [
            (u64::from(self.max_subscribers), Limit::Subscribers.name()),
            (
                u64::from(self.max_subscribers_per_client),
                Limit::SubscribersPerClient.name(),
            ),
            (
                u64::from(self.max_streams_per_connection),
                Limit::StreamsPerConnection.name(),
            ),
            (
                u64::from(self.max_symbols_per_subscription),
                Limit::SymbolsPerSubscription.name(),
            ),
            (
                u64::from(self.max_message_bytes),
                Limit::MessageBytes.name(),
            ),
            (u64::from(self.calls_per_second), Limit::CallRate.name()),
            (self.request_deadline_ms, Limit::RequestDeadline.name()),
            (self.idle_timeout_ms, "idle_timeout_ms"),
        ];
        values.iter().find(|(v, _)| *v == 0).map(|(_, k)| *k)
    }

    /// The request deadline.
    pub fn request_deadline(&self) -> Duration {
        Duration::from_millis(self.request_deadline_ms)
    }

    /// The HTTP/2 keepalive interval and timeout, each half the idle timeout.
    pub fn keepalive(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.div_ceil(2))
    }
}

/// Who a call comes from, for the per-client limits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Client {
    /// The subject of the client's certificate (mutual TLS).
    Certificate(String),
    /// A hash of the bearer token sent.
    Token(u64),
    /// The peer's IP address.
    Peer(IpAddr),
    /// Nothing known (a connection without an address: tests over in-memory streams).
    Unknown,
}

impl std::fmt::Display for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Client::Certificate(subject) => write!(f, "certificate {subject}"),
            Client::Token(hash) => write!(f, "token #{:04x}", hash & 0xffff),
            Client::Peer(ip) => write!(f, "peer {ip}"),
            Client::Unknown => f.write_str("an unknown peer"),
        }
    }
}

/// Who called and over which connection: put into a request's extensions by [`caller`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The client.
    pub client: Client,
    /// The connection's remote address, when known.
    pub connection: Option<SocketAddr>,
}

/// The tokens that name clients: those the server checks (admin, book, entitlements). A token
/// a call sends names its client only when it is one of them, so a client cannot look like
/// many by sending a new made-up token with each call.
#[derive(Clone)]
pub struct Tokens {
    known: Arc<Vec<Secret>>,
    /// Random per process: a token's hash says nothing outside it.
    hasher: ahash::RandomState,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} known)", self.known.len())
    }
}

impl Tokens {
    /// These tokens.
    pub fn new(known: Vec<Secret>) -> Self {
        Self {
            known: Arc::new(known),
            hasher: ahash::RandomState::new(),
        }
    }

    /// No token names a client.
    pub fn none() -> Self {
        Self::new(Vec::new())
    }

    /// The hash of `given` if it is a known token; compared with every one in constant time.
    fn identify(&self, given: &str) -> Option<u64> {
        let mut known = false;
        for token in self.known.iter() {
            known |= bool::from(given.as_bytes().ct_eq(token.expose().as_bytes()));
        }
        known.then(|| self.hasher.hash_one(given))
    }
}

/// The peer's address as one client: IPv4 (mapped or not) as itself, IPv6 by its /64, the
/// block one host is usually given.
fn peer(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

/// The caller of a request, from its headers and tonic's connection info: its certificate's
/// subject, else a known token it sent, else its address.
pub fn caller(headers: &http::HeaderMap, extensions: &http::Extensions, tokens: &Tokens) -> Caller {
    let tcp = extensions.get::<TcpConnectInfo>().cloned().or_else(|| {
        extensions
            .get::<TlsConnectInfo<TcpConnectInfo>>()
            .map(|tls| tls.get_ref().clone())
    });
    let connection = tcp.as_ref().and_then(TcpConnectInfo::remote_addr);
    let subject = certificate_subject(extensions);
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|t| tokens.identify(t));
    let client = match (subject, token, connection) {
        (Some(subject), _, _) => Client::Certificate(subject),
        (None, Some(hash), _) => Client::Token(hash),
        (None, None, Some(addr)) => Client::Peer(peer(addr.ip())),
        (None, None, None) => Client::Unknown,
    };
    Caller { client, connection }
}

/// The subject of the client's certificate (`CN=desk-1`), under mutual TLS.
pub fn certificate_subject(extensions: &http::Extensions) -> Option<String> {
    let certs = extensions
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)?;
    let leaf = certs.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    Some(cert.subject().to_string())
}

/// Clients whose rate bucket is remembered at most; beyond, full buckets are forgotten.
const MAX_BUCKETS: usize = 4096;

/// The live limits and what is open against them.
#[derive(Debug)]
pub struct Admission {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    limits: LimitsConfig,
    total: u32,
    per_client: HashMap<Client, u32>,
    per_connection: HashMap<SocketAddr, u32>,
    buckets: HashMap<Client, Bucket>,
}

/// A token bucket: `tokens` left at `at`, refilled at the rate, capped at one second's worth.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: LimitsConfig) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                limits,
                total: 0,
                per_client: HashMap::new(),
                per_connection: HashMap::new(),
                buckets: HashMap::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // the counts stay consistent under every step that can panic (none does): take them
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The limits in force.
    pub fn limits(&self) -> LimitsConfig {
        self.state().limits
    }

    /// Changes the limits from now on; what is open stays open.
    pub fn set(&self, limits: LimitsConfig) {
        self.state().limits = limits;
    }

    /// Open subscriptions.
    pub fn subscribers(&self) -> u32 {
        self.state().total
    }

    /// Admits a subscription of `symbols` symbols from `caller`, or says which limit it hits.
    /// The slot is given back when the returned [`Slot`] is dropped.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED naming the limit.
    pub fn subscribe(self: &Arc<Self>, caller: &Caller, symbols: usize) -> Result<Slot, Status> {
        let mut s = self.state();
        let l = s.limits;
        if symbols > l.max_symbols_per_subscription as usize {
            return Err(Limit::SymbolsPerSubscription.hit(
                l.max_symbols_per_subscription.into(),
                &format!("{symbols} symbols named; subscribe to them in several streams"),
            ));
        }
        if s.total >= l.max_subscribers {
            return Err(
                Limit::Subscribers.hit(l.max_subscribers.into(), "the server is full; retry later")
            );
        }
        let client_open = s.per_client.get(&caller.client).copied().unwrap_or(0);
        if client_open >= l.max_subscribers_per_client {
            return Err(Limit::SubscribersPerClient.hit(
                l.max_subscribers_per_client.into(),
                &format!(
                    "{} has as many streams open; close one first",
                    caller.client
                ),
            ));
        }
        if let Some(conn) = caller.connection {
            let open = s.per_connection.get(&conn).copied().unwrap_or(0);
            if open >= l.max_streams_per_connection {
                return Err(Limit::StreamsPerConnection.hit(
                    l.max_streams_per_connection.into(),
                    "this connection has as many streams open; open another connection",
                ));
            }
            *s.per_connection.entry(conn).or_insert(0) += 1;
        }
        *s.per_client.entry(caller.client.clone()).or_insert(0) += 1;
        s.total += 1;
        Ok(Slot {
            admission: Arc::clone(self),
            caller: caller.clone(),
        })
    }

    /// Takes one call (unary, or a stream opened) of `client` from its rate bucket.
    ///
    /// # Errors
    /// RESOURCE_EXHAUSTED naming `calls_per_second` and when to retry.
    pub fn call(&self, client: &Client, now: Instant) -> Result<(), Status> {
        let mut s = self.state();
        let rate = f64::from(s.limits.calls_per_second);
        let mut key = client;
        if s.buckets.len() >= MAX_BUCKETS && !s.buckets.contains_key(client) {
            // forget the clients whose bucket has refilled: they are as if new
            s.buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < rate
            });
            if s.buckets.len() >= MAX_BUCKETS {
                // a flood of new clients within a second shares one bucket
                key = &Client::Unknown;
            }
        }
        let bucket = s.buckets.entry(key.clone()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * rate;
        bucket.tokens = (bucket.tokens + refilled).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait_ms = ((1.0 - bucket.tokens) / rate * 1000.0).ceil();
        Err(Limit::CallRate.hit(
            s.limits.calls_per_second.into(),
            &format!("{client} calls too often; retry in {wait_ms} ms"),
        ))
    }

    fn release(&self, caller: &Caller) {
        let mut s = self.state();
        s.total = s.total.saturating_sub(1);
        decrement(&mut s.per_client, &caller.client);
        if let Some(conn) = caller.connection {
            decrement(&mut s.per_connection, &conn);
        }
    }
}

fn decrement<K: Hash + Eq>(map: &mut HashMap<K, u32>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// An admitted subscription's place; given back on drop.
#[derive(Debug)]
pub struct Slot {
    admission: Arc<Admission>,
    caller: Caller,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.admission.release(&self.caller);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(ip: [u8; 4], port: u16) -> Caller {
        let addr = SocketAddr::from((ip, port));
        Caller {
            client: Client::Peer(addr.ip()),
            connection: Some(addr),
        }
    }

    fn code_and_message(r: Result<Slot, Status>) -> String {
        let status = r.unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        status.message().to_owned()
    }

    #[test]
    fn each_subscriber_limit_refuses_with_its_name_and_slots_come_back() {
        let admission = Admission::new(LimitsConfig {
            max_subscribers: 4,
            max_subscribers_per_client: 3,
            max_streams_per_connection: 2,
            max_symbols_per_subscription: 5,
            ..LimitsConfig::default()
        });
        let msg = code_and_message(admission.subscribe(&caller([10, 0, 0, 1], 1), 6));
        assert!(
            msg.starts_with("limit max_symbols_per_subscription = 5 reached"),
            "{msg}"
        );
        let a1 = admission.subscribe(&caller([10, 0, 0, 1], 1), 5).unwrap();
        let _a2 = admission.subscribe(&caller([10, 0, 0, 1], 1), 1).unwrap();
        let msg = code_and_message(admission.subscribe(&caller([10, 0, 0, 1], 1), 1));
        assert!(
            msg.starts_with("limit max_streams_per_connection = 2"),
            "{msg}"
        );
        // another connection of the same client
        let _a3 = admission.subscribe(&caller([10, 0, 0, 1], 2), 1).unwrap();
        let msg = code_and_message(admission.subscribe(&caller([10, 0, 0, 1], 3), 1));
        assert!(
            msg.starts_with("limit max_subscribers_per_client = 3")
                && msg.contains("peer 10.0.0.1"),
            "{msg}"
        );
        let _b1 = admission.subscribe(&caller([10, 0, 0, 2], 1), 1).unwrap();
        let msg = code_and_message(admission.subscribe(&caller([10, 0, 0, 3], 1), 1));
        assert!(msg.starts_with("limit max_subscribers = 4"), "{msg}");
        assert_eq!(admission.subscribers(), 4);
        drop(a1);
        assert_eq!(admission.subscribers(), 3);
        // the freed place serves anyone, and the client's own count came down too
        admission.subscribe(&caller([10, 0, 0, 1], 3), 1).unwrap();
    }

    #[test]
    fn limits_change_live_and_what_is_open_stays_open() {
        let admission = Admission::new(LimitsConfig::default());
        let open: Vec<Slot> = (0..3)
            .map(|port| {
                admission
                    .subscribe(&caller([10, 0, 0, 1], port), 1)
                    .unwrap()
            })
            .collect();
        admission.set(LimitsConfig {
            max_subscribers: 2,
            ..LimitsConfig::default()
        });
        assert_eq!(admission.subscribers(), 3);
        let msg = code_and_message(admission.subscribe(&caller([10, 0, 0, 9], 1), 1));
        assert!(msg.starts_with("limit max_subscribers = 2"), "{msg}");
        drop(open);
        assert_eq!(admission.subscribers(), 0);
        admission.subscribe(&caller([10, 0, 0, 9], 1), 1).unwrap();
    }

    #[test]
    fn the_call_rate_is_per_client_with_a_burst_of_one_second() {
        let admission = Admission::new(LimitsConfig {
            calls_per_second: 10,
            ..LimitsConfig::default()
        });
        let (a, b) = (Client::Token(1), Client::Token(2));
        let t0 = Instant::now();
        for _ in 0..10 {
            admission.call(&a, t0).unwrap();
        }
        let status = admission.call(&a, t0).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(
            status
                .message()
                .starts_with("limit calls_per_second = 10 reached: token #0001")
                && status.message().contains("retry in 100 ms"),
            "{}",
            status.message()
        );
        // another client is not affected, and the first refills at the rate
        admission.call(&b, t0).unwrap();
        admission.call(&a, t0 + Duration::from_millis(100)).unwrap();
        assert!(admission.call(&a, t0 + Duration::from_millis(100)).is_err());
    }

    #[test]
    fn remembered_buckets_stay_bounded() {
        let admission = Admission::new(LimitsConfig {
            calls_per_second: 1,
            ..LimitsConfig::default()
        });
        let t0 = Instant::now();
        for i in 0..(MAX_BUCKETS as u64 * 3) {
            let now = t0 + Duration::from_secs(i / MAX_BUCKETS as u64 * 2);
            admission.call(&Client::Token(i), now).unwrap();
        }
        assert!(admission.state().buckets.len() <= MAX_BUCKETS + 1);
    }

    #[test]
    fn zero_values_are_named() {
        assert_eq!(LimitsConfig::default().first_zero(), None);
        let c = LimitsConfig {
            calls_per_second: 0,
            ..LimitsConfig::default()
        };
        assert_eq!(c.first_zero(), Some("calls_per_second"));
    }

    #[test]
    fn callers_are_told_apart_by_known_tokens_then_address() {
        let tokens = Tokens::new(vec![Secret::new("abc"), Secret::new("def")]);
        let mut headers = http::HeaderMap::new();
        let mut ext = http::Extensions::new();
        assert_eq!(
            super::caller(&headers, &ext, &tokens).client,
            Client::Unknown
        );
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        let known = super::caller(&headers, &ext, &tokens).client;
        assert!(matches!(known, Client::Token(_)));
        assert!(!known.to_string().contains("abc"));
        // a made-up token names no one: the address does
        headers.insert("authorization", "Bearer made-up".parse().unwrap());
        ext.insert(TcpConnectInfo {
            local_addr: None,
            remote_addr: Some("[2001:db8::1:2:3:4]:5".parse().unwrap()),
        });
        assert_eq!(
            super::caller(&headers, &ext, &tokens).client,
            Client::Peer("2001:db8::".parse().unwrap())
        );
        assert_eq!(
            peer("::ffff:10.0.0.1".parse().unwrap()),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
    }
}

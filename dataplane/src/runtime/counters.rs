//! Every counter a shard exports, declared once: the table at the bottom of this file.
//!
//! One line per counter gives its name and the Prometheus family it is exported in (with its
//! label value when the family has a label). From the table come:
//! - [`Counter`], the counters the shard adds to ([`super::stats::ShardStats::add`]);
//! - the book counters a shard copies from [`BookStats`] ([`super::stats::ShardStats::publish_book`]);
//! - the feed counters a shard copies from its source's [`FeedStats`]
//!   ([`super::stats::ShardStats::publish_feed`]);
//! - [`StatsSnapshot`]'s fields, named as in the table;
//! - [`COUNTERS`] and [`StatsSnapshot::counters`], which the control plane walks to export the
//!   metrics (names, help, labels) and to fill the `ShardStats` reply of `GetStats`, whose
//!   proto fields carry the same names (a control-plane test checks that every counter has
//!   its field).
//!
//! Adding a counter is one line here plus the place that counts it.

use crate::book::BookStats;
use crate::source::FeedStats;

use super::stats::HistogramSnapshot;

/// A Prometheus metric family: several counters share one when they differ by a label.
#[derive(Debug, PartialEq, Eq)]
pub struct Family {
    /// Its name (`pinbook_…_total`).
    pub name: &'static str,
    /// Its HELP text.
    pub help: &'static str,
    /// The label that tells its counters apart, if it holds several.
    pub label: Option<&'static str>,
}

/// One exported counter.
#[derive(Debug, PartialEq, Eq)]
pub struct CounterInfo {
    /// Its name: the [`StatsSnapshot`] field, the field of the `ShardStats` reply of
    /// `GetStats`, and the key in `pinbook stats --json`.
    pub name: &'static str,
    /// The family it is exported in.
    pub family: &'static Family,
    /// Its value of the family's label (`Some` exactly when the family has a label).
    pub label: Option<&'static str>,
}

/// The families of the table, one line each.
pub mod family {
    use super::Family;

    macro_rules! families {
        ($($id:ident = $name:literal $([$label:literal])?: $help:literal;)*) => {
            $(
                #[doc = concat!("`", $name, "`: ", $help)]
                pub const $id: Family = Family {
                    name: $name,
                    help: $help,
                    label: families!(@label $($label)?),
                };
            )*
            /// Every family, in declaration order.
            pub const ALL: &[&Family] = &[$(&$id),*];
        };
        (@label $label:literal) => { Some($label) };
        (@label) => { None };
    }

    families! {
        PARSE_ERRORS = "pinbook_feed_parse_errors_total":
            "Feed messages that could not be parsed.";
        UNKNOWN_REFS = "pinbook_book_unknown_references_total":
            "Executions, cancels, deletes or replaces naming an order the books do not hold.";
        BOOK_REJECTED = "pinbook_book_rejected_total" ["reason"]:
            "Book messages refused, by reason: duplicate_ref (an add reusing a live reference), \
             overfill (more shares executed or cancelled than the order had), orders_full, \
             levels_full, symbols_full (capacity limits: the book is marked incomplete; raise the \
             books.* limit named).";
        CROSSINGS = "pinbook_book_crossings_total":
            "Times a book became crossed (best bid at or above best ask).";
        DUPLICATES = "pinbook_feed_duplicates_total":
            "Feed messages delivered again and dropped.";
        MALFORMED = "pinbook_feed_malformed_total":
            "Feed frames, packets or datagrams that could not be decoded or received.";
        HEARTBEATS = "pinbook_feed_heartbeats_total":
            "MoldUDP64 heartbeats received.";
        FEED_REJECTED = "pinbook_feed_rejected_total" ["reason"]:
            "Feed input refused before it reached the books, by reason: foreign_sender (a datagram \
             from another address than the feed's source), foreign_session (a MoldUDP64 packet of \
             an unconfirmed other session), implausible_sequence (a sequence jump beyond the \
             plausibility window that later packets did not confirm), framing_lost (a file's \
             framing was lost; the books are flagged stale), and for DBN records: \
             undefined_price (an add or modify at UNDEF_PRICE), no_side (an add or modify with \
             side N), unsupported_record (not MBO, or a top-of-book or price-level record), \
             unknown_instrument (an instrument the file's symbology does not name, or beyond \
             books.max_symbols).";
        RECORDS = "pinbook_feed_records_total" ["action"]:
            "DBN market-by-order records by action: add, cancel, modify, clear, trade, fill, \
             none, other (any other byte).";
        MODIFY_UNKNOWN = "pinbook_book_modify_unknown_total":
            "DBN modifies naming an order the book did not hold, added as new orders (as \
             Databento's reference book does).";
        TRADES = "pinbook_feed_trades_total" ["kind"]:
            "Trades the feed reported, by kind: execution (ITCH E and C: a displayed order \
             executed), fill (DBN F), trade (ITCH P, DBN T), cross (ITCH Q), broken (ITCH B).";
        HALTS = "pinbook_feed_halts_total":
            "Trading actions that halted a symbol (ITCH H with state H).";
        ORDER_EVENTS = "pinbook_order_events_published_total":
            "Order (market-by-order) events a shard put in its event ring, for symbols whose \
             order stream is on.";
        LINE_PACKETS = "pinbook_feed_line_packets_total" ["line"]:
            "UDP datagrams received on each feed line (a, b).";
        LINE_FIRST = "pinbook_feed_line_first_total" ["line"]:
            "Messages taken from each feed line because it had them first (arbitration wins).";
        LINE_LATE = "pinbook_feed_line_late_total" ["line"]:
            "Messages a feed line carried after they had been taken from another line, the \
             request server or itself: dropped.";
        LINE_MISSED = "pinbook_feed_line_missed_total" ["line"]:
            "Messages a feed line skipped (its own gaps), whether or not another source had \
             them.";
        RETRANSMIT_REQUESTS = "pinbook_feed_retransmit_requests_total":
            "MoldUDP64 retransmission requests sent (first requests and repeats).";
        RETRANSMIT_SEND_ERRORS = "pinbook_feed_retransmit_send_errors_total":
            "Retransmission requests that could not be sent (the request server's port closed, \
             no route); each is repeated after its backoff.";
        RETRANSMIT_PACKETS = "pinbook_feed_retransmit_packets_total":
            "Packets received from the retransmission server.";
        RECOVERED = "pinbook_feed_messages_recovered_total":
            "Messages every line lost that the retransmission server sent in time.";
        GIVEN_UP = "pinbook_feed_holes_given_up_total" ["reason"]:
            "Holes in the feed given up (each a gap and a resync) for a reason other than \
             plain loss without a request server: timeout (the request server did not fill it \
             in time), hold_full (a message did not fit the hold while it waited).";
        RESTARTS = "pinbook_feed_restarts_total":
            "Times a looping or restarted feed began a new day.";
        GAPS = "pinbook_feed_gaps_total":
            "Gaps in the feed's sequence numbers.";
        MESSAGES_LOST = "pinbook_feed_messages_lost_total":
            "Messages lost in feed gaps.";
        RING_FULL = "pinbook_event_ring_full_total":
            "Level updates that did not fit in the event ring (the symbol is resent later).";
        RESYNCS = "pinbook_resyncs_total":
            "Books resent in full by a shard (first books, ring overflows, new days, requests).";
        EVENTS_PUBLISHED = "pinbook_events_published_total":
            "Events a shard put in its event ring.";
        COMMANDS = "pinbook_commands_total":
            "Commands a shard took from the control plane (each goes to every shard): symbol adds and removes, resync requests, idle changes.";
        LOOP_ITERATIONS = "pinbook_loop_iterations_total" ["state"]:
            "Shard loop iterations, busy (did work) or idle.";
    }
}

macro_rules! counters {
    (
        added { $($(#[doc = $adoc:literal])* $variant:ident $afield:ident => $afam:ident $([$alabel:literal])?;)* }
        from_book { $($(#[doc = $bdoc:literal])* $bfield:ident = $bsource:ident => $bfam:ident $([$blabel:literal])?;)* }
        from_feed { $($(#[doc = $fdoc:literal])* $ffield:ident = $fsource:ident => $ffam:ident $([$flabel:literal])?;)* }
        of_the_loop { $($(#[doc = $ldoc:literal])* $lfield:ident => $lfam:ident $([$llabel:literal])?;)* }
    ) => {
        /// A counter the shard adds to, for [`super::stats::ShardStats::add`].
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Counter {
            $($(#[doc = $adoc])* $variant,)*
        }

        impl Counter {
            /// Every counter, in declaration order.
            pub const ALL: [Self; [$(stringify!($variant)),*].len()] = [$(Self::$variant),*];

            /// How many counters there are.
            pub const COUNT: usize = Self::ALL.len();
        }

        /// How many counters are copied from [`BookStats`].
        pub(super) const BOOK_COUNTERS: usize = [$(stringify!($bfield)),*].len();

        /// How many counters are copied from the source's [`FeedStats`].
        pub(super) const FEED_COUNTERS: usize = [$(stringify!($ffield)),*].len();

        /// The feed counters' totals, in table order.
        pub(super) fn feed_values(feed: &FeedStats) -> [u64; FEED_COUNTERS] {
            [$(feed.$fsource),*]
        }

        /// How many counters the shard loop keeps.
        pub(super) const LOOP_COUNTERS: usize = [$(stringify!($lfield)),*].len();

        /// The book counters' totals, in table order.
        pub(super) fn book_values(book: &BookStats) -> [u64; BOOK_COUNTERS] {
            [$(book.$bsource),*]
        }

        /// Every exported counter, in table order: added, from the books, of the loop.
        pub const COUNTERS: &[CounterInfo] = &[
            $(CounterInfo { name: stringify!($afield), family: &family::$afam, label: counters!(@label $($alabel)?) },)*
            $(CounterInfo { name: stringify!($bfield), family: &family::$bfam, label: counters!(@label $($blabel)?) },)*
            $(CounterInfo { name: stringify!($ffield), family: &family::$ffam, label: counters!(@label $($flabel)?) },)*
            $(CounterInfo { name: stringify!($lfield), family: &family::$lfam, label: counters!(@label $($llabel)?) },)*
        ];

        /// The counters of a [`super::stats::ShardStats`] as read at one moment (per counter),
        /// for the control plane to export.
        #[derive(Clone, Debug, Default, PartialEq)]
        pub struct StatsSnapshot {
            /// ITCH messages by type letter, index `type - b'A'` (see
            /// [`messages_of`](Self::messages_of)).
            pub messages_by_type: [u64; super::stats::MESSAGE_TYPES],
            /// ITCH messages whose type byte is not `'A'..='Z'`.
            pub messages_other: u64,
            $($(#[doc = $adoc])* pub $afield: u64,)*
            $($(#[doc = $bdoc])* pub $bfield: u64,)*
            $($(#[doc = $fdoc])* pub $ffield: u64,)*
            $($(#[doc = $ldoc])* pub $lfield: u64,)*
            /// Loop: nanoseconds spent in busy iterations, in total.
            pub busy_ns_total: u64,
            /// Loop: the longest busy iteration, in nanoseconds.
            pub max_loop_ns: u64,
            /// Orders resting in the shard's books at the last busy iteration.
            pub orders_live: u64,
            /// Price levels in the shard's books at the last busy iteration.
            pub levels_live: u64,
            /// Time from a message's arrival to the publication of its event.
            pub ingest_to_publish: HistogramSnapshot,
        }

        impl StatsSnapshot {
            /// Every exported counter with its value, in [`COUNTERS`] order.
            pub fn counters(&self) -> impl Iterator<Item = (&'static CounterInfo, u64)> {
                COUNTERS
                    .iter()
                    .zip([$(self.$afield,)* $(self.$bfield,)* $(self.$ffield,)* $(self.$lfield,)*])
            }

            /// Fills the table's fields from the shard's atomics, read one by one.
            pub(super) fn with_counters(
                mut self,
                added: &[u64; Counter::COUNT],
                book: &[u64; BOOK_COUNTERS],
                feed: &[u64; FEED_COUNTERS],
                loops: &[u64; LOOP_COUNTERS],
            ) -> Self {
                let mut added = added.iter().copied();
                let mut book = book.iter().copied();
                let mut feed = feed.iter().copied();
                let mut loops = loops.iter().copied();
                $(self.$afield = added.next().unwrap_or_default();)*
                $(self.$bfield = book.next().unwrap_or_default();)*
                $(self.$ffield = feed.next().unwrap_or_default();)*
                $(self.$lfield = loops.next().unwrap_or_default();)*
                self
            }
        }
    };
    (@label $label:literal) => { Some($label) };
    (@label) => { None };
}

counters! {
    added {
        /// Feed: ITCH messages that could not be parsed (too short, bad length for their type).
        ParseErrors parse_errors => PARSE_ERRORS;
        /// Feed: gap events, each time messages were lost upstream.
        Gaps gaps => GAPS;
        /// Feed: messages lost in those gaps, as far as the feed knows.
        MessagesLost messages_lost => MESSAGES_LOST;
        /// Feed: messages delivered again and dropped.
        Duplicates duplicates => DUPLICATES;
        /// Feed: frames or packets that could not be decoded, skipped.
        Malformed malformed => MALFORMED;
        /// Feed: MoldUDP64 heartbeats received.
        Heartbeats heartbeats => HEARTBEATS;
        /// Feed: times a looping source started over (books cleared).
        Restarts restarts => RESTARTS;
        /// Rings: times the event ring was full when the shard tried to publish (the symbol was
        /// marked dirty for a resync).
        RingFull ring_full => RING_FULL;
        /// Rings: resyncs (clear + levels) the shard published.
        Resyncs resyncs => RESYNCS;
        /// Rings: events published to the event ring.
        EventsPublished events_published => EVENTS_PUBLISHED;
        /// Rings: commands taken from the command ring.
        Commands commands => COMMANDS;
        /// Feed: datagrams from a sender other than the configured source, dropped.
        ForeignSender foreign_sender => FEED_REJECTED["foreign_sender"];
        /// Feed: MoldUDP64 packets of an unconfirmed other session, dropped.
        ForeignSession foreign_session => FEED_REJECTED["foreign_session"];
        /// Feed: MoldUDP64 packets whose sequence jump was never confirmed, dropped.
        ImplausibleSequence implausible_sequence => FEED_REJECTED["implausible_sequence"];
        /// Feed: times a file's framing was lost and recovered (each also a gap).
        FramingLost framing_lost => FEED_REJECTED["framing_lost"];
        /// Feed: DBN adds or modifies at the undefined price, refused.
        UndefinedPrice undefined_price => FEED_REJECTED["undefined_price"];
        /// Feed: DBN adds or modifies with side N, refused.
        NoSide no_side => FEED_REJECTED["no_side"];
        /// Feed: DBN records pinbook does not apply (not MBO, TOB or MBP records, unknown actions).
        UnsupportedRecord unsupported_record => FEED_REJECTED["unsupported_record"];
        /// Feed: DBN records for an instrument the symbology does not name (or past capacity).
        UnknownInstrument unknown_instrument => FEED_REJECTED["unknown_instrument"];
        /// Feed: DBN add records.
        RecordsAdd records_add => RECORDS["add"];
        /// Feed: DBN cancel records.
        RecordsCancel records_cancel => RECORDS["cancel"];
        /// Feed: DBN modify records.
        RecordsModify records_modify => RECORDS["modify"];
        /// Feed: DBN clear-book records.
        RecordsClear records_clear => RECORDS["clear"];
        /// Feed: DBN trade records.
        RecordsTrade records_trade => RECORDS["trade"];
        /// Feed: DBN fill records.
        RecordsFill records_fill => RECORDS["fill"];
        /// Feed: DBN records with action none.
        RecordsNone records_none => RECORDS["none"];
        /// Feed: DBN records with any other action byte.
        RecordsOther records_other => RECORDS["other"];
        /// Feed: DBN fills of resting orders.
        TradesFill trades_fill => TRADES["fill"];
        /// Feed: trades with no displayed resting order (ITCH P, DBN T).
        TradesTape trades_tape => TRADES["trade"];
        /// Feed: crosses (ITCH Q).
        TradesCross trades_cross => TRADES["cross"];
        /// Feed: broken trades (ITCH B).
        TradesBroken trades_broken => TRADES["broken"];
        /// Feed: trading actions that halted a symbol.
        Halts halts => HALTS;
        /// Rings: order events published (symbols whose order stream is on).
        OrderEvents order_events => ORDER_EVENTS;
    }
    from_book {
        /// Book: E, C, X, D or U naming an order reference the book does not hold.
        unknown_refs = unknown_refs => UNKNOWN_REFS;
        /// Book: A or F reusing a live order reference (the new order was ignored).
        duplicate_refs = duplicate_refs => BOOK_REJECTED["duplicate_ref"];
        /// Book: executions or cancels of more shares than the order had.
        overfills = overfills => BOOK_REJECTED["overfill"];
        /// Book: times a book became crossed (best bid ≥ best ask).
        crossings = crossed => CROSSINGS;
        /// Book: adds dropped because the order store was full (`max_orders`).
        orders_full = orders_full => BOOK_REJECTED["orders_full"];
        /// Book: adds dropped because no price level could be reserved.
        levels_full = levels_full => BOOK_REJECTED["levels_full"];
        /// Book: messages for a stock locate above the configured symbol capacity.
        symbols_full = symbols_full => BOOK_REJECTED["symbols_full"];
        /// Book: DBN modifies of orders the book did not hold, added as new orders.
        modify_unknown = modify_unknown => MODIFY_UNKNOWN;
        /// Book: executions of displayed orders (ITCH E, C).
        trades_execution = executions => TRADES["execution"];
    }
    from_feed {
        /// Feed line A: datagrams received.
        line_a_packets = a_packets => LINE_PACKETS["a"];
        /// Feed line B: datagrams received.
        line_b_packets = b_packets => LINE_PACKETS["b"];
        /// Feed line A: messages taken from it first.
        line_a_first = a_first => LINE_FIRST["a"];
        /// Feed line B: messages taken from it first.
        line_b_first = b_first => LINE_FIRST["b"];
        /// Feed line A: messages it carried late, dropped.
        line_a_late = a_late => LINE_LATE["a"];
        /// Feed line B: messages it carried late, dropped.
        line_b_late = b_late => LINE_LATE["b"];
        /// Feed line A: messages it skipped.
        line_a_missed = a_missed => LINE_MISSED["a"];
        /// Feed line B: messages it skipped.
        line_b_missed = b_missed => LINE_MISSED["b"];
        /// Feed: retransmission requests sent.
        retransmit_requests = retransmit_requests => RETRANSMIT_REQUESTS;
        /// Feed: retransmission requests that could not be sent.
        retransmit_send_errors = retransmit_send_errors => RETRANSMIT_SEND_ERRORS;
        /// Feed: packets received from the retransmission server.
        retransmit_packets = retransmit_packets => RETRANSMIT_PACKETS;
        /// Feed: messages the retransmission server filled in.
        messages_recovered = recovered => RECOVERED;
        /// Feed: holes given up because the request server did not fill them in time.
        given_up_timeout = timeouts => GIVEN_UP["timeout"];
        /// Feed: holes given up because the hold was full.
        given_up_hold_full = hold_full => GIVEN_UP["hold_full"];
    }
    of_the_loop {
        /// Loop: iterations that did work.
        busy_iterations => LOOP_ITERATIONS["busy"];
        /// Loop: iterations that found no work.
        idle_iterations => LOOP_ITERATIONS["idle"];
    }
}

impl StatsSnapshot {
    /// Messages of type `type_byte`; for a byte outside `'A'..='Z'`, all such messages
    /// ([`messages_other`](Self::messages_other)).
    pub fn messages_of(&self, type_byte: u8) -> u64 {
        self.messages_by_type
            .get(usize::from(type_byte.wrapping_sub(b'A')))
            .copied()
            .unwrap_or(self.messages_other)
    }

    /// Feed messages of every type: ITCH messages and DBN records alike.
    pub fn messages(&self) -> u64 {
        self.messages_by_type.iter().sum::<u64>() + self.messages_other + self.records()
    }

    /// DBN records of every action (the counters of [`family::RECORDS`]).
    pub fn records(&self) -> u64 {
        self.counters()
            .filter(|(c, _)| *c.family == family::RECORDS)
            .map(|(_, n)| n)
            .sum()
    }

    /// The share of loop iterations that did work (see [`busy_ratio`]).
    pub fn busy_ratio(&self) -> f64 {
        busy_ratio(self.busy_iterations, self.idle_iterations)
    }
}

/// busy / (busy + idle), 0 when there were none: the share of a shard's loop iterations that
/// did work.
pub fn busy_ratio(busy_iterations: u64, idle_iterations: u64) -> f64 {
    let total = busy_iterations.saturating_add(idle_iterations);
    if total == 0 {
        0.0
    } else {
        busy_iterations as f64 / total as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_labels_match_their_families() {
        let mut names: Vec<&str> = COUNTERS.iter().map(|c| c.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), COUNTERS.len(), "a counter name is used twice");
        for c in COUNTERS {
            assert_eq!(
                c.label.is_some(),
                c.family.label.is_some(),
                "{}: a label exactly when its family has one",
                c.name
            );
            assert!(family::ALL.contains(&c.family), "{}", c.name);
            assert!(c.family.name.starts_with("pinbook_") && c.family.name.ends_with("_total"));
        }
        for f in family::ALL {
            assert!(
                COUNTERS.iter().any(|c| c.family == *f),
                "{} exports nothing",
                f.name
            );
        }
    }

    #[test]
    fn every_counter_reads_its_own_field() {
        let added: [u64; Counter::COUNT] = std::array::from_fn(|i| 100 + i as u64);
        let book: [u64; BOOK_COUNTERS] = std::array::from_fn(|i| 200 + i as u64);
        let feed: [u64; FEED_COUNTERS] = std::array::from_fn(|i| 400 + i as u64);
        let s = StatsSnapshot::default().with_counters(&added, &book, &feed, &[300, 301]);
        let values: Vec<u64> = s.counters().map(|(_, v)| v).collect();
        let want: Vec<u64> = added
            .iter()
            .chain(&book)
            .chain(&feed)
            .chain(&[300, 301])
            .copied()
            .collect();
        assert_eq!(values, want);
        assert_eq!(s.gaps, 101);
        assert_eq!(s.crossings, 203);
        assert_eq!(s.idle_iterations, 301);
    }
}

//! [`FileSource`]: a NASDAQ BinaryFILE as a feed, unpaced or paced, once or looping.
//!
//! The file is memory-mapped ([`BinaryFile`]) and read at a byte offset, so a poll copies
//! nothing and allocates nothing: each message is handed over as a slice of the mapping.

use std::path::{Path, PathBuf};

use super::pacer::Pacing;
use super::{FeedEvent, FeedSource, Polled, Rejection};
use crate::feed::binaryfile::{
    BinaryFile, FrameError, Frames, OpenError, Resync, find_framing, framing_lost_at,
};
use crate::feed::itch::{header_of, is_message_shaped};

pub use super::pacer::{Pace, PaceError};

/// How a [`FileSource`] reads its file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FileOptions {
    /// How fast messages are released.
    pub pace: Pace,
    /// Start over at the end of the file (with a [`FeedEvent::Restart`]) instead of ending.
    pub looping: bool,
}

/// Why a [`FileSource`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    /// The file could not be opened or mapped.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A pace that never releases anything.
    #[error(transparent)]
    Pace(#[from] PaceError),
}

/// A BinaryFILE feed; see the [module docs](self).
///
/// Frame errors become [`FeedEvent::Malformed`]: a zero-length frame is skipped, a truncated
/// frame (only possible at the end) ends the pass.
///
/// **Framing loss.** A frame longer than any ITCH message, or a run of frames that hold no ITCH
/// message ([`framing_lost_at`]), means the length prefixes no longer line up with messages
/// (a damaged or spliced file): parsing on would apply garbage to the books. The source then
/// emits [`FeedEvent::Rejected`]`(`[`Rejection::FramingLost`]`)` and a [`FeedEvent::Gap`] of
/// unknown size (the shard flags its books stale and subscribers are resynced), and scans
/// ahead, at most [`SCAN_PER_POLL`] bytes per poll, for the next offset where
/// [`RESYNC_FRAMES`](crate::feed::binaryfile::RESYNC_FRAMES) frames in a row are ITCH messages;
/// it resumes there, or ends the pass if there is none. At the end of the file a looping source
/// emits [`FeedEvent::Restart`] and starts over, its pacing continuing where it was; otherwise
/// it emits [`FeedEvent::EndOfSession`] once and then returns [`Polled::Ended`]. A looping
/// source whose file holds no message at all ends too, instead of restarting forever.
#[derive(Debug)]
pub struct FileSource {
    file: BinaryFile,
    path: PathBuf,
    options: FileOptions,
    pacing: Pacing,
    offset: usize,
    /// Messages handed over in the current pass.
    pass_messages: u64,
    passes: u64,
    messages: u64,
    ended: bool,
    /// Framing was lost: scanning for it from this offset.
    lost: Option<usize>,
    /// The gap that follows a framing loss is still to be emitted.
    owed_gap: bool,
}

/// Bytes scanned for sound framing per poll after it was lost, so a long damaged stretch
/// delays the loop by microseconds at a time.
pub const SCAN_PER_POLL: usize = 16 * 1024;

impl FileSource {
    /// Opens and maps `path`.
    ///
    /// # Errors
    /// [`FileSourceError::Open`] if the file cannot be opened or mapped; the pace errors of
    /// [`FileSource::new`].
    pub fn open(path: impl AsRef<Path>, options: FileOptions) -> Result<Self, FileSourceError> {
        let path = path.as_ref();
        Self::new(BinaryFile::open(path)?, path, options)
    }

    /// A source over an already-open `file`; `path` only names it in [`FeedSource::describe`].
    ///
    /// # Errors
    /// [`FileSourceError::Pace`] for `Pace::Rate(0)` or a timestamp speed that is not positive
    /// and finite.
    pub fn new(
        file: BinaryFile,
        path: impl Into<PathBuf>,
        options: FileOptions,
    ) -> Result<Self, FileSourceError> {
        let pacing = Pacing::of(options.pace)?;
        Ok(FileSource {
            file,
            path: path.into(),
            options,
            pacing,
            offset: 0,
            pass_messages: 0,
            passes: 0,
            messages: 0,
            ended: false,
            lost: None,
            owed_gap: false,
        })
    }

    /// Messages handed over so far, every pass included.
    pub fn messages(&self) -> u64 {
        self.messages
    }

    /// Passes completed over the whole file (restarts, or 1 once a non-looping source ended).
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// The byte offset of the next frame in the file.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The intended release time of the next message under [`Pace::Rate`] (for latency
    /// measured from intended time), `None` under the other paces.
    pub fn scheduled_ns(&self) -> Option<u64> {
        match &self.pacing {
            Pacing::Rate(pacer) => Some(pacer.scheduled_ns()),
            _ => None,
        }
    }

    /// Handles the end of a pass; returns the events emitted (always 1).
    fn end_pass(&mut self, sink: &mut dyn FnMut(FeedEvent<'_>)) -> usize {
        self.passes += 1;
        self.lost = None;
        if self.options.looping && self.pass_messages > 0 {
            self.offset = 0;
            self.pass_messages = 0;
            if let Pacing::Timestamps(t) = &mut self.pacing {
                t.restart();
            }
            sink(FeedEvent::Restart);
        } else {
            self.ended = true;
            sink(FeedEvent::EndOfSession);
        }
        1
    }
}

/// The ITCH timestamp of `message`, if it has a whole header.
fn itch_timestamp(message: &[u8]) -> Option<u64> {
    message.get(..11).map(|h| header_of(h).timestamp)
}

impl FeedSource for FileSource {
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        if self.ended {
            return Polled::Ended;
        }
        let budget = self.pacing.budget(now, max);
        let mut events = 0;
        let mut delivered = 0;
        while events < max && delivered < budget && !self.ended {
            let bytes = self.file.bytes();
            if self.owed_gap {
                // Unknown size: the damaged stretch may have held any number of messages.
                sink(FeedEvent::Gap { first: 0, count: 0 });
                self.owed_gap = false;
                events += 1;
                continue;
            }
            if let Some(from) = self.lost {
                match find_framing(bytes, from, SCAN_PER_POLL) {
                    Resync::At(offset) => {
                        self.offset = offset;
                        self.lost = None;
                    }
                    Resync::Scanning(next) => {
                        // one piece per poll; the next polls go on from here
                        self.lost = Some(next);
                        break;
                    }
                    Resync::End => {
                        self.offset = bytes.len();
                        self.lost = None;
                    }
                }
                continue;
            }
            let mut frames = Frames::new(bytes.get(self.offset..).unwrap_or_default());
            let frame = frames.next();
            // A sound frame costs one table lookup; only a suspect one looks further.
            let lost = match frame {
                Some(Ok(message)) => {
                    !is_message_shaped(message) && framing_lost_at(bytes, self.offset)
                }
                Some(Err(FrameError::Truncated { .. })) => framing_lost_at(bytes, self.offset),
                _ => false,
            };
            if lost {
                self.lost = Some(self.offset + 1);
                self.owed_gap = true;
                sink(FeedEvent::Rejected(Rejection::FramingLost));
                events += 1;
                continue;
            }
            match frame {
                None => events += self.end_pass(sink),
                Some(Err(FrameError::Truncated { .. })) => {
                    sink(FeedEvent::Malformed {
                        what: "truncated frame at the end of the file",
                    });
                    events += 1;
                    if events < max {
                        events += self.end_pass(sink);
                    } else {
                        // The next poll finds the same tail; move past it so it is told once.
                        self.offset = bytes.len();
                    }
                }
                Some(Err(FrameError::ZeroLength { .. })) => {
                    self.offset += frames.offset();
                    sink(FeedEvent::Malformed {
                        what: "zero-length frame",
                    });
                    events += 1;
                }
                Some(Ok(message)) => {
                    if let Pacing::Timestamps(t) = &mut self.pacing {
                        let due = t.due_ns(itch_timestamp(message), now);
                        if now < due {
                            t.waiting_until = due;
                            break;
                        }
                    }
                    self.offset += frames.offset();
                    sink(FeedEvent::Message(message));
                    self.pass_messages += 1;
                    delivered += 1;
                    events += 1;
                }
            }
        }
        if let Pacing::Rate(pacer) = &mut self.pacing {
            pacer.release(delivered);
        }
        self.messages += delivered as u64;
        if events > 0 {
            Polled::Events(events)
        } else if self.ended {
            Polled::Ended
        } else {
            Polled::Idle
        }
    }

    fn describe(&self) -> String {
        let pace = match self.options.pace {
            Pace::Unpaced => "unpaced".to_owned(),
            Pace::Rate(rate) => format!("at {rate} msg/s"),
            Pace::Timestamps { speed } => format!("at its own timestamps x{speed}"),
        };
        let looping = if self.options.looping {
            ", looping"
        } else {
            ""
        };
        format!("file {} {pace}{looping}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::clock;
    use crate::feed::binaryfile::write_frame;
    use crate::feed::itch::encode::{EncHeader, order_delete};

    /// A file in the temp dir, unique to this process and call; removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn with(bytes: &[u8]) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "pinbook-source-file-{}-{n}.itch",
                std::process::id()
            ));
            std::fs::write(&path, bytes).expect("write temp file");
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `D` messages with order refs `1..=n`, stamped `ts(i)`.
    fn deletes(n: u64, ts: impl Fn(u64) -> u64) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 1..=n {
            let h = EncHeader {
                stock_locate: 1,
                tracking: 0,
                timestamp: ts(i),
            };
            write_frame(&mut out, &order_delete(h, i)).expect("frame");
        }
        out
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Seen {
        Ref(u64),
        /// A message that is not an order delete.
        Bad,
        Lost,
        Gap,
        Malformed,
        Restart,
        End,
        Other,
    }

    fn poll(src: &mut FileSource, max: usize, seen: &mut Vec<Seen>) -> Polled {
        src.poll(clock::now_ns(), max, &mut |e| {
            seen.push(match e {
                FeedEvent::Message(m) => match m.get(11..19) {
                    Some(r) if m.len() == 19 => {
                        Seen::Ref(u64::from_be_bytes(r.try_into().expect("8 bytes")))
                    }
                    _ => Seen::Bad,
                },
                FeedEvent::Rejected(Rejection::FramingLost) => Seen::Lost,
                FeedEvent::Gap { first: 0, count: 0 } => Seen::Gap,
                FeedEvent::Malformed { .. } => Seen::Malformed,
                FeedEvent::Restart => Seen::Restart,
                FeedEvent::EndOfSession => Seen::End,
                _ => Seen::Other,
            })
        })
    }

    fn open(file: &TempFile, pace: Pace, looping: bool) -> FileSource {
        FileSource::open(&file.0, FileOptions { pace, looping }).expect("open")
    }

    #[test]
    fn unpaced_reads_everything_then_ends_once() {
        let file = TempFile::with(&deletes(10, |i| i));
        let mut src = open(&file, Pace::Unpaced, false);
        let mut seen = Vec::new();
        assert_eq!(poll(&mut src, 4, &mut seen), Polled::Events(4));
        assert_eq!(poll(&mut src, 4, &mut seen), Polled::Events(4));
        assert_eq!(poll(&mut src, 4, &mut seen), Polled::Events(3));
        assert_eq!(poll(&mut src, 4, &mut seen), Polled::Ended);
        assert_eq!(poll(&mut src, 4, &mut seen), Polled::Ended);
        let mut expected: Vec<Seen> = (1..=10).map(Seen::Ref).collect();
        expected.push(Seen::End);
        assert_eq!(seen, expected);
        assert_eq!((src.messages(), src.passes()), (10, 1));
        assert!(src.describe().contains("unpaced"), "{}", src.describe());
    }

    #[test]
    fn looping_restarts_from_the_top() {
        let file = TempFile::with(&deletes(3, |i| i));
        let mut src = open(&file, Pace::Unpaced, true);
        let mut seen = Vec::new();
        assert_eq!(poll(&mut src, 8, &mut seen), Polled::Events(8));
        use Seen::{Ref, Restart};
        assert_eq!(
            seen,
            [
                Ref(1),
                Ref(2),
                Ref(3),
                Restart,
                Ref(1),
                Ref(2),
                Ref(3),
                Restart
            ]
        );
        assert_eq!((src.messages(), src.passes()), (6, 2));
        assert!(src.describe().ends_with("looping"), "{}", src.describe());
    }

    #[test]
    fn bad_frames_are_reported_and_skipped() {
        let mut bytes = deletes(2, |i| i);
        bytes.extend_from_slice(&[0, 0]); // zero-length frame
        bytes.extend_from_slice(&deletes(1, |_| 9));
        bytes.extend_from_slice(&[0, 19, b'D', 0]); // cut short
        let file = TempFile::with(&bytes);
        let mut src = open(&file, Pace::Unpaced, false);
        let mut seen = Vec::new();
        while poll(&mut src, 1, &mut seen) != Polled::Ended {}
        use Seen::{End, Malformed, Ref};
        assert_eq!(seen, [Ref(1), Ref(2), Malformed, Ref(1), Malformed, End]);
    }

    /// Refs 1..=n, as `Seen`.
    fn refs(range: std::ops::RangeInclusive<u64>) -> Vec<Seen> {
        range.map(Seen::Ref).collect()
    }

    fn play(bytes: &[u8], max: usize) -> Vec<Seen> {
        let file = TempFile::with(bytes);
        let mut src = open(&file, Pace::Unpaced, false);
        let mut seen = Vec::new();
        while poll(&mut src, max, &mut seen) != Polled::Ended {}
        seen
    }

    #[test]
    fn a_length_prefix_inserted_mid_file_is_a_framing_loss_then_recovered() {
        let all = deletes(10, |i| i);
        let cut = 5 * 21;
        let bytes = [&all[..cut], &[0xFF, 0xFF], &all[cut..]].concat();
        for max in [1, 3, 64] {
            let want = [
                refs(1..=5),
                vec![Seen::Lost, Seen::Gap],
                refs(6..=10),
                vec![Seen::End],
            ]
            .concat();
            assert_eq!(play(&bytes, max), want, "max {max}");
        }
    }

    #[test]
    fn a_run_of_unparseable_frames_is_a_framing_loss() {
        let all = deletes(12, |i| i);
        let cut = 4 * 21;
        // a corrupted prefix (20 instead of 19) shifts every frame after it by one byte
        let mut bytes = all.clone();
        bytes[cut + 1] = 20;
        let seen = play(&bytes, 64);
        assert_eq!(
            seen[..6],
            [refs(1..=4), vec![Seen::Lost, Seen::Gap]].concat()
        );
        assert_eq!(seen.last(), Some(&Seen::End));
        assert!(
            !seen.contains(&Seen::Bad),
            "nothing misaligned is delivered: {seen:?}"
        );
        assert!(
            seen.ends_with(&[refs(7..=12), vec![Seen::End]].concat()),
            "{seen:?}"
        );

        // garbage up to the end: lost, and the pass ends
        let bytes = [&all[..cut], &[0, 30][..], &[7; 40][..]].concat();
        assert_eq!(
            play(&bytes, 64),
            [refs(1..=4), vec![Seen::Lost, Seen::Gap, Seen::End]].concat()
        );
    }

    #[test]
    fn one_bad_frame_among_sound_ones_is_a_bad_message_not_a_framing_loss() {
        let all = deletes(6, |i| i);
        let bytes = [&all[..3 * 21], &[0, 3, b'Z', 1, 2][..], &all[3 * 21..]].concat();
        assert_eq!(
            play(&bytes, 64),
            [refs(1..=3), vec![Seen::Bad], refs(4..=6), vec![Seen::End]].concat()
        );
    }

    #[test]
    fn a_long_damaged_stretch_is_scanned_a_piece_per_poll() {
        let all = deletes(4, |i| i);
        let garbage = vec![0xFFu8; 3 * SCAN_PER_POLL];
        let bytes = [&all[..2 * 21], &garbage[..], &all[2 * 21..]].concat();
        let file = TempFile::with(&bytes);
        let mut src = open(&file, Pace::Unpaced, false);
        let mut seen = Vec::new();
        let mut polls = 0;
        while poll(&mut src, 64, &mut seen) != Polled::Ended {
            polls += 1;
        }
        assert!(polls >= 3, "{polls} polls");
        assert_eq!(
            seen,
            [
                refs(1..=2),
                vec![Seen::Lost, Seen::Gap],
                refs(3..=4),
                vec![Seen::End]
            ]
            .concat()
        );
    }

    proptest::proptest! {
        /// Whatever the damage, the source never panics, ends, and hands over only message-shaped
        /// frames once framing was lost and found again.
        #[test]
        fn damaged_files_never_panic_and_always_end(
            cuts in proptest::collection::vec((0usize..2_000, proptest::collection::vec(proptest::num::u8::ANY, 0..40)), 0..6),
        ) {
            let mut bytes = deletes(100, |i| i);
            for (at, insert) in cuts {
                let at = at.min(bytes.len());
                bytes.splice(at..at, insert);
            }
            let file = TempFile::with(&bytes);
            let mut src = open(&file, Pace::Unpaced, false);
            let mut seen = Vec::new();
            let mut polls = 0;
            while poll(&mut src, 16, &mut seen) != Polled::Ended {
                polls += 1;
                proptest::prop_assert!(polls < 100_000, "never ends");
            }
            proptest::prop_assert_eq!(seen.last(), Some(&Seen::End));
        }
    }

    #[test]
    fn looping_over_a_file_without_messages_ends() {
        let file = TempFile::with(&[0, 0, 0, 0]);
        let mut src = open(&file, Pace::Unpaced, true);
        let mut seen = Vec::new();
        while poll(&mut src, 16, &mut seen) != Polled::Ended {}
        assert_eq!(seen, [Seen::Malformed, Seen::Malformed, Seen::End]);
    }

    #[test]
    fn bad_paces_are_refused_and_a_missing_file_named() {
        let file = TempFile::with(&deletes(1, |i| i));
        let err = FileSource::open(
            &file.0,
            FileOptions {
                pace: Pace::Rate(0),
                looping: false,
            },
        );
        assert!(matches!(
            err,
            Err(FileSourceError::Pace(PaceError::ZeroRate))
        ));
        for speed in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let pace = Pace::Timestamps { speed };
            let err = FileSource::open(
                &file.0,
                FileOptions {
                    pace,
                    looping: false,
                },
            );
            assert!(
                matches!(err, Err(FileSourceError::Pace(PaceError::BadSpeed { .. }))),
                "{speed}"
            );
        }
        let missing = file.0.with_extension("missing");
        let err = FileSource::open(
            &missing,
            FileOptions {
                pace: Pace::Unpaced,
                looping: false,
            },
        )
        .expect_err("no such file");
        assert!(err.to_string().contains("cannot open ITCH file"), "{err}");
    }

    #[test]
    fn rate_pacing_releases_what_is_due() {
        let file = TempFile::with(&deletes(1_000, |i| i));
        let mut src = open(&file, Pace::Rate(1_000), false); // one per millisecond
        let mut seen = Vec::new();
        let before = clock::now_ns();
        assert_eq!(poll(&mut src, 100, &mut seen), Polled::Events(1));
        // The schedule started inside that poll: between `before` and `started`.
        let started = clock::now_ns();
        let scheduled = src.scheduled_ns().expect("paced by rate");
        assert!(scheduled > before && scheduled <= started + 1_000_000);
        let mut idle = false;
        loop {
            let t = clock::now_ns();
            idle |= poll(&mut src, 100, &mut seen) == Polled::Idle;
            if t - started >= 30_000_000 {
                break;
            }
        }
        let elapsed_ms = (clock::now_ns() - before) / 1_000_000;
        let n = seen.len() as u64;
        assert!(idle, "a paced source idles between messages");
        // At least the 31 due 30 ms after the start, at most those due by now.
        assert!(
            (31..=elapsed_ms + 1).contains(&n),
            "{n} messages in {elapsed_ms} ms"
        );
    }

    #[test]
    fn timestamp_pacing_waits_for_each_message() {
        const MS: u64 = 1_000_000;
        let day = 34_200_000 * MS;
        let file = TempFile::with(&deletes(2, |i| day + (i - 1) * 200 * MS));
        let pace = Pace::Timestamps { speed: 2.0 };
        let mut src = open(&file, pace, false);
        let mut seen = Vec::new();
        let t0 = clock::now_ns();
        assert_eq!(poll(&mut src, 10, &mut seen), Polled::Events(1));
        assert_eq!(poll(&mut src, 10, &mut seen), Polled::Idle);
        let deadline = t0 + 2_000 * MS;
        while seen.len() < 2 && clock::now_ns() < deadline {
            poll(&mut src, 10, &mut seen);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(
            clock::now_ns() - t0 >= 100 * MS,
            "200 ms recorded at speed 2 take 100 ms"
        );
        assert_eq!(seen, [Seen::Ref(1), Seen::Ref(2), Seen::End]);
    }

    #[test]
    fn timestamp_pacing_continues_smoothly_across_a_loop() {
        let mut t = crate::source::pacer::TimestampPace::new(0.5);
        assert_eq!(t.due_ns(Some(1_000), 50), 50);
        assert_eq!(t.due_ns(Some(1_100), 60), 250);
        assert_eq!(t.due_ns(None, 60), 250, "no timestamp: with the one before");
        t.restart();
        assert_eq!(
            t.due_ns(Some(1_000), 300),
            250,
            "the pass starts where the last ended"
        );
        assert_eq!(t.due_ns(Some(1_010), 300), 270);
    }

    #[test]
    fn itch_timestamp_reads_48_bits() {
        let h = EncHeader {
            stock_locate: 1,
            tracking: 2,
            timestamp: 0x0000_A1B2_C3D4_E5F6,
        };
        assert_eq!(itch_timestamp(&order_delete(h, 1)), Some(0xA1B2_C3D4_E5F6));
        assert_eq!(itch_timestamp(b"short"), None);
    }
}

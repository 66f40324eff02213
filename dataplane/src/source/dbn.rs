//! [`DbnSource`]: Databento DBN market-by-order files as a feed, decoded by the `dbn` crate.
//!
//! The files (`.dbn` or `.dbn.zst`, any DBN version the crate reads) play in order as one
//! session: no new day between them, so a snapshot at the start of a later file rebuilds the
//! books it names ([`crate::feed::dbn`]). Each record becomes one [`FeedEvent::Decoded`] (or a
//! [`FeedEvent::Rejected`]); each file's symbology first becomes directory ops naming its
//! instruments.
//!
//! **Groups.** A poll never ends inside a group of records (up to one whose `F_LAST` is set):
//! the records of one venue event are handed over, and so published, together. A poll may
//! therefore hand over more than `max` events, at most [`MAX_GROUP`] more; a longer group is
//! split there. [`FeedSource::grouped`] tells the shard to apply every record of a poll before
//! publishing.
//!
//! **Pacing** as a [`FileSource`](super::file::FileSource)'s: as fast as possible, records per
//! second, or the records' own `ts_event` scaled; a group waits as a whole.
//!
//! **Errors.** A file that cannot be opened, is not DBN, or is not of the MBO schema is refused
//! when the source is built, naming the file. The stream reaches the crate through a
//! [`FramingGuard`], which ends it at a damaged length that would misalign the records after
//! it (the crate reads records in place and trusts their framing). A record the crate cannot
//! decode, or the end the guard puts to a damaged file, ends that file
//! with [`FeedEvent::Malformed`] and a [`FeedEvent::Gap`] of unknown size (the books are
//! flagged stale); the next file follows. Records of other schemas are refused
//! ([`Rejection::UnsupportedRecord`]).
//!
//! Decoding reads the files through the crate's buffered (and, for zstd, streaming) readers: a
//! record costs a copy out of the read buffer, and nothing allocates per record. Opening a file
//! (at the start and between files) allocates and reads its metadata.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use dbn::decode::{DbnMetadata, DecodeRecordRef, DynReader};
use dbn::{MboMsg, Metadata, Schema};

use super::file::FileOptions;
use super::pacer::{Pace, PaceError, Pacing};
use super::{FeedEvent, FeedSource, Polled, Rejection};
use crate::feed::dbn::Translator;
use crate::feed::dbn::framing::{FramingGuard, guarded_decoder};

/// The most records a poll hands over past its `max` to finish a group.
pub const MAX_GROUP: usize = 1 << 20;

/// The crate's decoder over the file, decompressed, through the framing guard.
type Decoder = dbn::decode::dbn::Decoder<FramingGuard<DynReader<'static, BufReader<File>>>>;

/// Why a [`DbnSource`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DbnSourceError {
    /// No file was given.
    #[error("no DBN file given: name at least one, e.g. dbn:day1.dbn.zst,day2.dbn.zst")]
    NoFiles,
    /// A file could not be opened or its metadata decoded.
    #[error("{}: cannot read it as DBN ({reason})", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the `dbn` crate said.
        reason: String,
    },
    /// A file holds another schema than MBO.
    #[error("{}: its schema is {schema}, pinbook builds books from mbo (market by order) files", path.display())]
    Schema {
        /// The file.
        path: PathBuf,
        /// Its schema.
        schema: String,
    },
    /// A pace that never releases anything.
    #[error(transparent)]
    Pace(#[from] PaceError),
}

/// DBN MBO files as a feed; see the [module docs](self).
pub struct DbnSource {
    paths: Vec<PathBuf>,
    options: FileOptions,
    /// The file being read: `paths[file]`.
    file: usize,
    decoder: Option<Decoder>,
    translator: Translator,
    pacing: Pacing,
    /// A record decoded but not yet due.
    next: Option<MboMsg>,
    /// The last record handed over did not end its group.
    in_group: bool,
    /// The open file's symbology has been handed over as directory ops.
    learnt: bool,
    /// Records handed over in this pass over the files.
    records: u64,
    ended: bool,
}

impl std::fmt::Debug for DbnSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbnSource")
            .field("paths", &self.paths)
            .field("file", &self.file)
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

/// Opens `path` (plain or zstd) and checks it is a DBN MBO file.
fn open(path: &Path) -> Result<Decoder, DbnSourceError> {
    let refused = |e: dbn::Error| DbnSourceError::Open {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let reader = DynReader::from_file(path).map_err(refused)?;
    let decoder = guarded_decoder(reader).map_err(refused)?;
    let schema = decoder.metadata().schema;
    if schema != Some(Schema::Mbo) {
        return Err(DbnSourceError::Schema {
            path: path.to_owned(),
            schema: schema.map_or_else(|| "mixed".to_owned(), |s| s.to_string()),
        });
    }
    Ok(decoder)
}

impl DbnSource {
    /// Reads `paths` in order, naming instruments with locates below `max_symbols`. Every file
    /// is opened and checked here.
    ///
    /// # Errors
    /// See [`DbnSourceError`].
    pub fn open(
        paths: &[PathBuf],
        options: FileOptions,
        max_symbols: usize,
    ) -> Result<Self, DbnSourceError> {
        let pacing = Pacing::of(options.pace)?;
        let Some(first) = paths.first() else {
            return Err(DbnSourceError::NoFiles);
        };
        for path in &paths[1..] {
            open(path)?;
        }
        Ok(Self {
            decoder: Some(open(first)?),
            paths: paths.to_vec(),
            options,
            file: 0,
            translator: Translator::new(max_symbols),
            pacing,
            next: None,
            in_group: false,
            learnt: false,
            records: 0,
            ended: false,
        })
    }

    /// The metadata of every file, in order (for `pinbook replay` and tests).
    ///
    /// # Errors
    /// See [`DbnSourceError`].
    pub fn metadata_of(paths: &[PathBuf]) -> Result<Vec<Metadata>, DbnSourceError> {
        paths
            .iter()
            .map(|p| open(p).map(|d| d.metadata().clone()))
            .collect()
    }

    /// Takes the next record of this pass, opening files as needed and first handing over what
    /// a file's start brings (directory ops naming its instruments) and what cannot be a record
    /// (counted in `events`; then [`Next::Handed`], so the caller keeps to its budget). A file's
    /// end closes any group it left open.
    fn next_record(&mut self, sink: &mut dyn FnMut(FeedEvent<'_>), events: &mut usize) -> Next {
        if let Some(record) = self.next.take() {
            return Next::Record(record);
        }
        loop {
            let Some(path) = self.paths.get(self.file) else {
                return Next::PassOver;
            };
            if self.decoder.is_none() {
                self.in_group = false;
                match open(path) {
                    Ok(decoder) => {
                        self.decoder = Some(decoder);
                        self.learnt = false;
                    }
                    Err(e) => {
                        // it opened when the source was built: gone or changed since
                        tracing::warn!("{e}; going on with the next file");
                        return self.abandon_file("unreadable DBN file", sink, events);
                    }
                }
            }
            let Some(decoder) = &mut self.decoder else {
                continue;
            };
            if !self.learnt {
                self.learnt = true;
                let unnamed = self.translator.learn(decoder.metadata(), &mut |event| {
                    sink(event);
                    *events += 1;
                });
                for u in unnamed {
                    tracing::warn!(
                        "{}: instrument {} is not served: {}",
                        path.display(),
                        u.raw_symbol,
                        u.why
                    );
                }
            }
            let decoded = decoder.decode_record_ref();
            // an MBO record too short to hold one: the crate's `get` would panic on it
            let short = |record: &dbn::RecordRef<'_>| {
                let header = record.header();
                header.rtype == dbn::rtype::MBO
                    && header.record_size() < std::mem::size_of::<MboMsg>()
            };
            match decoded {
                Ok(Some(record)) if !short(&record) => match record.get::<MboMsg>() {
                    Some(mbo) => return Next::Record(*mbo),
                    None => {
                        sink(FeedEvent::Rejected(Rejection::UnsupportedRecord));
                        *events += 1;
                        return Next::Handed;
                    }
                },
                Ok(Some(_)) => {
                    tracing::warn!(
                        "{}: an MBO record shorter than one (a damaged file); going on with the \
                         next file",
                        path.display()
                    );
                    return self.abandon_file("short DBN record", sink, events);
                }
                Ok(None) => {
                    self.decoder = None;
                    self.file += 1;
                }
                Err(e) => {
                    tracing::warn!(
                        "{}: undecodable DBN record ({e}); going on with the next file",
                        path.display()
                    );
                    return self.abandon_file("undecodable DBN record", sink, events);
                }
            }
        }
    }
}

impl DbnSource {
    /// Leaves the current file for the next: what is left of it is lost, a gap of unknown
    /// size (the shard flags its books stale).
    fn abandon_file(
        &mut self,
        what: &'static str,
        sink: &mut dyn FnMut(FeedEvent<'_>),
        events: &mut usize,
    ) -> Next {
        sink(FeedEvent::Malformed { what });
        sink(FeedEvent::Gap { first: 0, count: 0 });
        *events += 2;
        self.decoder = None;
        self.file += 1;
        Next::Handed
    }
}

/// What [`DbnSource::next_record`] found.
enum Next {
    /// A record to translate.
    Record(MboMsg),
    /// Something other than a record was handed over (a refusal, a damaged file's gap).
    Handed,
    /// The pass over the files is over.
    PassOver,
}

impl FeedSource for DbnSource {
    fn poll(&mut self, now: u64, max: usize, sink: &mut dyn FnMut(FeedEvent<'_>)) -> Polled {
        if self.ended {
            return Polled::Ended;
        }
        let budget = self.pacing.budget(now, max);
        let mut events = 0;
        let mut records = 0;
        loop {
            let full = events >= max || records >= budget;
            if (full && !self.in_group) || events >= max.saturating_add(MAX_GROUP) {
                break;
            }
            let mbo = match self.next_record(sink, &mut events) {
                Next::Record(mbo) => mbo,
                Next::Handed => continue,
                Next::PassOver => {
                    self.in_group = false;
                    if self.options.looping && self.records > 0 {
                        self.file = 0;
                        self.records = 0;
                        if let Pacing::Timestamps(t) = &mut self.pacing {
                            t.restart();
                        }
                        sink(FeedEvent::Restart);
                        events += 1;
                        continue;
                    }
                    sink(FeedEvent::EndOfSession);
                    events += 1;
                    self.ended = true;
                    break;
                }
            };
            if let (false, Pacing::Timestamps(t)) = (self.in_group, &mut self.pacing) {
                let due = t.due_ns(Some(mbo.hd.ts_event), now);
                if due > now {
                    // the group waits whole
                    t.waiting_until = due;
                    self.next = Some(mbo);
                    break;
                }
            }
            self.translator.translate(&mbo, &mut |event| {
                sink(event);
                events += 1;
            });
            self.in_group = !mbo.flags.is_last();
            records += 1;
            self.records += 1;
        }
        if let Pacing::Rate(pacer) = &mut self.pacing {
            pacer.release(records);
        }
        if events == 0 {
            Polled::Idle
        } else {
            Polled::Events(events)
        }
    }

    fn grouped(&self) -> bool {
        true
    }

    fn describe(&self) -> String {
        let pace = match self.options.pace {
            Pace::Unpaced => "unpaced".to_owned(),
            Pace::Rate(rate) => format!("at {rate} records/s"),
            Pace::Timestamps { speed } => format!("at its own ts_event x{speed}"),
        };
        let looping = if self.options.looping {
            ", looping"
        } else {
            ""
        };
        let files: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        format!("dbn {} {pace}{looping}", files.join(","))
    }
}

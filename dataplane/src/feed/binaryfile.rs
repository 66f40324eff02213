//! NASDAQ BinaryFILE framing: the daily ITCH files are `u16 BE length | message` repeated.
//!
//! [`Frames`] splits any byte slice into frames without copying; [`BinaryFile`] memory-maps a
//! file read-only so a whole day (several GB) is walked straight from the page cache;
//! [`write_frame`] writes one frame.
//!
//! ```
//! use dataplane::feed::binaryfile::{FrameError, Frames, write_frame};
//!
//! let mut bytes = Vec::new();
//! write_frame(&mut bytes, b"hello").unwrap();
//! write_frame(&mut bytes, b"itch").unwrap();
//! bytes.extend_from_slice(&[0, 9, b'x']); // a frame cut short
//!
//! let mut frames = Frames::new(&bytes);
//! assert_eq!(frames.next(), Some(Ok(&b"hello"[..])));
//! assert_eq!(frames.next(), Some(Ok(&b"itch"[..])));
//! assert_eq!(
//!     frames.next(),
//!     Some(Err(FrameError::Truncated { offset: 13, needed: 11, available: 3 }))
//! );
//! assert_eq!(frames.next(), None);
//! ```

use std::fs::File;
use std::io;
use std::iter::FusedIterator;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::feed::itch::{MAX_MESSAGE_LEN, is_message_shaped};

/// A framing fault in a BinaryFILE stream. Offsets are byte offsets of the frame's length
/// prefix from the start of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The stream ends inside a frame (or inside its length prefix). Nothing follows it.
    #[error(
        "truncated frame at offset {offset}: needs {needed} bytes, only {available} remain \
         (was the file cut short or still being written?)"
    )]
    Truncated {
        /// Where the frame starts.
        offset: usize,
        /// The frame's full size, length prefix included (2 if the prefix itself is cut).
        needed: usize,
        /// The bytes left in the stream from `offset`.
        available: usize,
    },
    /// A length prefix of 0: no message. Iteration continues with the next frame.
    #[error("zero-length frame at offset {offset}: no ITCH message is empty (corrupt file?)")]
    ZeroLength {
        /// Where the frame starts.
        offset: usize,
    },
}

/// Iterator over the frames of a BinaryFILE stream, yielding each message as a sub-slice.
///
/// A zero-length frame yields [`FrameError::ZeroLength`] and iteration goes on; a truncated
/// tail yields one [`FrameError::Truncated`] and then the iterator ends.
#[derive(Clone, Debug)]
pub struct Frames<'a> {
    rest: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Frames of `bytes`, from its start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Frames {
            rest: bytes,
            offset: 0,
            done: false,
        }
    }

    /// Byte offset of the next frame's length prefix.
    pub fn offset(&self) -> usize {
        self.offset
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], FrameError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.rest.is_empty() {
            return None;
        }
        let offset = self.offset;
        let truncated = |needed| {
            Some(Err(FrameError::Truncated {
                offset,
                needed,
                available: self.rest.len(),
            }))
        };
        let Some((prefix, body)) = self.rest.split_first_chunk::<2>() else {
            self.done = true;
            return truncated(2);
        };
        let len = usize::from(u16::from_be_bytes(*prefix));
        let Some((message, rest)) = body.split_at_checked(len) else {
            self.done = true;
            return truncated(2 + len);
        };
        self.rest = rest;
        self.offset += 2 + len;
        if len == 0 {
            return Some(Err(FrameError::ZeroLength { offset }));
        }
        Some(Ok(message))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done || self.rest.is_empty() {
            (0, Some(0))
        } else {
            // Every frame but a truncated tail takes at least 2 bytes.
            (1, Some(self.rest.len().div_ceil(2)))
        }
    }
}

impl FusedIterator for Frames<'_> {}

/// Consecutive message-shaped frames ([`is_message_shaped`]) that must follow an offset before
/// framing lost earlier counts as found again there (fewer when the stream ends first, exactly
/// at a frame boundary). A random offset passes with odds far below one in a billion.
pub const RESYNC_FRAMES: usize = 4;

/// True if the frame whose length prefix is at `offset` shows that the framing was lost: its
/// length exceeds any ITCH message ([`MAX_MESSAGE_LEN`]), or it does not hold an ITCH message
/// and neither do the frames after it (a run of unparseable frames). One bad frame among sound
/// ones is not a framing loss: it is a bad message, left to the parser to count; nor is a
/// zero-length frame ([`FrameError::ZeroLength`]) or a truncated tail ([`FrameError::Truncated`]).
pub fn framing_lost_at(bytes: &[u8], offset: usize) -> bool {
    let rest = bytes.get(offset..).unwrap_or_default();
    let Some((prefix, body)) = rest.split_first_chunk::<2>() else {
        return false;
    };
    let len = usize::from(u16::from_be_bytes(*prefix));
    if len > MAX_MESSAGE_LEN {
        return true;
    }
    if len == 0 {
        // reported as FrameError::ZeroLength; two bytes cannot shift anything after them
        return false;
    }
    match body.get(..len) {
        Some(message) if !is_message_shaped(message) => {
            !sound_at(bytes, offset + 2 + len, RESYNC_FRAMES - 1)
        }
        // a whole message, or a truncated tail (reported as such)
        _ => false,
    }
}

/// True if the `frames` frames from `offset` are ITCH messages of the right length, or all
/// the frames up to the end are and the stream ends exactly after one.
pub fn sound_at(bytes: &[u8], offset: usize, frames: usize) -> bool {
    let Some(rest) = bytes.get(offset..) else {
        return false;
    };
    let mut it = Frames::new(rest);
    for _ in 0..frames {
        match it.next() {
            None => return true,
            Some(Ok(message)) if is_message_shaped(message) => {}
            Some(_) => return false,
        }
    }
    true
}

/// The outcome of [`find_framing`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resync {
    /// Framing is sound again from this offset.
    At(usize),
    /// Nothing sound up to here yet; scan on from this offset.
    Scanning(usize),
    /// No sound frame before the end of the stream.
    End,
}

/// Looks for the first offset in `from..from + budget` where framing is sound again:
/// [`RESYNC_FRAMES`] message-shaped frames in a row (or up to the end of the stream). Bounded
/// by `budget` bytes so a busy loop can scan a long damaged stretch a piece at a time.
pub fn find_framing(bytes: &[u8], from: usize, budget: usize) -> Resync {
    let stop = from.saturating_add(budget).min(bytes.len());
    for offset in from..stop {
        if sound_at(bytes, offset, RESYNC_FRAMES) {
            return Resync::At(offset);
        }
    }
    if stop >= bytes.len() {
        Resync::End
    } else {
        Resync::Scanning(stop)
    }
}

/// Where reading resumes after framing was lost at `lost_at`: the next sound offset, or the end
/// of the stream. Unbounded [`find_framing`], for offline readers.
pub fn resume_after_loss(bytes: &[u8], lost_at: usize) -> usize {
    match find_framing(bytes, lost_at.saturating_add(1), usize::MAX) {
        Resync::At(offset) => offset,
        Resync::Scanning(_) | Resync::End => bytes.len(),
    }
}

/// Why a BinaryFILE could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The file could not be opened or its size read.
    #[error("cannot open ITCH file {}: {source} (check the path and its permissions)", path.display())]
    Open {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file opened but could not be memory-mapped.
    #[error("cannot memory-map ITCH file {}: {source} (is it a regular file?)", path.display())]
    Map {
        /// The path given.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

/// A BinaryFILE mapped read-only into memory.
#[derive(Debug)]
pub struct BinaryFile {
    /// `None` for an empty file: a zero-length mapping is not allowed.
    map: Option<Mmap>,
}

impl BinaryFile {
    /// Opens and maps `path`. An empty file is fine (it has no frames).
    ///
    /// The mapping assumes the file is not truncated or rewritten while it is open, which holds
    /// for NASDAQ's daily files and for the generator's output once written. Reading a file
    /// that another process is still appending to is fine: only the bytes present at `open`
    /// are seen.
    ///
    /// # Errors
    /// [`OpenError::Open`] if the file cannot be opened or its size read, [`OpenError::Map`]
    /// if it cannot be mapped (a directory, say). Both name the path.
    pub fn open(path: impl AsRef<Path>) -> Result<BinaryFile, OpenError> {
        let path = path.as_ref();
        let open_err = |source| OpenError::Open {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        if len == 0 {
            return Ok(BinaryFile { map: None });
        }
        // The map is read-only and private to this process. memmap2 requires that the
        // underlying file is not modified or truncated while mapped, since the mapped bytes
        // are handed out as `&[u8]`.
        // SAFETY: this type is only used on finished capture files (documented above).
        let map = unsafe { Mmap::map(&file) }.map_err(|source| OpenError::Map {
            path: path.to_path_buf(),
            source,
        })?;
        #[cfg(unix)]
        {
            // Only a hint for read-ahead; failing to give it changes nothing else.
            let _ = map.advise(memmap2::Advice::Sequential);
        }
        Ok(BinaryFile { map: Some(map) })
    }

    /// The whole file.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// The file's frames.
    pub fn frames(&self) -> Frames<'_> {
        Frames::new(self.bytes())
    }

    /// The file's size in bytes.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether the file is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes `message` as one frame: its length as a big-endian `u16`, then its bytes.
///
/// # Errors
/// [`io::ErrorKind::InvalidInput`] (writing nothing) if `message` is empty, since readers
/// reject zero-length frames, or longer than `u16::MAX` bytes; otherwise any error of `out`.
pub fn write_frame<W: io::Write>(out: &mut W, message: &[u8]) -> io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "message of {} bytes does not fit a BinaryFILE frame (at most {} bytes)",
                message.len(),
                u16::MAX
            ),
        )
    })?;
    if len == 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty message: a zero-length BinaryFILE frame is rejected by readers",
        ));
    }
    out.write_all(&len.to_be_bytes())?;
    out.write_all(message)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn framed(messages: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for m in messages {
            write_frame(&mut out, m).expect("frame fits");
        }
        out
    }

    /// A path in the temp dir unique to this process and call; removed on drop.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(tag: &str) -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let n = N.fetch_add(1, Ordering::Relaxed);
            TempPath(std::env::temp_dir().join(format!(
                "pinbook-feed-{tag}-{}-{n}.itch",
                std::process::id()
            )))
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn feed_frames_splits_messages_in_order() {
        let bytes = framed(&[b"a", b"bc", &[7; 300]]);
        let frames: Vec<_> = Frames::new(&bytes).collect();
        assert_eq!(
            frames,
            vec![Ok(&b"a"[..]), Ok(&b"bc"[..]), Ok(&[7u8; 300][..])]
        );
    }

    #[test]
    fn feed_frames_are_sub_slices_of_the_input() {
        let bytes = framed(&[b"abc"]);
        let Some(Ok(frame)) = Frames::new(&bytes).next() else {
            panic!()
        };
        assert!(std::ptr::eq(frame.as_ptr(), bytes[2..].as_ptr()));
    }

    #[test]
    fn feed_frames_of_nothing_is_nothing() {
        assert_eq!(Frames::new(&[]).next(), None);
    }

    #[test]
    fn feed_frames_truncated_length_prefix() {
        let mut bytes = framed(&[b"ok"]);
        bytes.push(0);
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.next(), Some(Ok(&b"ok"[..])));
        assert_eq!(
            frames.next(),
            Some(Err(FrameError::Truncated {
                offset: 4,
                needed: 2,
                available: 1
            }))
        );
        assert_eq!(frames.next(), None);
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn feed_frames_truncated_body() {
        let bytes = [0x01, 0x00, 1, 2, 3];
        let mut frames = Frames::new(&bytes);
        assert_eq!(
            frames.next(),
            Some(Err(FrameError::Truncated {
                offset: 0,
                needed: 258,
                available: 5
            }))
        );
        assert_eq!(frames.next(), None);
    }

    #[test]
    fn feed_frames_zero_length_is_reported_and_skipped() {
        let mut bytes = framed(&[b"x"]);
        bytes.extend_from_slice(&[0, 0]);
        bytes.extend_from_slice(&framed(&[b"yz"]));
        let frames: Vec<_> = Frames::new(&bytes).collect();
        assert_eq!(
            frames,
            vec![
                Ok(&b"x"[..]),
                Err(FrameError::ZeroLength { offset: 3 }),
                Ok(&b"yz"[..])
            ]
        );
    }

    #[test]
    fn feed_frames_offset_tracks_position() {
        let bytes = framed(&[b"abc", b"d"]);
        let mut frames = Frames::new(&bytes);
        assert_eq!(frames.offset(), 0);
        frames.next();
        assert_eq!(frames.offset(), 5);
        frames.next();
        assert_eq!(frames.offset(), 8);
    }

    #[test]
    fn feed_frames_size_hint_bounds_the_count() {
        let bytes = framed(&[b"a", b"b", b"c"]);
        let (lo, hi) = Frames::new(&bytes).size_hint();
        assert!(lo <= 3 && hi.is_some_and(|hi| hi >= 3));
    }

    #[test]
    fn feed_write_frame_rejects_oversized_and_empty_messages() {
        let mut out = Vec::new();
        let big = vec![0u8; usize::from(u16::MAX) + 1];
        let err = write_frame(&mut out, &big).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("65536 bytes"), "{err}");
        let err = write_frame(&mut out, &[]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(out.is_empty());
        write_frame(&mut out, &big[..usize::from(u16::MAX)]).expect("max size fits");
        assert_eq!(out[..2], [0xFF, 0xFF]);
    }

    #[test]
    fn feed_binary_file_round_trips_through_a_temp_file() {
        let path = TempPath::new("roundtrip");
        let messages: Vec<Vec<u8>> = (1..=50u8).map(|n| vec![n; usize::from(n)]).collect();
        {
            let mut file = io::BufWriter::new(File::create(&path.0).expect("create temp file"));
            for m in &messages {
                write_frame(&mut file, m).expect("write frame");
            }
            file.flush().expect("flush");
        }
        let file = BinaryFile::open(&path.0).expect("open");
        let expected_len: usize = messages.iter().map(|m| m.len() + 2).sum();
        assert_eq!(file.len(), expected_len);
        assert!(!file.is_empty());
        let read: Vec<&[u8]> = file.frames().map(|f| f.expect("whole frame")).collect();
        assert_eq!(read.len(), messages.len());
        for (r, m) in read.iter().zip(&messages) {
            assert_eq!(r, m);
        }
    }

    #[test]
    fn feed_binary_file_empty_file_has_no_frames() {
        let path = TempPath::new("empty");
        File::create(&path.0).expect("create temp file");
        let file = BinaryFile::open(&path.0).expect("an empty file opens");
        assert_eq!(file.len(), 0);
        assert!(file.is_empty());
        assert_eq!(file.bytes(), &[] as &[u8]);
        assert_eq!(file.frames().next(), None);
    }

    #[test]
    fn feed_binary_file_missing_file_names_the_path() {
        let path = TempPath::new("missing");
        let err = BinaryFile::open(&path.0).unwrap_err();
        assert!(matches!(err, OpenError::Open { .. }));
        let msg = err.to_string();
        assert!(msg.contains(&*path.0.to_string_lossy()), "{msg}");
        assert!(msg.starts_with("cannot open"), "{msg}");
    }

    #[test]
    fn feed_binary_file_directory_is_an_error_not_a_panic() {
        let err = BinaryFile::open(std::env::temp_dir()).unwrap_err();
        assert!(
            err.to_string()
                .contains(&*std::env::temp_dir().to_string_lossy())
        );
    }
}

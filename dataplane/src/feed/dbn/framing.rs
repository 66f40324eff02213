//! [`FramingGuard`]: a DBN byte stream checked for framing before the `dbn` crate reads it.
//!
//! The crate trusts a stream's framing: it places each record right after the one before, as
//! the length byte of that one says, and reads it in place as a `#[repr(C)]` struct. A damaged
//! file with a record length that is not a multiple of 8 bytes (every DBN record is) misaligns
//! the records after it: the crate then panics on a debug assertion, and in a release build
//! reads misaligned structs (undefined behaviour). The guard sits between the (decompressed) file and the
//! decoder and passes the stream through unchanged, checking only the lengths at record
//! boundaries: the prelude (`DBN`, version, `u32` metadata length, to find the first record)
//! and each record's first byte (its length in 4-byte words). At the first length that would misalign or cannot hold a
//! record header, it ends the stream there with [`std::io::ErrorKind::InvalidData`], so the
//! decoder sees every sound record before it and reports an error instead of reading garbage.
//!
//! It decodes nothing: O(1) work per record, on bytes already in the reader's buffer.

use std::io::{self, Read};

/// Bytes before the metadata body: `DBN`, the version, the metadata length (`u32` LE).
const PRELUDE: usize = 8;

/// Every record's length is a multiple of this: the alignment of a record header.
const ALIGN: u64 = 8;

/// The smallest record: its header.
const HEADER: u64 = 16;

/// The `dbn` crate's decoder over `reader` (a DBN stream from its first byte, decompressed),
/// through a [`FramingGuard`], reading records as they are: `MboMsg` is the same in DBN
/// versions 1 to 3, and upgrading other records (refused anyway) runs the crate's `unwrap`s
/// on damaged ones.
///
/// # Errors
/// The metadata cannot be decoded.
pub fn guarded_decoder<R: Read>(
    reader: R,
) -> dbn::Result<dbn::decode::dbn::Decoder<FramingGuard<R>>> {
    dbn::decode::dbn::Decoder::with_upgrade_policy(
        FramingGuard::new(reader),
        dbn::VersionUpgradePolicy::AsIs,
    )
}

/// Passes a DBN stream through, ending it at the first framing that would misalign a record;
/// see the [module docs](self).
#[derive(Debug)]
pub struct FramingGuard<R> {
    inner: R,
    /// Prelude bytes seen so far (only the first [`PRELUDE`] matter).
    prelude: [u8; PRELUDE],
    seen: usize,
    /// Bytes left in the metadata body or the current record; 0 at a record boundary.
    left: u64,
    /// Why the stream was ended, once it was.
    broken: Option<String>,
}

impl<R: Read> FramingGuard<R> {
    /// Guards `inner`, a DBN stream from its first byte.
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            prelude: [0; PRELUDE],
            seen: 0,
            left: 0,
            broken: None,
        }
    }

    /// Walks `bytes`, just read; returns how many of them are soundly framed (all of them
    /// unless the framing broke in them).
    fn check(&mut self, bytes: &[u8]) -> usize {
        let mut at = 0;
        while at < bytes.len() {
            if self.seen < PRELUDE {
                self.prelude[self.seen] = bytes[at];
                self.seen += 1;
                at += 1;
                if self.seen == PRELUDE {
                    // the crate aligns the records after the metadata itself (recorded files
                    // have metadata of any length); only the records' own lengths matter
                    let [_, _, _, _, a, b, c, d] = self.prelude;
                    self.left = u64::from(u32::from_le_bytes([a, b, c, d]));
                }
                continue;
            }
            if self.left == 0 {
                let size = u64::from(bytes[at]) * 4;
                if size < HEADER || !size.is_multiple_of(ALIGN) {
                    self.broken = Some(format!(
                        "a record of {size} bytes (a damaged length) would misalign the records \
                         after it"
                    ));
                    return at;
                }
                self.left = size;
            }
            let take = self.left.min((bytes.len() - at) as u64);
            self.left -= take;
            at += take as usize;
        }
        at
    }
}

impl<R: Read> Read for FramingGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(why) = &self.broken {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the DBN framing is broken: {why}"),
            ));
        }
        let n = self.inner.read(buf)?;
        let sound = self.check(&buf[..n]);
        if sound == 0 && self.broken.is_some() {
            // nothing sound in this read: report now
            return self.read(buf);
        }
        Ok(sound)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(metadata: u32, records: &[u8]) -> Vec<u8> {
        let mut s = b"DBN\x03".to_vec();
        s.extend_from_slice(&metadata.to_le_bytes());
        s.extend(std::iter::repeat_n(0u8, metadata as usize));
        for &words in records {
            s.push(words);
            s.extend(std::iter::repeat_n(0u8, usize::from(words) * 4 - 1));
        }
        s
    }

    fn read_all(bytes: &[u8], chunk: usize) -> (Vec<u8>, Option<io::Error>) {
        let mut guard = FramingGuard::new(bytes);
        let mut out = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            match guard.read(&mut buf) {
                Ok(0) => return (out, None),
                Ok(n) => out.extend_from_slice(&buf[..n]),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn a_sound_stream_passes_unchanged_whatever_the_reads() {
        let s = stream(24, &[14, 14, 4, 14]);
        for chunk in [1, 3, 7, 8, 64, 4096] {
            let (out, err) = read_all(&s, chunk);
            assert!(err.is_none(), "chunk {chunk}: {err:?}");
            assert_eq!(out, s, "chunk {chunk}");
        }
    }

    #[test]
    fn a_misaligning_record_length_ends_the_stream_before_it() {
        let s = stream(24, &[14, 15, 14]);
        for chunk in [1, 5, 4096] {
            let (out, err) = read_all(&s, chunk);
            assert_eq!(
                out.len(),
                8 + 24 + 56,
                "chunk {chunk}: the sound record passes"
            );
            let err = err.expect("an error");
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("60 bytes"), "{err}");
        }
        let (out, err) = read_all(&stream(24, &[14, 2]), 4096);
        assert_eq!(out.len(), 8 + 24 + 56);
        assert!(err.is_some(), "a record shorter than its header");
    }

    #[test]
    fn metadata_of_any_length_passes() {
        // recorded files have metadata of 198 bytes: the crate realigns after it
        let s = stream(198, &[14, 14]);
        let (out, err) = read_all(&s, 100);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(out, s);
    }
}

//! Framing of application messages onto a DataChannel.
//!
//! Chromium fragments and can stall on DataChannel messages above 16 KiB
//! (and SCTP implementations disagree on larger ones), so every frame we send
//! is at most [`MAX_FRAME`] bytes. A message is split into chunks:
//!
//! ```text
//! frame = flags:u8 [total_len:u32 if FIRST] chunk
//! flags: FIRST = 1, LAST = 2 (a single-frame message has both)
//! ```
//!
//! The channel is reliable and ordered, so chunks of one message arrive
//! contiguously and need no message id. The reassembler enforces a maximum
//! message size declared up front (`total_len`), so a peer cannot make us
//! buffer more than that, and rejects any frame that breaks the sequence.

use std::fmt;

/// The largest frame put on a DataChannel, header included.
pub const MAX_FRAME: usize = 16 * 1024;
const FIRST: u8 = 1;
const LAST: u8 = 2;
const FIRST_HEADER: usize = 5;
const NEXT_HEADER: usize = 1;

/// A frame that breaks the framing rules. The connection should be dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    Empty,
    Oversize(usize),
    BadFlags(u8),
    /// A continuation frame with no message in progress.
    UnexpectedContinuation,
    /// A new message started before the previous one ended.
    UnexpectedFirst,
    /// The declared total length is above the limit.
    MessageTooLarge {
        declared: usize,
        max: usize,
    },
    /// The chunks did not add up to the declared length.
    LengthMismatch {
        declared: usize,
        got: usize,
    },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for FrameError {}

/// Splits `msg` into frames of at most [`MAX_FRAME`] bytes.
pub fn split(msg: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::with_capacity(msg.len() / (MAX_FRAME - NEXT_HEADER) + 1);
    let first_len = msg.len().min(MAX_FRAME - FIRST_HEADER);
    let mut flags = FIRST;
    if first_len == msg.len() {
        flags |= LAST;
    }
    let mut f = Vec::with_capacity(FIRST_HEADER + first_len);
    f.push(flags);
    f.extend_from_slice(&(msg.len() as u32).to_be_bytes());
    f.extend_from_slice(&msg[..first_len]);
    frames.push(f);
    let mut pos = first_len;
    while pos < msg.len() {
        let n = (msg.len() - pos).min(MAX_FRAME - NEXT_HEADER);
        let flags = if pos + n == msg.len() { LAST } else { 0 };
        let mut f = Vec::with_capacity(NEXT_HEADER + n);
        f.push(flags);
        f.extend_from_slice(&msg[pos..pos + n]);
        frames.push(f);
        pos += n;
    }
    frames
}

/// Reassembles frames from one ordered channel into messages.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    partial: Option<(usize, Vec<u8>)>,
}

impl Reassembler {
    /// `max_message`: the largest message accepted from this peer.
    pub fn new(max_message: usize) -> Reassembler {
        Reassembler { max_message, partial: None }
    }

    /// Feeds one frame; returns a whole message when this frame completes one.
    /// On error the partial message is discarded.
    pub fn push(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let r = self.push_inner(frame);
        if r.is_err() {
            self.partial = None;
        }
        r
    }

    fn push_inner(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, FrameError> {
        let (&flags, body) = frame.split_first().ok_or(FrameError::Empty)?;
        if frame.len() > MAX_FRAME {
            return Err(FrameError::Oversize(frame.len()));
        }
        if flags & !(FIRST | LAST) != 0 {
            return Err(FrameError::BadFlags(flags));
        }
        let chunk = if flags & FIRST != 0 {
            if self.partial.is_some() {
                return Err(FrameError::UnexpectedFirst);
            }
            if body.len() < 4 {
                return Err(FrameError::Empty);
            }
            let declared = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
            if declared > self.max_message {
                return Err(FrameError::MessageTooLarge { declared, max: self.max_message });
            }
            // Capacity is bounded by the checked declaration, not by the peer's whim.
            self.partial = Some((declared, Vec::with_capacity(declared)));
            &body[4..]
        } else {
            if self.partial.is_none() {
                return Err(FrameError::UnexpectedContinuation);
            }
            body
        };
        let Some((declared, buf)) = self.partial.as_mut() else {
            return Err(FrameError::UnexpectedContinuation);
        };
        let declared = *declared;
        if buf.len() + chunk.len() > declared {
            return Err(FrameError::LengthMismatch { declared, got: buf.len() + chunk.len() });
        }
        buf.extend_from_slice(chunk);
        if flags & LAST != 0 {
            let (_, buf) = self.partial.take().unwrap_or_default();
            if buf.len() != declared {
                return Err(FrameError::LengthMismatch { declared, got: buf.len() });
            }
            return Ok(Some(buf));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(len: usize) {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let frames = split(&msg);
        assert!(frames.iter().all(|f| f.len() <= MAX_FRAME));
        let mut r = Reassembler::new(2 * 1024 * 1024);
        let mut out = None;
        for (i, f) in frames.iter().enumerate() {
            let got = r.push(f).unwrap();
            if i + 1 < frames.len() {
                assert!(got.is_none());
            } else {
                out = got;
            }
        }
        assert_eq!(out.unwrap(), msg);
    }

    #[test]
    fn round_trips_at_the_boundaries() {
        for len in [0, 1, MAX_FRAME - 5, MAX_FRAME - 4, MAX_FRAME, 3 * MAX_FRAME + 7, 1024 * 1024] {
            round_trip(len);
        }
    }

    #[test]
    fn one_mib_is_65_frames() {
        assert_eq!(split(&vec![0; 1024 * 1024]).len(), 65);
    }

    #[test]
    fn rejects_broken_sequences() {
        let mut r = Reassembler::new(100);
        assert_eq!(r.push(&[]), Err(FrameError::Empty));
        assert_eq!(r.push(&[0, 1, 2]), Err(FrameError::UnexpectedContinuation));
        assert_eq!(r.push(&[8]), Err(FrameError::BadFlags(8)));
        assert_eq!(r.push(&[1, 0, 0, 1, 0]), Err(FrameError::MessageTooLarge { declared: 256, max: 100 }));
        assert_eq!(r.push(&[1, 0, 0, 0, 2, 9]), Ok(None));
        assert_eq!(r.push(&[1, 0, 0, 0, 2, 9]), Err(FrameError::UnexpectedFirst));
        // After an error the reassembler is clean again.
        assert_eq!(r.push(&[3, 0, 0, 0, 1, 7]), Ok(Some(vec![7])));
        assert_eq!(r.push(&[3, 0, 0, 0, 1, 7, 8]), Err(FrameError::LengthMismatch { declared: 1, got: 2 }));
        assert_eq!(r.push(&[1, 0, 0, 0, 3, 7]), Ok(None));
        assert_eq!(r.push(&[2, 8]), Err(FrameError::LengthMismatch { declared: 3, got: 2 }));
        assert!(r.push(&vec![0; MAX_FRAME + 1]).is_err());
    }
}

//! Frame Streams (the `fstrm` protocol that carries dnstap): length-prefixed data frames and the
//! control frames of the bidirectional handshake, both sides. Hand-written: the protocol is a
//! few big-endian integers (no maintained Rust crate does the bidirectional handshake), and
//! the tests below run each side against the other.
//!
//! Wire form (all integers are 32-bit big-endian):
//! - a data frame: its length (non-zero), then the payload;
//! - a control frame: an escape (length 0), the control frame's length, its type, then fields,
//!   each a field type (`CONTENT_TYPE` = 1), a length and the bytes.
//!
//! The writer (pixelguard) sends READY with its content type; the reader (the collector)
//! answers ACCEPT with the content types it takes; the writer sends START, then data frames,
//! and at the end STOP, which the reader answers with FINISH.

use std::io::{self, Read, Write};

/// ACCEPT: the reader takes one of the offered content types.
pub const CONTROL_ACCEPT: u32 = 0x01;
/// START: data frames follow.
pub const CONTROL_START: u32 = 0x02;
/// STOP: no more data frames.
pub const CONTROL_STOP: u32 = 0x03;
/// READY: the writer offers its content types.
pub const CONTROL_READY: u32 = 0x04;
/// FINISH: the reader saw STOP.
pub const CONTROL_FINISH: u32 = 0x05;
/// The one field type: a content type.
pub const FIELD_CONTENT_TYPE: u32 = 0x01;
/// dnstap's content type.
pub const DNSTAP_CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";
/// The largest control frame accepted (fstrm's own limit).
pub const MAX_CONTROL_LEN: u32 = 512;
/// The largest data frame a [`Reader`] accepts.
pub const MAX_DATA_LEN: u32 = 1 << 20;

/// One frame as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A data frame's payload.
    Data(Vec<u8>),
    /// A control frame: its type and content types.
    Control(u32, Vec<Vec<u8>>),
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

/// Writes a control frame of `kind` carrying `content_types`.
pub fn write_control(w: &mut impl Write, kind: u32, content_types: &[&[u8]]) -> io::Result<()> {
    let body: usize = 4 + content_types.iter().map(|c| 8 + c.len()).sum::<usize>();
    let len = u32::try_from(body)
        .ok()
        .filter(|&l| l <= MAX_CONTROL_LEN)
        .ok_or_else(|| bad("control frame too long"))?;
    let mut buf = Vec::with_capacity(8 + body);
    buf.extend_from_slice(&0u32.to_be_bytes());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&kind.to_be_bytes());
    for c in content_types {
        buf.extend_from_slice(&FIELD_CONTENT_TYPE.to_be_bytes());
        buf.extend_from_slice(&(c.len() as u32).to_be_bytes());
        buf.extend_from_slice(c);
    }
    w.write_all(&buf)
}

/// Writes a data frame (`payload` must not be empty: length 0 is the control escape).
pub fn write_data(w: &mut impl Write, payload: &[u8]) -> io::Result<()> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l > 0)
        .ok_or_else(|| bad("data frame empty or too long"))?;
    w.write_all(&len.to_be_bytes())?;
    w.write_all(payload)
}

/// Reads one frame; data frames longer than `max_data` are an error (never a huge allocation).
pub fn read_frame(r: &mut impl Read, max_data: u32) -> io::Result<Frame> {
    let len = read_u32(r)?;
    if len > 0 {
        if len > max_data {
            return Err(bad(format!("data frame of {len} bytes (limit {max_data})")));
        }
        let mut b = vec![0u8; len as usize];
        r.read_exact(&mut b)?;
        return Ok(Frame::Data(b));
    }
    let clen = read_u32(r)?;
    if !(4..=MAX_CONTROL_LEN).contains(&clen) {
        return Err(bad(format!("control frame of {clen} bytes")));
    }
    let mut body = vec![0u8; clen as usize];
    r.read_exact(&mut body)?;
    let mut s: &[u8] = &body;
    let kind = read_u32(&mut s)?;
    let mut types = Vec::new();
    while !s.is_empty() {
        let field = read_u32(&mut s)?;
        let flen = read_u32(&mut s)? as usize;
        if flen > s.len() {
            return Err(bad("control field longer than its frame"));
        }
        let (v, rest) = s.split_at(flen);
        if field == FIELD_CONTENT_TYPE {
            types.push(v.to_vec());
        }
        s = rest;
    }
    Ok(Frame::Control(kind, types))
}

fn expect_control(r: &mut impl Read, want: u32) -> io::Result<Vec<Vec<u8>>> {
    match read_frame(r, MAX_CONTROL_LEN)? {
        Frame::Control(k, t) if k == want => Ok(t),
        Frame::Control(k, _) => Err(bad(format!("expected control frame {want:#x}, got {k:#x}"))),
        Frame::Data(_) => Err(bad(format!("expected control frame {want:#x}, got data"))),
    }
}

/// The writer's side of the handshake on `s`: READY, wait for ACCEPT of `content_type`, START.
/// `s` should have read and write timeouts set, so that a collector that accepts the connection
/// and never answers fails the handshake instead of hanging it.
pub fn open_writer<S: Read + Write>(s: &mut S, content_type: &[u8]) -> io::Result<()> {
    write_control(s, CONTROL_READY, &[content_type])?;
    s.flush()?;
    let accepted = expect_control(s, CONTROL_ACCEPT)?;
    if !accepted.iter().any(|t| t == content_type) {
        return Err(bad(format!(
            "the collector does not accept {}",
            String::from_utf8_lossy(content_type)
        )));
    }
    write_control(s, CONTROL_START, &[content_type])?;
    s.flush()
}

/// The writer's end: STOP, then wait for FINISH.
pub fn close_writer<S: Read + Write>(s: &mut S) -> io::Result<()> {
    write_control(s, CONTROL_STOP, &[])?;
    s.flush()?;
    expect_control(s, CONTROL_FINISH).map(|_| ())
}

/// The reader's (collector's) side, for tests and tools: handshake, then data frames until STOP.
#[derive(Debug)]
pub struct Reader<S> {
    s: S,
    finished: bool,
}

impl<S: Read + Write> Reader<S> {
    /// Reads READY (which must offer `content_type`), answers ACCEPT, reads START.
    pub fn accept(mut s: S, content_type: &[u8]) -> io::Result<Self> {
        let offered = expect_control(&mut s, CONTROL_READY)?;
        if !offered.iter().any(|t| t == content_type) {
            return Err(bad("READY does not offer the content type"));
        }
        write_control(&mut s, CONTROL_ACCEPT, &[content_type])?;
        s.flush()?;
        expect_control(&mut s, CONTROL_START)?;
        Ok(Self { s, finished: false })
    }

    /// The next data frame; `Ok(None)` after STOP (answered with FINISH).
    pub fn next_frame(&mut self) -> io::Result<Option<Vec<u8>>> {
        if self.finished {
            return Ok(None);
        }
        match read_frame(&mut self.s, MAX_DATA_LEN)? {
            Frame::Data(d) => Ok(Some(d)),
            Frame::Control(CONTROL_STOP, _) => {
                self.finished = true;
                write_control(&mut self.s, CONTROL_FINISH, &[])?;
                self.s.flush()?;
                Ok(None)
            }
            Frame::Control(k, _) => Err(bad(format!("unexpected control frame {k:#x}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn handshake_data_and_stop_between_both_sides() {
        let (mut w, r) = UnixStream::pair().unwrap();
        let reader = std::thread::spawn(move || {
            let mut rd = Reader::accept(r, DNSTAP_CONTENT_TYPE).unwrap();
            let mut got = Vec::new();
            while let Some(f) = rd.next_frame().unwrap() {
                got.push(f);
            }
            got
        });
        open_writer(&mut w, DNSTAP_CONTENT_TYPE).unwrap();
        write_data(&mut w, b"one").unwrap();
        write_data(&mut w, &[7u8; 3000]).unwrap();
        close_writer(&mut w).unwrap();
        let got = reader.join().unwrap();
        assert_eq!(got, vec![b"one".to_vec(), vec![7u8; 3000]]);
    }

    /// The exact bytes of READY, as fstrm writes them.
    #[test]
    fn ready_frame_bytes() {
        let mut b = Vec::new();
        write_control(&mut b, CONTROL_READY, &[DNSTAP_CONTENT_TYPE]).unwrap();
        let mut want = vec![0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 22];
        want.extend_from_slice(DNSTAP_CONTENT_TYPE);
        assert_eq!(b, want);
        assert_eq!(
            read_frame(&mut &b[..], 16).unwrap(),
            Frame::Control(CONTROL_READY, vec![DNSTAP_CONTENT_TYPE.to_vec()])
        );
    }

    #[test]
    fn a_collector_of_another_type_is_refused() {
        let (mut w, mut r) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            expect_control(&mut r, CONTROL_READY).unwrap();
            write_control(&mut r, CONTROL_ACCEPT, &[b"protobuf:other"]).unwrap();
        });
        assert!(open_writer(&mut w, DNSTAP_CONTENT_TYPE).is_err());
        t.join().unwrap();
    }

    #[test]
    fn hostile_lengths_are_errors_not_allocations() {
        let huge = (MAX_DATA_LEN + 1).to_be_bytes();
        assert!(read_frame(&mut &huge[..], MAX_DATA_LEN).is_err());
        let ctl = [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(&mut &ctl[..], MAX_DATA_LEN).is_err());
        // A field claiming more bytes than its frame holds.
        let mut f = vec![0, 0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 1, 0];
        f.extend_from_slice(&[0; 4]);
        assert!(read_frame(&mut &f[..], MAX_DATA_LEN).is_err());
        assert!(read_frame(&mut &[0u8, 0][..], MAX_DATA_LEN).is_err());
    }
}

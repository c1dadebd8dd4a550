//! Reading a DNS message's bytes as they are, for tests that check the wire itself (which
//! hickory's decoder would hide: compression, TTL offsets, the OPT's raw fields).

/// One resource record of a message: where its fixed fields start (type, class, TTL, rdlength,
/// right after the owner name) and its type.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt {
    /// Offset of the TYPE field.
    pub fixed: usize,
    /// The record's type (41 = OPT).
    pub rtype: u16,
    /// Offset of the RDATA.
    pub rdata: usize,
    /// RDATA length.
    pub rdlen: usize,
}

fn be16(b: &[u8], i: usize) -> usize {
    usize::from(u16::from_be_bytes([b[i], b[i + 1]]))
}

fn skip_name(b: &[u8], mut i: usize) -> usize {
    loop {
        let l = b[i];
        if l == 0 {
            return i + 1;
        }
        if l & 0xc0 == 0xc0 {
            return i + 2;
        }
        i += 1 + usize::from(l);
    }
}

/// Every record of the answer, authority and additional sections, in order; panics (failing the
/// test) when the message does not end where its counts say.
pub fn records(b: &[u8]) -> Vec<RecordAt> {
    let mut i = 12;
    for _ in 0..be16(b, 4) {
        i = skip_name(b, i) + 4;
    }
    let mut out = Vec::new();
    for _ in 0..be16(b, 6) + be16(b, 8) + be16(b, 10) {
        let fixed = skip_name(b, i);
        let rdlen = be16(b, fixed + 8);
        out.push(RecordAt {
            fixed,
            rtype: be16(b, fixed) as u16,
            rdata: fixed + 10,
            rdlen,
        });
        i = fixed + 10 + rdlen;
    }
    assert_eq!(i, b.len(), "the message ends where its counts say");
    out
}

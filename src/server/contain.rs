//! Panic containment for the listeners: a bug that panics while one query is answered loses
//! that query, never a UDP receive thread, a connection or the process.
//!
//! [`Containment::run`] (the receive thread's per-packet work) and [`Containment::run_async`]
//! (a full-path or TCP query task) catch the unwind, count it in
//! `pixelguard_internal_errors_total{kind}` and log it with `tracing::error!` at most once per
//! [`LOG_EVERY`] (with the number of panics not logged since), so that a packet that triggers a
//! bug cannot flood the log either. Inside a contained section the process panic hook does not
//! print (the default hook would write every panic to stderr); it hands the panic's message and
//! location to the rate-limited log line instead. Panics anywhere else go to the previous hook.
//!
//! Unwind safety (`AssertUnwindSafe`): the state a query touches is atomics, locks whose
//! poisoning the code tolerates (`lock().unwrap_or_else(into_inner)` throughout), reference
//! counts, and the receive thread's reused output buffer, which the caller clears after a panic.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use prometheus::IntCounter;

use crate::metrics::Metrics;

/// Shortest time between two log lines about contained panics.
pub const LOG_EVERY: Duration = Duration::from_secs(60);

/// Where a panic was contained: the `kind` label of `pixelguard_internal_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Where {
    /// A UDP receive thread, running the fast path on a datagram.
    UdpFastPath,
    /// A UDP query task on the full path.
    UdpFullPath,
    /// A TCP query task.
    Tcp,
}

impl Where {
    /// The label value (one of `metrics::INTERNAL_ERROR_KINDS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UdpFastPath => "udp_fast_path",
            Self::UdpFullPath => "udp_full_path",
            Self::Tcp => "tcp",
        }
    }
}

thread_local! {
    /// True while this thread runs contained work (then the panic hook stays quiet).
    static CONTAINED: Cell<bool> = const { Cell::new(false) };
    /// The last contained panic's text (location and message), left by the hook.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Sets [`CONTAINED`] for its lifetime, restoring the previous value (also while unwinding).
struct Flag(bool);

impl Flag {
    fn set() -> Self {
        Flag(CONTAINED.with(|c| c.replace(true)))
    }
}

impl Drop for Flag {
    fn drop(&mut self) {
        CONTAINED.with(|c| c.set(self.0));
    }
}

/// Installs (once per process) the hook that keeps contained panics off stderr.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CONTAINED.with(Cell::get) {
                let text = info.to_string();
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                previous(info);
            }
        }));
    });
}

/// Counts and logs contained panics; cheap to clone (one per listener task or thread).
#[derive(Clone)]
pub struct Containment(Arc<Inner>);

struct Inner {
    /// One counter per [`Where`], in declaration order.
    counters: [IntCounter; 3],
    /// When the last log line was written.
    last_log: Mutex<Option<Instant>>,
    /// Panics contained since the last log line that were not logged.
    suppressed: Mutex<u64>,
}

impl Containment {
    /// Counting into `metrics` (whose series are registered at 0 from the start).
    pub fn new(metrics: &Metrics) -> Self {
        install_hook();
        let c = |w: Where| metrics.internal_errors.with_label_values(&[w.as_str()]);
        Containment(Arc::new(Inner {
            counters: [c(Where::UdpFastPath), c(Where::UdpFullPath), c(Where::Tcp)],
            last_log: Mutex::new(None),
            suppressed: Mutex::new(0),
        }))
    }

    /// Runs `f`; `None` when it panicked (counted and logged).
    pub fn run<R>(&self, place: Where, f: impl FnOnce() -> R) -> Option<R> {
        let flag = Flag::set();
        let result = std::panic::catch_unwind(AssertUnwindSafe(f));
        drop(flag);
        match result {
            Ok(r) => Some(r),
            Err(payload) => {
                self.contained(place, payload);
                None
            }
        }
    }

    /// Runs `fut`; `None` when a poll of it panicked (counted and logged; the future is dropped).
    pub async fn run_async<F: Future>(&self, place: Where, fut: F) -> Option<F::Output> {
        match AssertUnwindSafe(Flagged(Box::pin(fut)))
            .catch_unwind()
            .await
        {
            Ok(r) => Some(r),
            Err(payload) => {
                self.contained(place, payload);
                None
            }
        }
    }

    fn contained(&self, place: Where, payload: Box<dyn Any + Send>) {
        self.0.counters[place as usize].inc();
        let text = LAST_PANIC
            .with(|p| p.borrow_mut().take())
            .unwrap_or_else(|| payload_text(payload.as_ref()));
        // Dropping a payload runs foreign code: keep a panic there contained too.
        let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(payload)));
        if let Some(suppressed) = self.may_log(Instant::now()) {
            tracing::error!(
                kind = place.as_str(),
                not_logged_since_last = suppressed,
                "internal error: a panic while answering a query; that query is lost, the listener goes on (pixelguard_internal_errors_total counts every one; this line is written at most once a minute): {text}"
            );
        }
    }

    /// Whether a contained panic at `now` is logged: `Some(panics not logged since the last
    /// line)` at most once per [`LOG_EVERY`], `None` (and counted as not logged) otherwise.
    fn may_log(&self, now: Instant) -> Option<u64> {
        let mut last = self
            .0
            .last_log
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut suppressed = self
            .0
            .suppressed
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| now.saturating_duration_since(t) < LOG_EVERY) {
            *suppressed += 1;
            return None;
        }
        *last = Some(now);
        Some(std::mem::take(&mut *suppressed))
    }
}

/// A future whose polls run with [`CONTAINED`] set.
struct Flagged<F>(Pin<Box<F>>);

impl<F: Future> Future for Flagged<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _flag = Flag::set();
        self.0.as_mut().poll(cx)
    }
}

/// The message of a panic payload (`panic!` gives a `&str` or a `String`).
fn payload_text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

/// A SERVFAIL for the query in `request`, built from its bytes alone (no parser that could
/// itself be the bug): the id, opcode, RD and CD copied, QR and RA set, and the question copied
/// when it is one plain (uncompressed) question, as every query's is. `None` for something that
/// is not a query (QR set, or shorter than a header): a response is never answered.
pub fn servfail(request: &[u8]) -> Option<Vec<u8>> {
    let header = request.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(request.len().min(512));
    out.extend_from_slice(&header[..2]);
    // QR=1, the opcode and RD of the request; RA=1, CD of the request, RCODE=2 (SERVFAIL).
    out.push(0x80 | (header[2] & 0x79));
    out.push(0x80 | (header[3] & 0x10) | 2);
    let question = if u16::from_be_bytes([header[4], header[5]]) == 1 {
        question_len(request.get(12..)?).and_then(|n| request.get(12..12 + n))
    } else {
        None
    };
    out.extend_from_slice(&[0, u8::from(question.is_some()), 0, 0, 0, 0, 0, 0]);
    if let Some(q) = question {
        out.extend_from_slice(q);
    }
    Some(out)
}

/// Length of a question (name, type, class) at the start of `b`: labels of at most 63 bytes,
/// a name of at most 255, no compression pointer.
fn question_len(b: &[u8]) -> Option<usize> {
    let mut i = 0usize;
    loop {
        let len = usize::from(*b.get(i)?);
        if len == 0 {
            break;
        }
        if len > 63 {
            return None;
        }
        i += 1 + len;
        if i > 255 {
            return None;
        }
    }
    let n = i + 1 + 4;
    (n <= b.len()).then_some(n)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn count(m: &Metrics, w: Where) -> u64 {
        Metrics::counter_value(&m.internal_errors, &[w.as_str()])
    }

    /// The wrapper the listeners use, on closures that panic: the panic is contained, counted
    /// under its kind, and the same thread goes on to the next piece of work.
    #[test]
    fn a_panic_is_contained_counted_and_the_thread_goes_on() {
        let m = Metrics::new();
        let c = Containment::new(&m);
        let thread = std::thread::current().id();
        let mut out = vec![1u8, 2, 3];
        for i in 0..5u32 {
            let got = c.run(Where::UdpFastPath, || {
                out.push(9);
                if i % 2 == 0 {
                    panic!("bug on packet {i}");
                }
                i
            });
            if got.is_none() {
                out.clear();
            }
            assert_eq!(got, (i % 2 == 1).then_some(i));
            assert_eq!(std::thread::current().id(), thread);
        }
        assert_eq!(count(&m, Where::UdpFastPath), 3);
        assert_eq!(count(&m, Where::UdpFullPath), 0);
        assert_eq!(c.run(Where::Tcp, || 7), Some(7));
        assert_eq!(count(&m, Where::Tcp), 0);
        // The flag is reset after a panic: a panic outside containment is not swallowed.
        assert!(!CONTAINED.with(Cell::get));
        assert!(
            m.render()
                .contains("pixelguard_internal_errors_total{kind=\"tcp\"} 0")
        );
    }

    #[tokio::test]
    async fn a_panicking_task_loses_only_its_own_query() {
        let m = Metrics::new();
        let c = Containment::new(&m);
        let got = c
            .run_async(Where::UdpFullPath, async {
                tokio::task::yield_now().await;
                panic!("bug after an await");
            })
            .await;
        assert_eq!(got, None::<()>);
        let got = c
            .run_async(Where::Tcp, async {
                panic!("{}", String::from("bug in a TCP query"));
            })
            .await;
        assert_eq!(got, None::<()>);
        assert_eq!(c.run_async(Where::Tcp, async { 5 }).await, Some(5));
        assert_eq!(count(&m, Where::UdpFullPath), 1);
        assert_eq!(count(&m, Where::Tcp), 1);
        assert!(!CONTAINED.with(Cell::get));
    }

    #[test]
    fn the_log_line_is_written_at_most_once_a_minute() {
        let c = Containment::new(&Metrics::new());
        let t = Instant::now();
        assert_eq!(c.may_log(t), Some(0));
        assert_eq!(c.may_log(t + Duration::from_secs(1)), None);
        assert_eq!(c.may_log(t + Duration::from_secs(59)), None);
        assert_eq!(c.may_log(t + Duration::from_secs(60)), Some(2));
        assert_eq!(c.may_log(t + Duration::from_secs(61)), None);
    }

    #[test]
    fn servfail_is_built_from_the_request_alone() {
        // id 0x1234, RD=1, CD=1, one question example.org A IN, and an OPT record after it.
        let mut q = vec![0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 1];
        q.extend_from_slice(b"\x07example\x03org\x00\x00\x01\x00\x01");
        q.extend_from_slice(&[0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0]);
        let r = servfail(&q).unwrap();
        assert_eq!(&r[..4], &[0x12, 0x34, 0x81, 0x92]);
        assert_eq!(&r[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&r[12..], b"\x07example\x03org\x00\x00\x01\x00\x01");
        let m = hickory_proto::op::Message::from_vec(&r).unwrap();
        assert_eq!(
            m.metadata.response_code,
            hickory_proto::op::ResponseCode::ServFail
        );
        assert_eq!(m.queries.len(), 1);
        // A response is never answered; a short packet neither.
        let mut resp = q.clone();
        resp[2] |= 0x80;
        assert_eq!(servfail(&resp), None);
        assert_eq!(servfail(&q[..11]), None);
        // A broken question: header only.
        let r = servfail(&q[..20]).unwrap();
        assert_eq!(r.len(), 12);
        assert_eq!(&r[4..6], &[0, 0]);
        let mut ptr = q[..12].to_vec();
        ptr.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        assert_eq!(servfail(&ptr).unwrap().len(), 12);
    }
}

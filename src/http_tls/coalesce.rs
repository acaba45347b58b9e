//! One write per small HTTP request: ureq's head and body leave together.
//!
//! ureq transmits a request's head, then its body, as two writes. The
//! first wakes the peer (Jeedom's web server, Rocket.Chat) for half a
//! request, and on a busy box the peer's reader then runs before the body
//! is even written: measured on loopback, the body left about 80 µs after
//! the head, on the path of every callback POST and every `send`. A small
//! output is therefore held, and goes with the next one, or before the
//! transport waits for the answer: nothing stays held while ureq reads.
use std::fmt;
use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

/// Outputs up to this size are held for the next one (a request's head
/// and a JSON body; an upload's chunks are larger and go at once).
const HOLD_MAX: usize = 16 * 1024;

/// Wraps the chain's transport in [`Coalesce`].
#[derive(Debug)]
pub(super) struct Coalescing;

impl<In: Transport> Connector<In> for Coalescing {
    type Out = Coalesce<In>;

    fn connect(
        &self,
        _: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| Coalesce {
            inner,
            held: Vec::new(),
        }))
    }
}

/// A transport whose small outputs wait for the next output or read.
pub(crate) struct Coalesce<T> {
    inner: T,
    /// Output given to [`Transport::transmit_output`], not written yet.
    held: Vec<u8>,
}

impl<T> fmt::Debug for Coalesce<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Coalesce({} bytes held)", self.held.len())
    }
}

impl<T: Transport> Coalesce<T> {
    /// Writes the held bytes (alone: the output buffer holds nothing else).
    fn flush(&mut self, timeout: NextTimeout) -> Result<(), ureq::Error> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        let mut sent = 0;
        while sent < held.len() {
            let out = self.inner.buffers().output();
            let n = (held.len() - sent).min(out.len());
            out[..n].copy_from_slice(&held[sent..sent + n]);
            self.inner.transmit_output(n, timeout)?;
            sent += n;
        }
        self.held = held;
        self.held.clear();
        Ok(())
    }
}

impl<T: Transport> Transport for Coalesce<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let held = self.held.len();
        let out = self.inner.buffers().output();
        if held + amount <= HOLD_MAX {
            self.held.extend_from_slice(&out[..amount]);
            return Ok(());
        }
        if held + amount <= out.len() {
            // The held bytes go in front, in one write.
            out.copy_within(..amount, held);
            out[..held].copy_from_slice(&self.held);
            self.held.clear();
            return self.inner.transmit_output(held + amount, timeout);
        }
        // Too large to join (an upload's first chunk): the held bytes first.
        let chunk = out[..amount].to_vec();
        self.flush(timeout)?;
        self.inner.buffers().output()[..amount].copy_from_slice(&chunk);
        self.inner.transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.flush(timeout)?;
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use ureq::unversioned::transport::LazyBuffers;

    /// Records each write; answers reads with nothing.
    #[derive(Debug)]
    struct Recorder {
        buffers: LazyBuffers,
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
        reads: Arc<Mutex<usize>>,
    }

    impl Transport for Recorder {
        fn buffers(&mut self) -> &mut dyn Buffers {
            &mut self.buffers
        }
        fn transmit_output(&mut self, amount: usize, _: NextTimeout) -> Result<(), ureq::Error> {
            let data = self.buffers.output()[..amount].to_vec();
            self.writes.lock().unwrap().push(data);
            Ok(())
        }
        fn await_input(&mut self, _: NextTimeout) -> Result<bool, ureq::Error> {
            *self.reads.lock().unwrap() += 1;
            Ok(false)
        }
        fn is_open(&mut self) -> bool {
            true
        }
    }

    type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

    fn rig(output: usize) -> (Coalesce<Recorder>, Writes) {
        let writes = Writes::default();
        let inner = Recorder {
            buffers: LazyBuffers::new(1024, output),
            writes: writes.clone(),
            reads: Arc::default(),
        };
        let c = Coalesce {
            inner,
            held: Vec::new(),
        };
        (c, writes)
    }

    fn timeout() -> NextTimeout {
        NextTimeout::default()
    }

    /// What ureq does: write into the output buffer, then transmit it.
    fn put(c: &mut Coalesce<Recorder>, data: &[u8]) {
        c.buffers().output()[..data.len()].copy_from_slice(data);
        c.transmit_output(data.len(), timeout()).unwrap();
    }

    #[test]
    fn head_and_body_leave_in_one_write_before_the_answer_is_read() {
        let (mut c, writes) = rig(64 * 1024);
        put(&mut c, b"POST /x HTTP/1.1\r\n\r\n");
        put(&mut c, b"{\"a\":1}");
        assert!(writes.lock().unwrap().is_empty(), "held until the read");
        c.await_input(timeout()).unwrap();
        let w = writes.lock().unwrap().clone();
        assert_eq!(w, vec![b"POST /x HTTP/1.1\r\n\r\n{\"a\":1}".to_vec()]);
        assert_eq!(*c.inner.reads.lock().unwrap(), 1);
        c.maybe_await_input(timeout()).unwrap();
        assert_eq!(writes.lock().unwrap().len(), 1, "nothing more to write");
    }

    #[test]
    fn a_large_chunk_takes_the_held_head_along_or_after_it_in_order() {
        for output in [64 * 1024, 19 * 1024 + 2] {
            let (mut c, writes) = rig(output);
            put(&mut c, b"HEAD");
            let chunk = vec![b'x'; 19 * 1024];
            put(&mut c, &chunk);
            put(&mut c, b"tail");
            c.await_input(timeout()).unwrap();
            let all: Vec<u8> = writes.lock().unwrap().concat();
            let mut want = b"HEAD".to_vec();
            want.extend_from_slice(&chunk);
            want.extend_from_slice(b"tail");
            assert_eq!(all, want, "output buffer of {output}");
        }
    }
}

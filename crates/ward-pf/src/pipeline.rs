//! Overlaps output I/O with node crypto: a dedicated thread performs the writes while the caller
//! prepares the next batch. Writing a fresh file costs the kernel more than AES-GCM costs us, so
//! without this the crypto workers would sit idle during every write.

use crate::error::{Error, Result};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use zeroize::Zeroize;

/// Batches in flight between producer and writer (beyond the one being filled).
const DEPTH: usize = 2;

/// The producer's end: hands buffers to the writer and gets used ones back.
pub(crate) struct Writer<'f> {
    failed: &'f AtomicBool,
    jobs: SyncSender<(Vec<u8>, u64)>,
    recycled: Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
}

impl Writer<'_> {
    /// A buffer of `len` bytes (contents unspecified), recycled when possible.
    pub(crate) fn buffer(&mut self, len: usize) -> Vec<u8> {
        let mut buf = self
            .spare
            .pop()
            .or_else(|| self.recycled.try_recv().ok())
            .unwrap_or_default();
        buf.resize(len, 0);
        buf
    }

    /// Queues `buf` to be written at `offset`; fails only if the writer has stopped on an
    /// error, which is returned when the pipeline finishes.
    pub(crate) fn send(&mut self, buf: Vec<u8>, offset: u64) -> Result<()> {
        let stopped = || Error::Io {
            context: "writing the output",
            source: io::Error::other("the writer stopped"),
        };
        if self.failed.load(Ordering::Relaxed) {
            return Err(stopped());
        }
        // Keep a few buffers circulating without waiting on the writer.
        if let Ok(b) = self.recycled.try_recv() {
            self.spare.push(b);
        }
        self.jobs.send((buf, offset)).map_err(|_| stopped())
    }
}

/// Runs `produce` while another thread writes what it sends with `write(bytes, offset)`.
/// Buffers are zeroized before they are freed, as they may have held plaintext.
pub(crate) fn with_writer<T>(
    mut write: impl FnMut(&[u8], u64) -> io::Result<()> + Send,
    context: &'static str,
    produce: impl FnOnce(&mut Writer<'_>) -> Result<T>,
) -> Result<T> {
    let (job_tx, job_rx) = sync_channel::<(Vec<u8>, u64)>(DEPTH);
    let (back_tx, back_rx) = sync_channel::<Vec<u8>>(DEPTH + 2);
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let failed = &failed;
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut jobs = job_rx.iter();
            for (mut buf, offset) in jobs.by_ref() {
                let r = write(&buf, offset);
                buf.zeroize();
                if r.is_err() {
                    failed.store(true, Ordering::Relaxed);
                    // Wipe whatever else was queued until the producer notices.
                    for (mut b, _) in jobs {
                        b.zeroize();
                    }
                    return r;
                }
                if let Err(std::sync::mpsc::TrySendError::Full(mut b)) = back_tx.try_send(buf) {
                    b.zeroize();
                }
            }
            Ok(())
        });
        let mut w = Writer {
            failed,
            jobs: job_tx,
            recycled: back_rx,
            spare: Vec::new(),
        };
        let result = produce(&mut w);
        let Writer {
            failed: _,
            jobs,
            recycled,
            mut spare,
        } = w;
        drop(jobs);
        let written = writer.join().expect("the writer thread does not panic");
        spare.extend(recycled.try_iter());
        for b in &mut spare {
            b.zeroize();
        }
        // A producer error caused by a stopped writer is better explained by the writer's error.
        match (result, written) {
            (_, Err(source)) => Err(Error::Io { context, source }),
            (r, Ok(())) => r,
        }
    })
}

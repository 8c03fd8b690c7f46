//! The progress line a long run shows on a terminal.

use crate::recorder::Progress;
use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Redraw `heapscope: N events, X live, T s` on stderr every half second
/// once the run has taken a second, until `stop` closes; then clear it.
pub(crate) fn show(p: Arc<Progress>, stop: mpsc::Receiver<()>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut shown = false;
        while let Err(mpsc::RecvTimeoutError::Timeout) =
            stop.recv_timeout(Duration::from_millis(500))
        {
            if start.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let mut err = io::stderr().lock();
            let _ = write!(
                err,
                "\rheapscope: {} events, {} live, {:.1} s\x1b[K",
                p.events.load(Relaxed),
                p.live_bytes.load(Relaxed),
                start.elapsed().as_secs_f64()
            );
            let _ = err.flush();
            shown = true;
        }
        if shown {
            let _ = write!(io::stderr(), "\r\x1b[K");
        }
    })
}

//! The progress line a run shows on a terminal (through `indicatif`): the
//! phase, heap events and live bytes with units, invocations done of those
//! planned, and the event rate. Nothing is drawn when stderr is not a
//! terminal (indicatif checks), and the line is cleared when the run ends.

use crate::recorder::{Phase, Progress};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// Redraw the progress line on stderr every tenth of a second until
/// `stop` closes; then clear it. Returns the drawing thread and the line,
/// for the guest's output to clear it before writing ([`GuestOutput`]).
pub(crate) fn show(
    p: Arc<Progress>,
    stop: mpsc::Receiver<()>,
) -> (JoinHandle<()>, indicatif::ProgressBar) {
    let bar = indicatif::ProgressBar::with_draw_target(
        None,
        indicatif::ProgressDrawTarget::stderr_with_hz(20),
    );
    let line_bar = bar.clone();
    let thread = std::thread::spawn(move || {
        bar.set_style(
            indicatif::ProgressStyle::with_template("heapscope: {spinner} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
        );
        let start = Instant::now();
        // The rate counts from when the guest started running.
        let mut running_since: Option<Instant> = None;
        let mut shown: Option<(Phase, Instant)> = None;
        loop {
            let now = Instant::now();
            let phase = Phase::from_u8(p.phase.load(Relaxed));
            let events = p.events.load(Relaxed);
            if running_since.is_none() && phase == Phase::Running {
                running_since = Some(now);
            }
            // Redraw every tenth of a second, and at once when the phase
            // changes, so that even a short phase is seen.
            let due = shown.is_none_or(|(ph, at)| {
                ph != phase || now.duration_since(at) >= Duration::from_millis(100)
            });
            if due {
                let rate = running_since
                    .map(|t| now.duration_since(t).as_secs_f64())
                    .filter(|&dt| dt >= 0.2)
                    .map_or(0.0, |dt| events as f64 / dt);
                bar.set_message(line(&p, phase, events, rate, start.elapsed()));
                bar.tick();
                shown = Some((phase, now));
            }
            if !matches!(
                stop.recv_timeout(Duration::from_millis(20)),
                Err(mpsc::RecvTimeoutError::Timeout)
            ) {
                break;
            }
        }
        bar.finish_and_clear();
    });
    (thread, line_bar)
}

/// The guest's stdout or stderr while the progress line is shown: a write
/// clears the line first and redraws it after, so the guest's output never
/// lands on the spinner's line (stdout only when it is a terminal: a
/// redirected stdout shares no line with it). While the guest is in the
/// middle of a line (its last write did not end one: C's stdio writes
/// `tick 0` and its newline apart), the progress line stays hidden. WASI
/// preview 1 and 2 writes come through [`OutputStream`]; preview 3's go to
/// the process's stream as they are.
#[derive(Clone)]
pub(crate) struct GuestOutput {
    /// Stderr, else stdout.
    stderr: bool,
    /// The progress line.
    bar: indicatif::ProgressBar,
    /// The guest's last write to the terminal did not end its line (the
    /// progress line is hidden until it does); shared by stdout and
    /// stderr, and held while writing.
    mid_line: Arc<std::sync::Mutex<bool>>,
}

impl GuestOutput {
    /// The guest's stdout and stderr, clearing `bar` before each write.
    pub(crate) fn pair(bar: &indicatif::ProgressBar) -> (GuestOutput, GuestOutput) {
        let mid_line = Arc::new(std::sync::Mutex::new(false));
        let out = |stderr| GuestOutput {
            stderr,
            bar: bar.clone(),
            mid_line: mid_line.clone(),
        };
        (out(false), out(true))
    }

    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let write = || {
            if self.stderr {
                let mut e = std::io::stderr().lock();
                e.write_all(bytes).and_then(|()| e.flush())
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(bytes).and_then(|()| o.flush())
            }
        };
        let shared_line = self.stderr || std::io::IsTerminal::is_terminal(&std::io::stdout());
        if !shared_line || bytes.is_empty() {
            return write();
        }
        let mut mid_line = self.mid_line.lock().unwrap_or_else(|e| e.into_inner());
        let ends_line = bytes.ends_with(b"\n");
        let result = match (*mid_line, ends_line) {
            // A whole line: the progress line cleared, then redrawn.
            (false, true) => self.bar.suspend(write),
            // A line begun: the progress line cleared and hidden.
            (false, false) => {
                self.bar
                    .set_draw_target(indicatif::ProgressDrawTarget::hidden());
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(b"\r\x1b[2K").and_then(|()| e.flush());
                drop(e);
                write()
            }
            (true, _) => write(),
        };
        if *mid_line && ends_line {
            // The line ended: the progress line is drawn again below it.
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr_with_hz(20));
        }
        *mid_line = !ends_line;
        result
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        if self.stderr {
            std::io::IsTerminal::is_terminal(&std::io::stderr())
        } else {
            std::io::IsTerminal::is_terminal(&std::io::stdout())
        }
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        if self.stderr {
            wasmtime_wasi::cli::stderr().async_stream()
        } else {
            wasmtime_wasi::cli::stdout().async_stream()
        }
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> StreamResult<()> {
        self.write_all(&bytes)
            .map_err(|e| StreamError::LastOperationFailed(e.into()))
    }

    fn flush(&mut self) -> StreamResult<()> {
        // Every write is flushed.
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(64 * 1024)
    }
}

/// `running: 1,204,311 heap events (52,000/s), 10.1 MiB live, invocation
/// 2,500 of 5,000, 3.2 s`.
fn line(p: &Progress, phase: Phase, events: u64, rate: f64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    if matches!(
        phase,
        Phase::Reading | Phase::Instrumenting | Phase::Compiling
    ) {
        return format!("{}…  {secs:.1} s", phase.name());
    }
    let mut out = format!(
        "{}: {} heap events",
        phase.name(),
        heapscope_trace::units::thousands(events)
    );
    if phase == Phase::Running && rate > 0.0 {
        out.push_str(&format!(
            " ({}/s)",
            heapscope_trace::units::thousands(rate as u64)
        ));
    }
    out.push_str(&format!(
        ", {} live",
        heapscope_trace::units::bytes_human(p.live_bytes.load(Relaxed))
    ));
    let planned = p.planned.load(Relaxed);
    if planned > 0 {
        out.push_str(&format!(
            ", invocation {} of {}",
            heapscope_trace::units::thousands(p.invocations.load(Relaxed)),
            heapscope_trace::units::thousands(planned)
        ));
    }
    out.push_str(&format!(", {secs:.1} s"));
    out
}

//! The progress line a run shows on a terminal (through `indicatif`): the
//! phase, heap events and live bytes with units, invocations done of those
//! planned, and the event rate. Nothing is drawn when stderr is not a
//! terminal (indicatif checks), and the line is cleared when the run ends.

use crate::recorder::{Phase, Progress};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Redraw the progress line on stderr every tenth of a second until
/// `stop` closes; then clear it.
pub(crate) fn show(p: Arc<Progress>, stop: mpsc::Receiver<()>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let bar = indicatif::ProgressBar::with_draw_target(
            None,
            indicatif::ProgressDrawTarget::stderr_with_hz(20),
        );
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
    })
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

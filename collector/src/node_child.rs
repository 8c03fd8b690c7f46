//! The Node process of a `heapscope run --node` run: started, waited for,
//! and told to stop when heapscope is interrupted, as a wasmtime run's
//! guest is stopped (`Interrupt`).
//!
//! The first interrupt (Ctrl-C, SIGINT or SIGTERM to heapscope) sends Node
//! SIGTERM: the collector writes the session it holds and lets the signal
//! end Node (`collector/js/stream.mjs`), and heapscope then records what the session
//! holds, marked partial. A second interrupt kills Node (SIGKILL), for an
//! app that does not stop (a long call into the module runs to its end
//! before JavaScript sees a signal); the session keeps what was written.
//!
//! Ctrl-C at a terminal signals heapscope and Node together, and Node may
//! end on its own SIGINT before heapscope has counted its interrupt (the
//! count is made on ctrlc's thread, when it is scheduled): an interrupt
//! counted by the time Node's end is seen, or within [`LATE_INTERRUPT`]
//! of the end of a Node that a stop signal ended, is heapscope's all the
//! same, and the run says heapscope was interrupted.

use crate::config::Interrupt;
use std::process::{Command, ExitStatus};
use std::time::Duration;

/// How often the wait looks for the end of Node and for an interrupt.
const POLL: Duration = Duration::from_millis(10);

/// How a Node run ended.
#[derive(Debug)]
pub(crate) struct Ended {
    pub status: ExitStatus,
    /// How many times heapscope was interrupted while Node ran.
    pub interrupts: u32,
}

/// Run `cmd` to its end, forwarding `interrupt` to it as it comes. The
/// child is signalled only while `try_wait` says it has not ended, so its
/// pid is still its own (an ended child not yet waited for keeps it).
pub(crate) fn run(cmd: &mut Command, interrupt: Option<&Interrupt>) -> std::io::Result<Ended> {
    let mut child = cmd.spawn()?;
    let mut told = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            // An interrupt counted since the last look is heapscope's too,
            // though Node ended before it could be passed on.
            let interrupts = match interrupt {
                Some(i) if told == 0 && ended_on_a_stop_signal(&status) => late_interrupt(i),
                Some(i) => told.max(i.requests()),
                None => told,
            };
            return Ok(Ended { status, interrupts });
        }
        let asked = interrupt.map_or(0, Interrupt::requests);
        if asked > told {
            told = asked;
            if told == 1 {
                eprintln!("heapscope: interrupted: Node is told to stop (SIGTERM) and its session recorded; press Ctrl-C again to kill it");
                terminate(child.id());
            } else {
                eprintln!("heapscope: interrupted again: Node killed (SIGKILL); its session keeps what was written");
                let _ = child.kill();
            }
        }
        std::thread::sleep(POLL);
    }
}

/// How long a Node that ended on a stop signal heapscope had not (yet)
/// seen is given for heapscope's own interrupt to show. Ctrl-C at a
/// terminal signals heapscope and Node together; Node may end on its
/// SIGINT before heapscope's handler thread has counted heapscope's (it
/// runs apart from the signal, when it is scheduled), and the run must
/// still say heapscope was interrupted. Only a Node ended by SIGINT,
/// SIGTERM or SIGHUP (or exiting 128 + one of them) waits, at most this.
const LATE_INTERRUPT: Duration = Duration::from_millis(1000);

/// Whether Node ended on a signal that stops a program when asked to
/// (SIGHUP, SIGINT, SIGTERM), by it or by exiting 128 + its number as a
/// shell reports it.
fn ended_on_a_stop_signal(status: &ExitStatus) -> bool {
    const STOP: [i32; 3] = [1, 2, 15];
    #[cfg(unix)]
    if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(status) {
        return STOP.contains(&sig);
    }
    status
        .code()
        .is_some_and(|c| STOP.iter().any(|s| c == 128 + s))
}

/// The interrupts heapscope counts within [`LATE_INTERRUPT`] of the end
/// of a Node that ended on a stop signal (0 when none comes: the signal
/// was Node's alone). Node has ended: nothing is forwarded.
fn late_interrupt(interrupt: &Interrupt) -> u32 {
    let deadline = std::time::Instant::now() + LATE_INTERRUPT;
    loop {
        let asked = interrupt.requests();
        if asked > 0 || std::time::Instant::now() >= deadline {
            return asked;
        }
        std::thread::sleep(POLL);
    }
}

/// SIGTERM to process `pid` (our child, not yet waited for).
#[cfg(unix)]
fn terminate(pid: u32) {
    use rustix::process::{kill_process, Pid, Signal};
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, Signal::TERM);
    }
}

/// Elsewhere there is no SIGTERM: the second interrupt kills Node.
#[cfg(not(unix))]
fn terminate(_pid: u32) {}

//! The Node process of a `heapscope run --node` run: started, waited for,
//! and told to stop when heapscope is interrupted, as a wasmtime run's
//! guest is stopped (`Interrupt`).
//!
//! The first interrupt (Ctrl-C, SIGINT or SIGTERM to heapscope) sends Node
//! SIGTERM: the collector writes the session it holds and lets the signal
//! end Node (`js/stream.mjs`), and heapscope then records what the session
//! holds, marked partial. A second interrupt kills Node (SIGKILL), for an
//! app that does not stop (a long call into the module runs to its end
//! before JavaScript sees a signal); the session keeps what was written.

use crate::config::Interrupt;
use std::process::{Command, ExitStatus};
use std::sync::mpsc;
use std::time::Duration;

/// How often the wait looks for an interrupt.
const POLL: Duration = Duration::from_millis(50);

/// How a Node run ended.
#[derive(Debug)]
pub(crate) struct Ended {
    pub status: ExitStatus,
    /// How many times heapscope was interrupted while Node ran.
    pub interrupts: u32,
}

/// Run `cmd` to its end, forwarding `interrupt` to it as it comes.
pub(crate) fn run(cmd: &mut Command, interrupt: Option<&Interrupt>) -> std::io::Result<Ended> {
    let mut child = cmd.spawn()?;
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let mut told = 0;
    loop {
        match rx.recv_timeout(POLL) {
            Ok(status) => {
                return Ok(Ended {
                    status: status?,
                    interrupts: told,
                })
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(std::io::Error::other("lost the wait for Node"))
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        let asked = interrupt.map_or(0, Interrupt::requests);
        if asked > told {
            told = asked;
            if told == 1 {
                eprintln!("heapscope: interrupted: Node is told to stop (SIGTERM) and its session recorded; press Ctrl-C again to kill it");
                signal(pid, false);
            } else {
                eprintln!("heapscope: interrupted again: Node killed (SIGKILL); its session keeps what was written");
                signal(pid, true);
            }
        }
    }
}

/// SIGTERM (or SIGKILL) to process `pid`, still our unwaited child (the
/// waiting thread has not reported its end, so the pid is not reused).
#[cfg(unix)]
fn signal(pid: u32, kill: bool) {
    use rustix::process::{kill_process, Pid, Signal};
    if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
        let _ = kill_process(pid, if kill { Signal::KILL } else { Signal::TERM });
    }
}

#[cfg(not(unix))]
fn signal(_pid: u32, _kill: bool) {}

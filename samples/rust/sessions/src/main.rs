//! sessions (Rust, wasm32-wasip1): the two leaks of long-running servers
//! that are *not* lost memory, and the one that is: what holds them.
//!
//! Expected numbers (checked by the test suite, tests/retainers.rs):
//!
//! * `open_session`: each of the 300 requests appends a boxed `Session` of
//!   64 bytes to the static `SESSIONS: Mutex<Vec<Box<Session>>>` and nothing
//!   ever removes it: 300 blocks, 19,200 bytes, still reachable, held by the
//!   static through the vector's buffer (room for 300 pointers, reserved on
//!   the first request: 1 block of 1,200 bytes on wasm32, 2,400 natively).
//! * `make_node`: 200 `Rc<RefCell<Node>>` that point at themselves (`me`),
//!   then dropped: their count never reaches zero. Each is one 56-byte
//!   `RcBox` block (on wasm32 and natively) that nothing else points at:
//!   200 cycles of 1 block, 11,200 bytes, definitely lost, as Valgrind says
//!   of the native build (a block pointing only at itself is no root).
//! * Everything else (each request's scratch `String`) is freed.
//!
//! That is 501 blocks and 31,600 bytes live at exit on wasm32.
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Mutex;

/// Requests served; each opens one session.
const REQUESTS: usize = 300;
/// Self-referencing nodes made and dropped.
const NODES: usize = 200;

/// A session: 64 bytes, no pointers (the same size natively).
struct Session {
    id: u64,
    started: u64,
    user: [u8; 40],
    hits: u32,
    flags: u32,
}
const _: () = assert!(std::mem::size_of::<Session>() == 64);

/// Every session ever opened: appended to, never removed.
static SESSIONS: Mutex<Vec<Box<Session>>> = Mutex::new(Vec::new());

/// Open a session for request `id` and keep it in `SESSIONS`.
#[inline(never)]
fn open_session(id: u64, user: &str) -> usize {
    let mut s = Box::new(Session {
        id,
        started: 1_700_000_000 + id,
        user: [0; 40],
        hits: 1,
        flags: 0,
    });
    let n = user.len().min(s.user.len());
    s.user[..n].copy_from_slice(&user.as_bytes()[..n]);
    let mut sessions = SESSIONS.lock().unwrap();
    if sessions.capacity() == 0 {
        sessions.reserve_exact(REQUESTS);
    }
    sessions.push(s);
    sessions.len()
}

/// A request: some scratch work (freed) and a session (kept).
#[inline(never)]
fn handle_request(id: u64) -> usize {
    let user = format!("user-{}", id % 37);
    open_session(id, &user)
}

/// The payload that makes a node's `RcBox` 56 bytes: 8 (counts) + 8
/// (`RefCell`'s flag, padded) + 40 on wasm32; 16 + 8 + 32 natively.
const NAME: usize = if cfg!(target_pointer_width = "32") {
    28
} else {
    16
};

struct Node {
    id: u64,
    /// The node itself: a reference cycle of one.
    me: Option<Rc<RefCell<Node>>>,
    name: [u8; NAME],
}
const _: () = assert!(
    std::mem::size_of::<RefCell<Node>>() + 2 * std::mem::size_of::<usize>() == 56
);

/// A node that points at itself, then dropped: its count stays 1.
#[inline(never)]
fn make_node(id: u64) -> u64 {
    let node = Rc::new(RefCell::new(Node {
        id,
        me: None,
        name: [b'n'; NAME],
    }));
    node.borrow_mut().me = Some(node.clone());
    let n = node.borrow();
    n.id + u64::from(n.name[0])
}

fn main() {
    let mut open = 0;
    for id in 1..=REQUESTS as u64 {
        open = handle_request(id);
    }
    let checked: u64 = SESSIONS
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.id + s.started + u64::from(s.hits + s.flags) + u64::from(s.user[0]))
        .sum();
    let mut sum = 0;
    for id in 1..=NODES as u64 {
        sum += make_node(id);
    }
    println!("sessions: {open} open (checksum {checked}), {NODES} nodes dropped (sum {sum})");
}

//! Who holds it (issue 31): the leak kinds of the retainer samples against
//! Valgrind's on native builds of the same sources, retainer paths from
//! named roots, lost cycles, and the blocks born between two snapshots.
//!
//! The samples and their exact numbers:
//! * samples/c/registry.c: 500 nodes of 44 bytes the global list
//!   `g_registry` holds (still reachable), and a lost cycle of two 56-byte
//!   blocks (one definitely lost, one indirectly, as Valgrind says).
//! * samples/rust/sessions: 300 sessions of 64 bytes the static
//!   `SESSIONS: Mutex<Vec<Box<Session>>>` holds through its 1,200-byte
//!   buffer, and 200 `Rc<RefCell<Node>>` self-cycles of one 56-byte block
//!   each, definitely lost (as Valgrind says of the native build).

mod common;
use common::*;

/// Valgrind's leak summary of a native build: (bytes, blocks) definitely,
/// indirectly, possibly lost and still reachable.
fn valgrind_leak_kinds(native: &std::path::Path) -> [(u64, u64); 4] {
    let out = std::process::Command::new("valgrind")
        .args(["--leak-check=full", "--show-leak-kinds=all"])
        .arg(native)
        .output()
        .expect("valgrind is installed by scripts/setup.sh");
    let err = String::from_utf8_lossy(&out.stderr).replace(',', "");
    // "definitely lost: 56 bytes in 1 blocks"; a zero line may be absent.
    let kind = |label: &str| -> (u64, u64) {
        let Some(line) = err.lines().find(|l| l.contains(label)) else {
            return (0, 0);
        };
        let nums: Vec<u64> = line
            .split_once(label)
            .unwrap()
            .1
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert_eq!(nums.len(), 2, "{line}");
        (nums[0], nums[1])
    };
    assert!(
        err.contains("LEAK SUMMARY"),
        "valgrind printed no leak summary:\n{err}"
    );
    [
        kind("definitely lost:"),
        kind("indirectly lost:"),
        kind("possibly lost:"),
        kind("still reachable:"),
    ]
}

/// heapscope's leak kinds from a run's summary, as (bytes, blocks).
fn leak_kinds(s: &serde_json::Value) -> [(u64, u64); 4] {
    let k = &s["leak_kinds"];
    let pair = |kind: &str| {
        (
            k[kind]["bytes"].as_u64().unwrap(),
            k[kind]["blocks"].as_u64().unwrap(),
        )
    };
    [
        pair("definite"),
        pair("indirect"),
        pair("possible"),
        pair("reachable"),
    ]
}

/// The lost cycle of registry.c is what Valgrind says it is on the native
/// build: 1 block definitely lost and 1 indirectly (56 bytes each), and
/// the 500 nodes of the global list still reachable; heapscope's wasm run
/// says the same, kind by kind.
#[test]
fn registry_leak_kinds_are_valgrinds_on_the_native_build() {
    if slow_tier("Valgrind") {
        return;
    }
    let native = valgrind_leak_kinds(&sample("c/registry.native"));
    assert_eq!(
        native,
        [(56, 1), (56, 1), (0, 0), (22_000, 500)],
        "valgrind on registry.native"
    );
    let dir = tempfile::tempdir().unwrap();
    let (_, _, s) = record(dir.path(), &sample("c/registry.wasm"), &["--no-trace"]);
    assert_eq!(leak_kinds(&s), native, "heapscope vs valgrind");
}

/// The Rust sessions sample: its 200 self-cycles are 200 blocks definitely
/// lost (a block that only points at itself has nothing holding it), 11,200
/// bytes, in wasm as natively under Valgrind; the 300 sessions and their
/// vector's buffer are still reachable (natively the buffer is twice as
/// large and std keeps a block of its own, so only the lost memory is
/// compared).
#[test]
fn sessions_self_cycles_are_definitely_lost_as_valgrind_says() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(dir.path(), &sample("rust/sessions.wasm"), &["--no-trace"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        leak_kinds(&s),
        [(11_200, 200), (0, 0), (0, 0), (300 * 64 + 1_200, 301)],
        "{}",
        s["leak_kinds"]
    );
    assert_eq!(
        (&s["curr_blocks"], &s["curr_bytes"]),
        (&501.into(), &31_600.into())
    );
    assert!(
        stdout(&out).contains("sessions: 300 open"),
        "{}",
        stdout(&out)
    );
    if slow_tier("Valgrind") {
        return;
    }
    let native = valgrind_leak_kinds(&sample("rust/sessions.native"));
    assert_eq!(native[0], (11_200, 200), "valgrind: definitely lost");
    assert_eq!(native[1], (0, 0), "valgrind: indirectly lost");
    assert_eq!(native[2], (0, 0), "valgrind: possibly lost");
    assert_eq!(&leak_kinds(&s)[..3], &native[..3], "heapscope vs valgrind");
}

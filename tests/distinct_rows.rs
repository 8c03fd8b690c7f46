//! Every row distinct: `top` rows and `leaks` groups whose printed text
//! would be the same (stacks that differ only where no printed frame says:
//! two `malloc`s on one line of C, a library function entered from one
//! line twice) are one row, summed. The README promises "as many callers
//! as it takes to tell the rows apart".

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tests/fixtures/rows/two_mallocs.c` built for wasm32-wasi with DWARF.
fn two_mallocs(dir: &Path) -> PathBuf {
    let out = dir.join("two_mallocs.wasm");
    let o = Command::new("clang")
        .args(["--target=wasm32-wasi", "-g", "-O0"])
        .arg(repo().join("tests/fixtures/rows/two_mallocs.c"))
        .arg("-o")
        .arg(&out)
        .output()
        .expect("clang runs (scripts/setup.sh installs it)");
    assert!(o.status.success(), "{}", stderr(&o));
    out
}

/// The lines of a `top` table after its heading, without the numbers:
/// what tells the rows apart.
fn top_sites(text: &str) -> Vec<String> {
    text.lines()
        .skip(3)
        .take_while(|l| !l.is_empty())
        .map(|l| l.split_whitespace().skip(5).collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn two_mallocs_on_one_line_are_one_leak_group_and_one_top_row() {
    let dir = tempfile::tempdir().unwrap();
    let module = two_mallocs(dir.path());
    let (run, trace, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    assert_eq!(s["leak_kinds"]["definite"]["blocks"], 2);
    assert_eq!(s["leak_kinds"]["definite"]["bytes"], 300);
    for full in [false, true] {
        let mut args = vec!["leaks".as_ref(), trace.as_os_str()];
        if full {
            args.push("--full-stacks".as_ref());
        }
        let o = heapscope(args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = stdout(&o);
        assert_eq!(text.matches("\n#").count(), 1, "full {full}: {text}");
        assert!(
            text.contains("#1 300 bytes in 2 blocks, sizes 100..200, definitely lost, allocated by malloc\n    at main ("),
            "full {full}: {text}"
        );
        assert!(text.contains("two_mallocs.c:8)\n"), "{text}");
    }
    let o = heapscope(["leaks".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let leaks = j["leaks"].as_array().unwrap();
    assert_eq!(leaks.len(), 1, "{j}");
    assert_eq!(
        (&leaks[0]["blocks"], &leaks[0]["bytes"]),
        (&2.into(), &300.into())
    );
    assert_eq!(leaks[0]["sizes"], serde_json::json!([100, 200]));

    let o = heapscope(["top".as_ref(), trace.as_os_str()]);
    let text = stdout(&o);
    assert!(
        text.starts_with("two_mallocs.wasm: 1 allocation site; "),
        "{text}"
    );
    let rows: Vec<&str> = text.lines().skip(3).collect();
    assert_eq!(rows.len(), 1, "{text}");
    assert_eq!(
        rows[0].split_whitespace().take(5).collect::<Vec<_>>(),
        ["1", "300", "2", "300", "300"],
        "{text}"
    );
    // What the run itself says (JUnit's leak list) is one group too.
    let junit = dir.path().join("j.xml");
    let (run, _, _) = record(
        dir.path(),
        &module,
        &["--fail-on-leak", "--junit", junit.to_str().unwrap()],
    );
    assert_eq!(code(&run), 1, "{}", stderr(&run));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("300 bytes in 2 blocks definitely lost, allocated by main"),
        "{xml}"
    );
}

/// The Rust sample's `churn` pushes onto a `Vec` from one line twice over
/// (stacks that differ only inside the library): rows 5 and 11 of `top`
/// read the same; they are now one row of 1,440 + 48 bytes in 4 + 1
/// allocations, and no two rows read the same.
#[test]
fn the_rust_samples_top_rows_are_all_distinct() {
    let dir = tempfile::tempdir().unwrap();
    let (run, trace, _) = record(dir.path(), &sample("rust/leaky.wasm"), &[]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    for depth in ["0", "1", "2"] {
        let o = heapscope([
            "top".as_ref(),
            trace.as_os_str(),
            "--top".as_ref(),
            "0".as_ref(),
            "--depth".as_ref(),
            depth.as_ref(),
        ]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        let text = stdout(&o);
        let sites = top_sites(&text);
        let mut unique = sites.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), sites.len(), "depth {depth}: {text}");
    }
    let o = heapscope(["top".as_ref(), trace.as_os_str()]);
    let text = stdout(&o);
    assert!(
        text.starts_with("leaky.wasm: 12 allocation sites; "),
        "{text}"
    );
    let merged: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("main.rs:74) [via alloc::vec::Vec<T,A>::push"))
        .collect();
    assert_eq!(merged.len(), 1, "{text}");
    assert_eq!(
        merged[0]
            .split_whitespace()
            .skip(1)
            .take(4)
            .collect::<Vec<_>>(),
        ["1,488", "5", "0", "0"],
        "{text}"
    );
    let o = heapscope(["top".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let row = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["allocated_bytes"] == 1488)
        .unwrap_or_else(|| panic!("{j}"));
    assert_eq!(
        (&row["allocations"], &row["stacks"]),
        (&5.into(), &2.into())
    );
}

/// The groups `leaks` prints, each without its number: what must differ.
fn leak_groups(text: &str) -> Vec<String> {
    text.split("\n#")
        .skip(1)
        .map(|g| {
            g.split_once(' ')
                .map_or("", |(_, rest)| rest)
                .trim()
                .to_string()
        })
        .collect()
}

/// No two groups of `leaks` read the same, with or without
/// `--full-stacks`, on the Rust sample (whose stacks differ in the
/// library frames the default view folds) and the two-mallocs C program.
#[test]
fn no_two_leak_groups_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let rust = tempfile::tempdir().unwrap();
    let (_, t1, _) = record(rust.path(), &sample("rust/leaky.wasm"), &[]);
    let module = two_mallocs(dir.path());
    let (_, t2, _) = record(dir.path(), &module, &[]);
    for t in [&t1, &t2] {
        for full in [false, true] {
            let mut args = vec!["leaks".as_ref(), t.as_os_str()];
            if full {
                args.push("--full-stacks".as_ref());
            }
            let o = heapscope(args);
            assert_eq!(code(&o), 0, "{}", stderr(&o));
            let text = stdout(&o);
            let groups = leak_groups(&text);
            let mut unique = groups.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), groups.len(), "full {full}: {text}");
            // The blocks are all there, merged or not.
            let blocks: u64 = groups
                .iter()
                .map(|g| {
                    let words: Vec<&str> = g.split_whitespace().collect();
                    let i = words.iter().position(|w| w.starts_with("block")).unwrap();
                    words[i - 1].replace(',', "").parse::<u64>().unwrap()
                })
                .sum();
            let first = text
                .lines()
                .find(|l| l.contains(" live at exit, from "))
                .unwrap();
            assert!(
                first.contains(&format!(" in {blocks} block")),
                "{first} vs {blocks}: {text}"
            );
        }
    }
}

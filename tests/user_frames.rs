//! Reports point at the user's own code: on the Rust actor sample, the
//! first frame of every leak, growth site and advice — in text and HTML —
//! is a function of samples/actor/src/lib.rs, and the folded and pprof
//! exports fold the library frames above it (`--full-stacks` keeps them).

mod common;
use common::*;
use std::io::Read;

const USER_FILE: &str = "samples/actor/src/lib.rs";

/// The `at` lines of a text report, trimmed.
fn at_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| l.starts_with("at "))
        .collect()
}

#[test]
fn the_actor_samples_reports_start_at_its_own_code() {
    let dir = tempfile::tempdir().unwrap();
    let messages = sample("actor/messages-5000.jsonl");
    let (out, trace, _) = record(
        dir.path(),
        &sample("actor/actor-leaky.wasm"),
        &[
            "--extism",
            "process",
            "--messages",
            messages.to_str().unwrap(),
        ],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let t = trace.to_str().unwrap();

    // Text: the growth sites and the advice (summary), the leaks.
    let summary = stdout(&heapscope(["summary", t]));
    let leaks = stdout(&heapscope(["leaks", t, "--top", "0"]));
    let ats: Vec<&str> = at_lines(&summary)
        .into_iter()
        .chain(at_lines(&leaks))
        .collect();
    // The growth's stack (printed once: bound-caches refers to it), the
    // growth sites and the leak groups of the 10,001 blocks still reachable.
    assert!(ats.len() >= 6, "{summary}\n{leaks}");
    for at in &ats {
        assert!(at.contains(USER_FILE), "not the user's frame: {at}");
    }
    // The library frames are counted, with the API the user called.
    assert!(
        summary.contains("(10 library frames above, entered through alloc::vec::from_elem)"),
        "{summary}"
    );
    // --full-stacks keeps them.
    let full = stdout(&heapscope(["leaks", t, "--top", "1", "--full-stacks"]));
    assert!(
        at_lines(&full)[0].starts_with("at __rustc::__rust_alloc")
            || !at_lines(&full)[0].contains(USER_FILE),
        "{full}"
    );

    // HTML: every stack shown (leak table, advice) starts at the user's code.
    let html = dir.path().join("r.html");
    let out = heapscope(["report", t, "-o", html.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("HTML report written to"),
        "{}",
        stderr(&out)
    );
    let html = std::fs::read_to_string(&html).unwrap();
    let lists: Vec<&str> = html.split("<ol class=\"frames\">").skip(1).collect();
    assert!(lists.len() >= 3, "advice and leak stacks");
    for l in &lists {
        let first = l.split("</li>").next().unwrap();
        assert!(first.contains(USER_FILE), "first frame in HTML: {first}");
    }

    // Folded: the leaf frame of every stack is a function of lib.rs.
    let user_fn = |f: &str| f.starts_with("actor::") || f == "process" || f.starts_with("<actor::");
    let folded = dir.path().join("f.folded");
    let out = heapscope([
        "export",
        t,
        "--format",
        "folded",
        "-o",
        folded.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let folded = std::fs::read_to_string(&folded).unwrap();
    let lines: Vec<&str> = folded.lines().collect();
    assert!(lines.len() >= 5, "{folded}");
    for line in &lines {
        let stack = line.rsplit_once(' ').unwrap().0;
        let leaf = stack.rsplit(';').next().unwrap();
        assert!(user_fn(leaf), "leaf {leaf} in {line}");
    }
    // The biggest stack, the leaked record, ends at render_record.
    assert!(
        folded.contains(";actor::cache_insert;actor::render_record 10240000\n"),
        "{folded}"
    );
    // --full-stacks: the same bytes, down to the allocator.
    let full = dir.path().join("full.folded");
    heapscope([
        "export",
        t,
        "--format",
        "folded",
        "--full-stacks",
        "-o",
        full.to_str().unwrap(),
    ]);
    let full = std::fs::read_to_string(&full).unwrap();
    let total = |s: &str| -> u64 {
        s.lines()
            .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
            .sum()
    };
    assert_eq!(total(&full), total(&folded));
    assert!(full
        .lines()
        .any(|l| !user_fn(l.rsplit_once(' ').unwrap().0.rsplit(';').next().unwrap())));

    // pprof: the first location of every sample is in lib.rs.
    let pb = dir.path().join("p.pb.gz");
    let out = heapscope(["export", t, "--format", "pprof", "-o", pb.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&pb).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    let p: heapscope_viewer::export::pprof::Profile = prost::Message::decode(&raw[..]).unwrap();
    assert!(p.sample.len() >= 5);
    for s in &p.sample {
        let loc = &p.location[s.location_id[0] as usize - 1];
        let func = &p.function[loc.line[0].function_id as usize - 1];
        let file = &p.string_table[func.filename as usize];
        assert!(
            file.ends_with(USER_FILE),
            "leaf {} in {file}",
            p.string_table[func.name as usize]
        );
    }
}

#[test]
fn top_tells_sites_apart_by_their_callers() {
    let dir = tempfile::tempdir().unwrap();
    let (_, trace, _) = record(dir.path(), &sample("c/leaky.wasm"), &[]);
    let t = trace.to_str().unwrap();
    let top = stdout(&heapscope(["top", t, "--top", "0"]));
    let sites: Vec<&str> = top
        .lines()
        .skip_while(|l| !l.trim_start().starts_with('#'))
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with("..."))
        .map(|l| l.split("  ").last().unwrap().trim())
        .collect();
    assert!(sites.len() >= 3, "{top}");
    let mut unique = sites.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), sites.len(), "rows that read the same:\n{top}");
    // The sort key is marked, columns say their unit.
    assert!(top.contains("allocated (B) ▼"), "{top}");
    // --depth 1: one frame each; --weight and the old --by agree.
    let by = stdout(&heapscope(["top", t, "--by", "count"]));
    let weight = stdout(&heapscope(["top", t, "--weight", "allocations"]));
    assert_eq!(by, weight);
    assert!(weight.contains("allocations ▼"), "{weight}");
    let one = stdout(&heapscope(["top", t, "--depth", "1", "--top", "0"]));
    assert!(!one.contains(" < "), "{one}");
}

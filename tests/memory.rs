//! Memory 0's pages by what holds them (WAMR's memory model: static data,
//! auxiliary stack, heap): the parts add up to the pages byte for byte, at
//! the peak and at exit, and the regions are where the linker put them.

mod common;
use common::*;

/// `__stack_pointer`'s initial value and the end of the active data
/// segments, read from the module.
fn linker_facts(wasm: &[u8]) -> (u64, u64) {
    let mut sp = None;
    let mut data_end = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::GlobalSection(s) => {
                let g = s.into_iter().next().unwrap().unwrap();
                if let Ok(wasmparser::Operator::I32Const { value }) =
                    g.init_expr.get_operators_reader().read()
                {
                    sp = Some(value as u64);
                }
            }
            wasmparser::Payload::DataSection(s) => {
                for d in s.into_iter().flatten() {
                    if let wasmparser::DataKind::Active { offset_expr, .. } = d.kind {
                        if let Ok(wasmparser::Operator::I32Const { value }) =
                            offset_expr.get_operators_reader().read()
                        {
                            data_end = data_end.max(value as u64 + d.data.len() as u64);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    (sp.expect("global 0 is __stack_pointer"), data_end)
}

fn parts(p: &serde_json::Value) -> [u64; 8] {
    [
        "pages",
        "bytes",
        "static_data",
        "stack",
        "other",
        "live_heap",
        "heap_overhead_and_free",
        "never_used",
    ]
    .map(|k| p[k].as_u64().unwrap_or_else(|| panic!("no {k}: {p}")))
}

#[test]
fn c_sample_pages_split_into_data_stack_and_heap_byte_for_byte() {
    let module = sample("c/leaky.wasm");
    let (sp, data_end) = linker_facts(&std::fs::read(&module).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (out, trace, s) = record(dir.path(), &module, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = &s["memory_breakdown"];
    // C: the data from 0, the stack above it up to its initial pointer,
    // the heap from there.
    assert_eq!(
        b["layout"],
        serde_json::json!({"data_end": data_end, "stack_lo": data_end, "stack_hi": sp, "heap_base": sp})
    );
    let exit = parts(&b["at_exit"]);
    let pages = s["memory"]["final_pages"].as_u64().unwrap();
    assert_eq!(exit[0], pages);
    assert_eq!(exit[1], pages * 65_536);
    assert_eq!(
        exit[2..].iter().sum::<u64>(),
        exit[1],
        "the parts add up: {exit:?}"
    );
    assert_eq!([exit[2], exit[3], exit[4]], [data_end, sp - data_end, 0]);
    assert_eq!(exit[5], s["curr_bytes"].as_u64().unwrap());
    let peak = parts(&b["at_peak"]);
    assert_eq!(peak[2..].iter().sum::<u64>(), peak[1]);
    assert_eq!(peak[5], s["max_bytes"].as_u64().unwrap());
    // The same breakdown from the trace, in the text summary and the report.
    let o = heapscope(["summary".as_ref(), trace.as_os_str()]);
    // leaky's peak is its exit: one line for both.
    assert_eq!(peak, exit);
    let line = format!(
        "memory 0 at the peak and at exit: {pages} pages ({} bytes) = ",
        text_thousands(pages * 65_536)
    );
    assert!(stdout(&o).contains(&line), "{}", stdout(&o));
    let html = report(dir.path(), &trace);
    assert!(
        html.contains(&format!(
            "<dt>memory 0 at the peak and at exit</dt><dd>{pages} pages ({} bytes) = ",
            text_thousands(pages * 65_536)
        )),
        "no breakdown in the report"
    );
}

#[test]
fn rust_sample_with_the_stack_first_splits_byte_for_byte_too() {
    let module = sample("rust/alloc-talc.wasm");
    let (sp, _) = linker_facts(&std::fs::read(&module).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let (out, _, s) = record(
        dir.path(),
        &module,
        &["--invoke", "leak", "--repeat", "10", "--", "1000"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let b = &s["memory_breakdown"];
    // Rust: the stack from 0 up to its initial pointer, the data above it,
    // the heap from `__heap_base`, which the module exports.
    assert_eq!(b["layout"]["stack_lo"], 0);
    assert_eq!(b["layout"]["stack_hi"], sp);
    for at in ["at_peak", "at_exit"] {
        let p = parts(&b[at]);
        assert_eq!(p[1], p[0] * 65_536, "{at}");
        assert_eq!(p[2..].iter().sum::<u64>(), p[1], "{at}: {p:?}");
        assert_eq!(p[3], sp, "{at}: the stack");
        assert_eq!(p[5], 10_000, "{at}: ten live blocks");
    }
}

/// The HTML report of `trace`, written in `dir`.
fn report(dir: &std::path::Path, trace: &std::path::Path) -> String {
    let html = dir.join("r.html");
    let o = heapscope([
        "report".as_ref(),
        trace.as_os_str(),
        "-o".as_ref(),
        html.as_os_str(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    std::fs::read_to_string(&html).unwrap()
}

fn text_thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn every_other_memory_splits_at_its_data_byte_for_byte() {
    // Memory 1 has 4 bytes of data at 100 and grows by 2 pages before the
    // peak of live bytes (the second block) and by 1 after it.
    let dir = tempfile::tempdir().unwrap();
    let wat = dir.path().join("two.wat");
    std::fs::write(
        &wat,
        r#"(module
  (memory $m0 (export "memory") 1)
  (memory $m1 1 8)
  (data (memory $m1) (i32.const 100) "abcd")
  (global $top (mut i32) (i32.const 1024))
  (func $malloc (export "malloc") (param i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $free (export "free") (param i32))
  (func (export "_start")
    (drop (call $malloc (i32.const 40)))
    (drop (memory.grow $m1 (i32.const 2)))
    (drop (call $malloc (i32.const 24)))
    (drop (memory.grow $m1 (i32.const 1)))))"#,
    )
    .unwrap();
    let (out, trace, s) = record(dir.path(), &wat, &[]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let split = |pages: u64| serde_json::json!({"pages": pages, "bytes": pages * 65_536, "static_data": 104, "unmanaged": pages * 65_536 - 104});
    let expected = serde_json::json!([{
        "index": 1,
        "initial_pages": 1,
        "peak_pages": 4,
        "final_pages": 4,
        "maximum_pages": 8,
        "grows": 2,
        "failed_grows": 0,
        "page_size": 65_536,
        "breakdown": {"data_end": 104, "at_peak": split(3), "at_exit": split(4)},
    }]);
    assert_eq!(s["other_memories"], expected, "{s}");
    assert_eq!(s["memory"]["final_pages"], 1, "memory 0 is its own");
    // The same from the trace, in the JSON, the text summary and the report.
    let o = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    let replayed: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(replayed["other_memories"], expected);
    let o = heapscope(["summary".as_ref(), trace.as_os_str()]);
    for line in [
        "memory 1: 1 page initially, 4 at peak (256.0 KiB), 2 growths",
        "memory 1 at the peak: 3 pages (196,608 bytes) = 104 static data + 196,504 used directly by the module (no allocator hooked there)",
        "memory 1 at exit: 4 pages (262,144 bytes) = 104 static data + 262,040 used directly",
    ] {
        assert!(stdout(&o).contains(line), "no `{line}` in\n{}", stdout(&o));
    }
    let html = report(dir.path(), &trace);
    assert!(html.contains("<dt>memory 1 at exit</dt><dd>4 pages (262,144 bytes) = 104 static data"));
}

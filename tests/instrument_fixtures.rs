//! Instrumenter fixtures, in walrus' manner: each `tests/fixtures/instrument/
//! NAME.wat` is instrumented, printed with wasmprinter and compared with
//! `tests/golden/instrument/NAME.instrumented.wat`; the output is validated
//! and (unless the fixture starts with `;; no-run`) run under heapscope, and
//! its events, dumped one per line, compared with
//! `tests/golden/instrument/NAME.events`. `BLESS=1 cargo test` rewrites the
//! goldens; review them as a diff.

mod common;
use common::*;

fn fixtures() -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(repo().join("tests/fixtures/instrument"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wat"))
        .collect();
    v.sort();
    assert_eq!(v.len(), 10, "fixtures: {v:?}");
    v
}

fn check(path: &std::path::Path) {
    let name = path.file_stem().unwrap().to_str().unwrap();
    let text = std::fs::read_to_string(path).unwrap();
    let wasm = wat::parse_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let opts = heapscope_instrument::Options {
        validate: true,
        ..Default::default()
    };
    let out =
        heapscope_instrument::instrument(&wasm, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
    let printed = wasmprinter::print_bytes(&out.wasm).unwrap();
    golden(&format!("instrument/{name}.instrumented.wat"), &printed);
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out.wasm)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    if text.starts_with(";; no-run") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join(format!("{name}.wasm"));
    std::fs::write(&module, &out.wasm).unwrap();
    let trace = dir.path().join("t.trace");
    let run = heapscope([
        "run".as_ref(),
        module.as_os_str(),
        "-q".as_ref(),
        "--trace".as_ref(),
        trace.as_os_str(),
    ]);
    assert_eq!(code(&run), 0, "{name}: {}", stderr(&run));
    let dump = heapscope(["dump".as_ref(), trace.as_os_str()]);
    assert_eq!(code(&dump), 0, "{name}: {}", stderr(&dump));
    golden(&format!("instrument/{name}.events"), &stdout(&dump));
}

#[test]
fn every_fixture_instruments_validates_and_records_the_expected_events() {
    for f in fixtures() {
        check(&f);
    }
}

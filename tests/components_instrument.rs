//! `heapscope instrument` on WebAssembly components (WASI 0.2, issue 30):
//! every core module inside is instrumented in component mode and the
//! component re-encoded to import `heapscope:hooks/hooks@1.0.0`.

mod common;
use common::*;

/// The names a component's outermost scope imports.
fn imports(wasm: &[u8]) -> Vec<String> {
    let mut depth = 0;
    let mut names = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(wasm) {
        match p.unwrap() {
            wasmparser::Payload::ComponentImportSection(r) if depth == 1 => {
                names.extend(r.into_iter().map(|i| i.unwrap().name.0.to_string()))
            }
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            _ => {}
        }
    }
    names
}

#[test]
fn a_preview1_program_adapted_to_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample("component/wordcount.wasm");
    let (out, report) = instrument_report(dir.path(), &input, &[]);
    let err = stderr(&out);
    // The main module and the adapter are instrumented; wit-component's
    // shim and fixup have no memory and run as they are.
    assert!(err.starts_with("module 0 `main`: instrumented\n"), "{err}");
    assert!(
        err.contains("\nmodule 1 `wit-component:adapter:wasi_snapshot_preview1`: instrumented\n"),
        "{err}"
    );
    assert!(
        err.contains(
            "\nmodule 2 `wit-component-shim-module`: no linear memory (no heap); runs as it is\n\
             module 3 `wit-component-fixup`: no linear memory (no heap); runs as it is\n"
        ),
        "{err}"
    );
    assert!(
        err.ends_with(
            "; it imports `heapscope:hooks/hooks@1.0.0`, which `heapscope run` provides\n"
        ),
        "{err}"
    );
    let modules = report["modules"].as_array().unwrap();
    let rows: Vec<(u64, &str, &str)> = modules
        .iter()
        .map(|m| {
            (
                m["id"].as_u64().unwrap(),
                m["name"].as_str().unwrap(),
                m["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (0, "main", "instrumented"),
            (
                1,
                "wit-component:adapter:wasi_snapshot_preview1",
                "instrumented"
            ),
            (2, "wit-component-shim-module", "no_memory"),
            (3, "wit-component-fixup", "no_memory"),
        ]
    );
    // The main module's allocator was found (its report is the core one).
    let roles: Vec<&str> = modules[0]["report"]["allocators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["role"].as_str().unwrap())
        .collect();
    assert!(
        roles.contains(&"malloc") && roles.contains(&"free"),
        "{roles:?}"
    );
    // Each module's original bytes are where the report says.
    let original = std::fs::read(&input).unwrap();
    for m in modules {
        let r = &m["range"];
        let (start, end) = (
            r["start"].as_u64().unwrap() as usize,
            r["end"].as_u64().unwrap() as usize,
        );
        assert!(original[start..end].starts_with(b"\0asm\x01\0\0\0"));
    }
    // The output is a valid component that imports the hooks beside WASI.
    let wasm = std::fs::read(dir.path().join("instrumented.wasm")).unwrap();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&wasm)
        .unwrap();
    let names = imports(&wasm);
    assert_eq!(names[0], "heapscope:hooks/hooks@1.0.0");
    assert_eq!(names[1..], imports(&original)[..]);
}

#[test]
fn a_truncated_component_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(sample("component/wordcount.wasm")).unwrap();
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &bytes[..100]).unwrap();
    let out = instrument_cmd(&cut, &dir.path().join("out.wasm"), &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: failed to instrument `{}`: invalid WebAssembly: the component does not validate: unexpected end-of-file (at offset 0x4a)\n",
            cut.display()
        )
    );
    assert!(!dir.path().join("out.wasm").exists());
}

#[test]
fn alloc_fn_names_one_module_and_is_refused_for_a_component() {
    let dir = tempfile::tempdir().unwrap();
    let input = sample("component/wordcount.wasm");
    let out = instrument_cmd(
        &input,
        &dir.path().join("out.wasm"),
        &["--alloc-fn", "malloc=malloc"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "error: cannot instrument `{}` with --alloc-fn or --glue: it is a component, and those name functions of one core module; heapscope finds each core module's allocator itself\n",
            input.display()
        )
    );
}

//! The summary JSON matches its documented schema (docs/summary.schema.json)
//! on real runs: a C program with gates, an actor with growth, a trap, and
//! summaries replayed from traces. The validator below covers the part of
//! JSON Schema the file uses (type, const, enum, minimum, required,
//! properties, additionalProperties, items, prefixItems, min/maxItems) and
//! refuses any other keyword, so the schema cannot silently say more than
//! is checked.

mod common;
use common::*;
use serde_json::Value;

const KNOWN: &[&str] = &[
    "$schema",
    "$id",
    "title",
    "description",
    "type",
    "const",
    "enum",
    "minimum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "prefixItems",
    "minItems",
    "maxItems",
];

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        other => panic!("unknown type {other}"),
    }
}

fn validate(schema: &Value, v: &Value, path: &str, errors: &mut Vec<String>) {
    let s = schema.as_object().expect("a schema is an object");
    for k in s.keys() {
        assert!(
            KNOWN.contains(&k.as_str()),
            "schema keyword {k} at {path} is not checked"
        );
    }
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().any(|t| type_ok(t.as_str().unwrap(), v)),
            _ => panic!("bad type at {path}"),
        };
        if !ok {
            errors.push(format!("{path}: {v} is not {t}"));
            return;
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            errors.push(format!("{path}: {v} is not {c}"));
        }
    }
    if let Some(Value::Array(e)) = s.get("enum") {
        if !e.contains(v) {
            errors.push(format!("{path}: {v} is not one of {e:?}"));
        }
    }
    if let (Some(m), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < m {
            errors.push(format!("{path}: {n} < {m}"));
        }
    }
    if let Value::Object(o) = v {
        for r in s
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if !o.contains_key(r.as_str().unwrap()) {
                errors.push(format!("{path}: missing {r}"));
            }
        }
        let props = s.get("properties").and_then(Value::as_object);
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(sub) => validate(sub, x, &format!("{path}.{k}"), errors),
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    errors.push(format!("{path}: field {k} is not in the schema"))
                }
                None => {}
            }
        }
    }
    if let Value::Array(a) = v {
        let prefix = s.get("prefixItems").and_then(Value::as_array);
        for (i, x) in a.iter().enumerate() {
            let sub = prefix.and_then(|p| p.get(i)).or(s.get("items"));
            if let Some(sub) = sub {
                validate(sub, x, &format!("{path}[{i}]"), errors);
            }
        }
        if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
            if (a.len() as u64) < n {
                errors.push(format!("{path}: fewer than {n} items"));
            }
        }
        if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
            if (a.len() as u64) > n {
                errors.push(format!("{path}: more than {n} items"));
            }
        }
    }
}

fn check(schema: &Value, summary: &Value, what: &str) {
    let mut errors = Vec::new();
    validate(schema, summary, "$", &mut errors);
    assert!(errors.is_empty(), "{what}: {errors:#?}\n{summary:#}");
}

#[test]
fn real_summaries_match_the_documented_schema() {
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut seen_fields = std::collections::BTreeSet::new();
    let mut runs: Vec<(&str, std::path::PathBuf, Vec<&str>)> = vec![
        (
            "C with gates",
            sample("c/leaky.wasm"),
            vec!["--fail-on-leak", "--max-peak", "1MiB"],
        ),
        ("a trap", sample("c/badfree.wasm"), vec![]),
        ("leak kinds", sample("c/kinds.wasm"), vec![]),
    ];
    // A second memory, with data and a growth.
    let two = dir.path().join("two.wat");
    std::fs::write(
        &two,
        r#"(module
  (memory (export "memory") 1)
  (memory $m1 1)
  (data (memory $m1) (i32.const 8) "data")
  (func (export "malloc") (param i32) (result i32) i32.const 1024)
  (func (export "_start")
    (drop (call 0 (i32.const 16)))
    (drop (memory.grow $m1 (i32.const 1)))))"#,
    )
    .unwrap();
    runs.push(("two memories", two, vec![]));
    let messages = sample("actor/messages-5000.jsonl");
    runs.push((
        "an actor",
        sample("actor/actor-leaky.wasm"),
        vec![
            "--extism",
            "process",
            "--messages",
            messages.to_str().unwrap(),
            "--max-growth",
            "0",
        ],
    ));
    for (what, module, args) in &runs {
        let sub = dir.path().join(what.replace(' ', "-"));
        std::fs::create_dir(&sub).unwrap();
        let (_, trace, s) = record(&sub, module, args);
        assert_eq!(s["schema_version"], 1, "{what}");
        check(&schema, &s, what);
        seen_fields.extend(s.as_object().unwrap().keys().cloned());
        let replayed = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
        let r: Value = serde_json::from_str(&stdout(&replayed)).unwrap();
        check(&schema, &r, &format!("{what}, replayed"));
        assert_eq!(r["schema_version"], 1);
    }
    // The runs above exercise the schema's main optional parts.
    for f in [
        "leak_kinds",
        "host",
        "gates",
        "invocations",
        "growth",
        "memory_breakdown",
        "other_memories",
    ] {
        assert!(seen_fields.contains(f), "no run had {f}");
    }
    // And the validator does refuse what is wrong.
    let mut bad = serde_json::json!({"schema_version": 1});
    let mut errors = Vec::new();
    validate(&schema, &bad, "$", &mut errors);
    assert!(
        errors.iter().any(|e| e.contains("missing \"status\"")),
        "{errors:?}"
    );
    bad["status"] = "exploded".into();
    errors.clear();
    validate(&schema, &bad, "$", &mut errors);
    assert!(
        errors
            .iter()
            .any(|e| e.contains("\"exploded\" is not one of")),
        "{errors:?}"
    );
}

/// A component run's summary (its `modules`, replayed from a trace the
/// trace writer makes: two instrumented core instances with a layout,
/// leak kinds and a second memory, and one not instrumented) matches the
/// schema, and the schema names every field a module has.
#[test]
fn a_component_summary_matches_the_documented_schema() {
    use heapscope_trace::abi::{pack_kind, AllocFn};
    use heapscope_trace::format::{
        LeakKind, MemoryInfo, MemoryLayout, ModuleInfo, Record, RunStatus,
    };
    let schema: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("docs/summary.schema.json")).unwrap(),
    )
    .unwrap();
    let module = |index: u32, memories: Vec<u32>, instrumented: bool| ModuleInfo {
        index,
        module_id: index,
        name: format!("m{index}"),
        instance_path: "root".into(),
        memories,
        instrumented,
        reason: (!instrumented).then(|| "no allocator found".into()),
        layout: (index == 0).then_some(MemoryLayout {
            data_end: 1_024,
            stack_lo: 1_024,
            stack_hi: 66_560,
            heap_base: 66_560,
        }),
    };
    let mut w = heapscope_trace::TraceWriter::new(Vec::new()).unwrap();
    for r in [
        Record::RunStart {
            module: "c.wasm".into(),
            start_unix_ms: 0,
            memories: vec![
                MemoryInfo {
                    initial_pages: 2,
                    maximum_pages: Some(10),
                    memory64: false,
                    page_size_log2: 16,
                };
                3
            ],
        },
        Record::MemoryData {
            memory: 1,
            data_end: 64,
        },
        Record::Alloc {
            kind: pack_kind(AllocFn::Malloc, 0),
            ptr: 70_000,
            size: 10,
            align: 0,
            stack: 0,
        },
        Record::Alloc {
            kind: pack_kind(AllocFn::Malloc, 2),
            ptr: (2 << 32) | 70_000,
            size: 20,
            align: 0,
            stack: 0,
        },
        Record::Module(module(0, vec![0, 1], true)),
        Record::Module(module(1, vec![2], true)),
        Record::Module(module(2, vec![], false)),
        Record::ExitBlock {
            ptr: 70_000,
            kind: LeakKind::Definite,
            rule: None,
        },
        Record::RunEnd {
            status: RunStatus::Exited,
            exit_code: Some(0),
            message: String::new(),
        },
    ] {
        w.write(&r).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("c.trace");
    std::fs::write(&trace, w.finish().unwrap()).unwrap();
    let o = heapscope(["summary".as_ref(), trace.as_os_str(), "--json".as_ref()]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    check(&schema, &v, "a component run");
    let modules = v["modules"].as_array().unwrap();
    assert_eq!(modules.len(), 3);
    let first = modules[0].as_object().unwrap();
    for field in ["memory", "leak_kinds", "memory_breakdown", "other_memories"] {
        assert!(first.contains_key(field), "{field} missing: {first:?}");
    }
    assert_eq!(modules[2]["reason"], "no allocator found");
}

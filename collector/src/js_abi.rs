//! `collector/js/abi.mjs`, the JavaScript collector's copy of the hook ABI
//! (`heapscope_trace::abi`) and of the session format
//! (`heapscope_trace::session`), generated from their constants so that
//! the two sides cannot drift apart. The test below fails when the
//! checked-in file is not what [`js_abi`] generates; `BLESS=1 cargo test
//! -p heapscope-collector --lib js_abi` rewrites it.

use heapscope_trace::{abi, session};
use std::fmt::Write;

/// Where the generated file lives, inside this crate (which ships it).
pub const JS_ABI_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/js/abi.mjs");

/// The text of `collector/js/abi.mjs`.
pub fn js_abi() -> String {
    let mut o = String::new();
    let s = |v: &str| format!("{v:?}");
    let n = |v: u64| v.to_string();
    let hex = |v: u64| format!("0x{v:x}");
    let abi_fields: [(&str, String); 23] = [
        ("IMPORT_MODULE", s(abi::IMPORT_MODULE)),
        ("SHADOW_MEMORY_EXPORT", s(abi::SHADOW_MEMORY_EXPORT)),
        ("SHADOW_SP_EXPORT", s(abi::SHADOW_SP_EXPORT)),
        ("EVENTS_EXPORT", s(abi::EVENTS_EXPORT)),
        ("EVENTS_CAP_EXPORT", s(abi::EVENTS_CAP_EXPORT)),
        ("GLOBAL_EXPORT_PREFIX", s(abi::GLOBAL_EXPORT_PREFIX)),
        ("MEMORY_EXPORT_PREFIX", s(abi::MEMORY_EXPORT_PREFIX)),
        ("STACK_POINTER_EXPORT", s(abi::STACK_POINTER_EXPORT)),
        ("SITE_TABLE_SECTION", s(abi::SITE_TABLE_SECTION)),
        ("SHADOW_PAGES", n(abi::SHADOW_PAGES)),
        ("EVENT_BASE", n(abi::EVENT_BASE.into())),
        ("EVENT_BYTES", n(abi::EVENT_BYTES.into())),
        ("EVENT_HEADER", n(abi::EVENT_HEADER.into())),
        ("EVENT_TAG_SHIFT", n(abi::EVENT_TAG_SHIFT.into())),
        ("EVENT_KIND_MASK", hex(abi::EVENT_KIND_MASK.into())),
        ("EVENT_A_OFFSET", n(abi::EVENT_A_OFFSET.into())),
        ("EVENT_B_OFFSET", n(abi::EVENT_B_OFFSET.into())),
        ("EVENT_C_OFFSET", n(abi::EVENT_C_OFFSET.into())),
        (
            "EVENT_STACK_LEN_OFFSET",
            n(abi::EVENT_STACK_LEN_OFFSET.into()),
        ),
        ("EVENT_ALLOC", n(abi::EVENT_ALLOC.into())),
        ("EVENT_FREE", n(abi::EVENT_FREE.into())),
        ("EVENT_REALLOC", n(abi::EVENT_REALLOC.into())),
        ("EVENT_REALLOC_CHECK", n(abi::EVENT_REALLOC_CHECK.into())),
    ];
    let magic: Vec<String> = session::MAGIC.iter().map(|b| hex((*b).into())).collect();
    let session_fields: [(&str, String); 9] = [
        ("MAGIC", format!("[{}]", magic.join(", "))),
        ("VERSION", n(session::VERSION.into())),
        ("MAX_HANDED", n(session::MAX_HANDED as u64)),
        ("MAX_TRAP_FRAMES", n(session::MAX_TRAP_FRAMES as u64)),
        ("OUTCOME_OK", n(session::OUTCOME_OK.into())),
        (
            "OUTCOME_PLUGIN_ERROR",
            n(session::OUTCOME_PLUGIN_ERROR.into()),
        ),
        ("OUTCOME_THREW", n(session::OUTCOME_THREW.into())),
        ("STATUS_EXITED", n(session::STATUS_EXITED.into())),
        ("STATUS_TRAPPED", n(session::STATUS_TRAPPED.into())),
    ];
    let object = |o: &mut String, doc: &str, name: &str, fields: &[(&str, String)]| {
        let _ = writeln!(o, "\n/** {doc} */\nexport const {name} = Object.freeze({{");
        for (k, v) in fields {
            let _ = writeln!(o, "  {k}: {v},");
        }
        o.push_str("});\n");
    };
    o.push_str(
        "// Generated from heapscope's Rust constants (heapscope_trace::abi and\n\
         // heapscope_trace::session) by collector/src/js_abi.rs: do not edit.\n\
         // A test fails when this file is stale; `BLESS=1 cargo test -p\n\
         // heapscope-collector --lib js_abi` writes it again.\n",
    );
    let _ = writeln!(
        o,
        "\n/**\n * The hook ABI version this collector speaks (`trace::abi::ABI_VERSION`).\n * An instrumented module carries the version it was made for as the\n * first byte of its `{}` custom section.\n */\nexport const ABI_VERSION = {};",
        abi::SITE_TABLE_SECTION,
        abi::ABI_VERSION
    );
    object(
        &mut o,
        "The hook ABI's names and event record layout (`trace::abi`).",
        "ABI",
        &abi_fields,
    );
    object(
        &mut o,
        "The session format (`trace::session`): its start, limits and codes.",
        "SESSION",
        &session_fields,
    );
    let tags: Vec<(&str, String)> = session::TAGS
        .iter()
        .map(|(k, v)| (*k, n((*v).into())))
        .collect();
    object(
        &mut o,
        "The session format's record tags (`trace::session`).",
        "TAG",
        &tags,
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_abi_mjs_is_generated_from_the_rust_constants() {
        let want = js_abi();
        if std::env::var_os("BLESS").is_some() {
            std::fs::write(JS_ABI_PATH, &want).unwrap();
        }
        let have = std::fs::read_to_string(JS_ABI_PATH).unwrap_or_default();
        assert!(
            have == want,
            "{JS_ABI_PATH} is stale: the Rust constants it is generated from changed.\n\
             Run `BLESS=1 cargo test -p heapscope-collector --lib js_abi` to write it again, and\n\
             check the JavaScript collector still matches the ABI.\n--- generated ---\n{want}"
        );
    }
}

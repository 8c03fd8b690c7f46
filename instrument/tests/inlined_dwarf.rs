//! Frees inlined into the code that frees, as DWARF describes them: hooked
//! where DWARF says where the pointer is, and otherwise passed over with a
//! warning that says why. The DWARF is written here with gimli, so each
//! case (a pointer in a local, a local of another type, one that does not
//! exist, an entry inside the inlined code's own loop, no parameters) is
//! exact; tests/allocators.rs has the real builds.

use gimli::write::{Address, AttributeValue, DwarfUnit, EndianVec, Expression, Sections};
use heapscope_instrument::{instrument, Options};
use heapscope_trace::abi::AllocFn;

const MODULE: &str = r#"(module
  (memory (export "memory") 1)
  (global $top (mut i32) (i32.const 1024))
  (func $__rust_alloc (export "__rust_alloc") (param i32 i32) (result i32)
    global.get $top global.get $top local.get 0 i32.add global.set $top)
  (func $__rust_dealloc (export "__rust_dealloc") (param i32 i32 i32))
  (func $user (export "user") (param i32) (local i64)
    local.get 0
    drop
    loop
      local.get 0
      drop
    end))"#;

/// Code offsets (from the code section's payload) of `$user`'s
/// instructions, in order: `local.get`, `drop`, `loop`, `local.get`, `drop`,
/// `end`, `end`; and where its body ends.
fn user_offsets(wasm: &[u8]) -> (Vec<u64>, u64) {
    let mut code_start = 0;
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.unwrap() {
            wasmparser::Payload::CodeSectionStart { range, .. } => code_start = range.start,
            wasmparser::Payload::CodeSectionEntry(body) => bodies.push(body),
            _ => {}
        }
    }
    let body = &bodies[2];
    let mut ops = body.get_operators_reader().unwrap();
    let mut out = Vec::new();
    while !ops.eof() {
        out.push((ops.original_position() - code_start) as u64);
        ops.read().unwrap();
    }
    (out, (body.range().end - code_start) as u64)
}

/// One inlined `__rust_dealloc` in `$user`, covering `range`, entered at
/// `entry_pc` when given, with its `ptr` in local `ptr_local` (no
/// parameter at all when `None`).
fn with_dwarf(
    wasm: &[u8],
    range: std::ops::Range<u64>,
    entry_pc: Option<u64>,
    ptr_local: Option<u8>,
) -> Vec<u8> {
    let encoding = gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size: 4,
    };
    let mut dwarf = DwarfUnit::new(encoding);
    let root = dwarf.unit.root();
    let shim = dwarf.unit.add(root, gimli::DW_TAG_subprogram);
    dwarf.unit.get_mut(shim).set(
        gimli::DW_AT_name,
        AttributeValue::String(b"__rust_dealloc".to_vec()),
    );
    let shim_ptr = dwarf.unit.add(shim, gimli::DW_TAG_formal_parameter);
    dwarf
        .unit
        .get_mut(shim_ptr)
        .set(gimli::DW_AT_name, AttributeValue::String(b"ptr".to_vec()));
    let user = dwarf.unit.add(root, gimli::DW_TAG_subprogram);
    dwarf
        .unit
        .get_mut(user)
        .set(gimli::DW_AT_name, AttributeValue::String(b"user".to_vec()));
    let inlined = dwarf.unit.add(user, gimli::DW_TAG_inlined_subroutine);
    let die = dwarf.unit.get_mut(inlined);
    die.set(gimli::DW_AT_abstract_origin, AttributeValue::UnitRef(shim));
    die.set(
        gimli::DW_AT_low_pc,
        AttributeValue::Address(Address::Constant(range.start)),
    );
    die.set(
        gimli::DW_AT_high_pc,
        AttributeValue::Udata(range.end - range.start),
    );
    if let Some(pc) = entry_pc {
        die.set(
            gimli::DW_AT_entry_pc,
            AttributeValue::Address(Address::Constant(pc)),
        );
    }
    if let Some(local) = ptr_local {
        let p = dwarf.unit.add(inlined, gimli::DW_TAG_formal_parameter);
        let die = dwarf.unit.get_mut(p);
        die.set(
            gimli::DW_AT_abstract_origin,
            AttributeValue::UnitRef(shim_ptr),
        );
        die.set(gimli::DW_AT_location, in_local(local));
    }
    let mut sections = Sections::new(EndianVec::new(gimli::LittleEndian));
    dwarf.write(&mut sections).unwrap();
    with_sections(wasm, &sections)
}

/// As LTO writes it: `__rust_dealloc` (and its `ptr`) described in one
/// unit, the code of `$user` that inlined it (covering `range`) in another,
/// referring to them across units (`DW_FORM_ref_addr`). Its `ptr` is in
/// local `ptr_local`, or has no location at all when `None`.
fn with_dwarf_across_units(
    wasm: &[u8],
    range: std::ops::Range<u64>,
    ptr_local: Option<u8>,
) -> Vec<u8> {
    use gimli::write::{DebugInfoRef, LineProgram, Unit};
    let encoding = gimli::Encoding {
        format: gimli::Format::Dwarf32,
        version: 4,
        address_size: 4,
    };
    let mut dwarf = gimli::write::Dwarf::new();
    let a = dwarf.units.add(Unit::new(encoding, LineProgram::none()));
    let b = dwarf.units.add(Unit::new(encoding, LineProgram::none()));
    let (shim, shim_ptr) = {
        let unit = dwarf.units.get_mut(a);
        let root = unit.root();
        let shim = unit.add(root, gimli::DW_TAG_subprogram);
        unit.get_mut(shim).set(
            gimli::DW_AT_name,
            AttributeValue::String(b"__rust_dealloc".to_vec()),
        );
        let shim_ptr = unit.add(shim, gimli::DW_TAG_formal_parameter);
        unit.get_mut(shim_ptr)
            .set(gimli::DW_AT_name, AttributeValue::String(b"ptr".to_vec()));
        (shim, shim_ptr)
    };
    let unit = dwarf.units.get_mut(b);
    let root = unit.root();
    let user = unit.add(root, gimli::DW_TAG_subprogram);
    unit.get_mut(user)
        .set(gimli::DW_AT_name, AttributeValue::String(b"user".to_vec()));
    let inlined = unit.add(user, gimli::DW_TAG_inlined_subroutine);
    let die = unit.get_mut(inlined);
    die.set(
        gimli::DW_AT_abstract_origin,
        AttributeValue::DebugInfoRef(DebugInfoRef::Entry(a, shim)),
    );
    die.set(
        gimli::DW_AT_low_pc,
        AttributeValue::Address(Address::Constant(range.start)),
    );
    die.set(
        gimli::DW_AT_high_pc,
        AttributeValue::Udata(range.end - range.start),
    );
    let p = unit.add(inlined, gimli::DW_TAG_formal_parameter);
    let die = unit.get_mut(p);
    die.set(
        gimli::DW_AT_abstract_origin,
        AttributeValue::DebugInfoRef(DebugInfoRef::Entry(a, shim_ptr)),
    );
    if let Some(local) = ptr_local {
        die.set(gimli::DW_AT_location, in_local(local));
    }
    let mut sections = Sections::new(EndianVec::new(gimli::LittleEndian));
    dwarf.write(&mut sections).unwrap();
    with_sections(wasm, &sections)
}

/// A location in wasm local `local`: `DW_OP_WASM_location 0 N`,
/// `DW_OP_stack_value`.
fn in_local(local: u8) -> AttributeValue {
    AttributeValue::Exprloc(Expression::raw(vec![0xed, 0x00, local, 0x9f]))
}

/// `wasm` with the written DWARF `sections` appended as custom sections.
fn with_sections(wasm: &[u8], sections: &Sections<EndianVec<gimli::LittleEndian>>) -> Vec<u8> {
    let mut out = wasm.to_vec();
    sections
        .for_each(|id, data| -> Result<(), ()> {
            if !data.slice().is_empty() {
                custom_section(&mut out, id.name(), data.slice());
            }
            Ok(())
        })
        .unwrap();
    out
}

fn custom_section(out: &mut Vec<u8>, name: &str, data: &[u8]) {
    let mut payload = Vec::new();
    leb(&mut payload, name.len() as u64);
    payload.extend_from_slice(name.as_bytes());
    payload.extend_from_slice(data);
    out.push(0);
    leb(out, payload.len() as u64);
    out.extend_from_slice(&payload);
}

fn leb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Instrument (validating the output) and return the roles hooked and the
/// warnings.
fn run(wasm: &[u8]) -> (Vec<AllocFn>, Vec<String>) {
    let out = instrument(
        wasm,
        &Options {
            validate: true,
            ..Default::default()
        },
    )
    .expect("instruments");
    (
        out.report.allocators.iter().map(|a| a.role).collect(),
        out.report.warnings,
    )
}

/// Instrument `wasm` and check its one inlined free is hooked, without a
/// warning.
fn assert_hooked(wasm: &[u8]) {
    let (roles, warnings) = run(wasm);
    assert_eq!(
        roles,
        [
            AllocFn::RustAlloc,
            AllocFn::RustDealloc,
            AllocFn::InlinedDealloc
        ],
        "{warnings:?}"
    );
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn an_inlined_free_with_its_pointer_in_a_local_is_hooked_where_it_starts() {
    let wasm = wat::parse_str(MODULE).unwrap();
    let (ops, _) = user_offsets(&wasm);
    assert_hooked(&with_dwarf(&wasm, ops[0]..ops[2], None, Some(0)));
    // Without DWARF nothing is added.
    let (roles, _) = run(&wasm);
    assert_eq!(roles, [AllocFn::RustAlloc, AllocFn::RustDealloc]);
}

#[test]
fn an_inlined_free_described_in_another_unit_is_found_there() {
    // LTO: the code that inlined the free is in one unit, the free's own
    // description in another. Found and hooked; without a location for
    // its pointer, passed over with the reason (not silently).
    let wasm = wat::parse_str(MODULE).unwrap();
    let (ops, _) = user_offsets(&wasm);
    assert_hooked(&with_dwarf_across_units(&wasm, ops[0]..ops[2], Some(0)));
    let (roles, warnings) = run(&with_dwarf_across_units(&wasm, ops[0]..ops[2], None));
    assert_eq!(roles, [AllocFn::RustAlloc, AllocFn::RustDealloc]);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("DWARF says their pointer is optimized out where they start"),
        "{warnings:?}"
    );
}

#[test]
fn a_module_whose_free_is_c_free_is_not_searched() {
    // C's `free` (and the dlmalloc crate's) is too big to be inlined:
    // DWARF is not read, whatever it says.
    let c = MODULE
        .replace(
            r#"$__rust_alloc (export "__rust_alloc") (param i32 i32)"#,
            r#"$malloc (export "malloc") (param i32)"#,
        )
        .replace(
            r#"$__rust_dealloc (export "__rust_dealloc") (param i32 i32 i32)"#,
            r#"$free (export "free") (param i32)"#,
        );
    let wasm = wat::parse_str(c).unwrap();
    let (ops, _) = user_offsets(&wasm);
    let (roles, warnings) = run(&with_dwarf(&wasm, ops[0]..ops[2], None, Some(0)));
    assert_eq!(roles, [AllocFn::Malloc, AllocFn::Free]);
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn a_rust_allocator_of_its_own_beside_c_free_is_searched() {
    // A WASI build: wasi-libc's `malloc`/`free` are there for libc, and the
    // module's own `#[global_allocator]` (its `dealloc` a function, hooked,
    // and inlined into `$user` too): DWARF is read, and the inlined copy
    // hooked.
    let c = MODULE
        .replace(
            r#"$__rust_alloc (export "__rust_alloc") (param i32 i32)"#,
            r#"$malloc (export "malloc") (param i32)"#,
        )
        .replace(
            r#"$__rust_dealloc (export "__rust_dealloc") (param i32 i32 i32))"#,
            r#"$free (export "free") (param i32))"#,
        )
        .replace(
            "    end))",
            "    end)\n  (func $_ZN58_$LT$my..A$u20$as$u20$core..alloc..global..GlobalAlloc$GT$7dealloc17h0123456789abcdefE (param i32 i32 i32)))",
        );
    let wasm = wat::parse_str(c).unwrap();
    let (ops, _) = user_offsets(&wasm);
    let (roles, warnings) = run(&with_dwarf(&wasm, ops[0]..ops[2], None, Some(0)));
    assert!(roles.contains(&AllocFn::GlobalDealloc), "{roles:?}");
    assert!(
        roles.contains(&AllocFn::InlinedDealloc),
        "{roles:?} {warnings:?}"
    );
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn an_inlined_free_in_code_the_linker_removed_is_no_free_at_all() {
    // DWARF keeps the entries of functions the linker dropped, at
    // addresses outside the code: nothing to hook and nothing to say.
    let wasm = wat::parse_str(MODULE).unwrap();
    let (_, end) = user_offsets(&wasm);
    let (roles, warnings) = run(&with_dwarf(&wasm, end + 100..end + 120, None, Some(0)));
    assert_eq!(roles, [AllocFn::RustAlloc, AllocFn::RustDealloc]);
    assert_eq!(warnings, Vec::<String>::new());
}

#[test]
fn an_inlined_free_that_cannot_be_hooked_is_passed_over_with_the_reason() {
    let wasm = wat::parse_str(MODULE).unwrap();
    let (ops, end) = user_offsets(&wasm);
    for (range, entry, local, why) in [
        (
            ops[0]..ops[2],
            None,
            Some(1),
            "DWARF puts their pointer in a local of another type",
        ),
        (
            ops[0]..ops[2],
            None,
            Some(9),
            "DWARF says their pointer is optimized out where they start",
        ),
        (
            ops[0]..ops[2],
            None,
            None,
            "DWARF lists no parameters for them: the module has no full debug info): build with full debug info",
        ),
        (
            ops[2]..end,
            Some(ops[3]),
            Some(0),
            "they start inside a loop of their own code",
        ),
    ] {
        let (roles, warnings) = run(&with_dwarf(&wasm, range, entry, local));
        assert_eq!(roles, [AllocFn::RustAlloc, AllocFn::RustDealloc], "{why}");
        assert_eq!(warnings.len(), 1, "{why}: {warnings:?}");
        assert!(
            warnings[0].starts_with(
                "1 free of the allocator inlined into the code that frees cannot be hooked ("
            ) && warnings[0].contains(why),
            "{why}: {warnings:?}"
        );
    }
}

#[test]
fn damaged_dwarf_never_stops_instrumenting() {
    // The DWARF is the module's, so untrusted: flip bytes of its sections
    // (not their headers) and the module is instrumented all the same,
    // hooked or not, into a valid module: never refused, never a panic.
    let wasm = wat::parse_str(MODULE).unwrap();
    let (ops, _) = user_offsets(&wasm);
    let good = with_dwarf(&wasm, ops[0]..ops[2], None, Some(0));
    let sections = custom_payloads(&good, wasm.len());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..2000 {
        let mut bad = good.clone();
        for _ in 0..1 + next() % 4 {
            let (start, len) = sections[(next() % sections.len() as u64) as usize];
            let at = start + (next() % len as u64) as usize;
            bad[at] = next() as u8;
        }
        let out = instrument(
            &bad,
            &Options {
                validate: true,
                ..Default::default()
            },
        );
        assert!(out.is_ok(), "round {round}: {:?}", out.err());
    }
}

/// Where the payloads of the custom sections appended after `base` bytes
/// are, past each section's name: (start, length).
fn custom_payloads(wasm: &[u8], base: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = base;
    while at < wasm.len() {
        assert_eq!(wasm[at], 0);
        at += 1;
        let (size, n) = read_leb(&wasm[at..]);
        at += n;
        let end = at + size;
        let (name_len, n) = read_leb(&wasm[at..]);
        let payload = at + n + name_len;
        if end > payload {
            out.push((payload, end - payload));
        }
        at = end;
    }
    out
}

fn read_leb(b: &[u8]) -> (usize, usize) {
    let (mut v, mut shift, mut i) = (0usize, 0, 0);
    loop {
        let byte = b[i];
        v |= ((byte & 0x7f) as usize) << shift;
        i += 1;
        if byte & 0x80 == 0 {
            return (v, i);
        }
        shift += 7;
    }
}

//! Exports for the tools people already use: pprof's protobuf profile
//! (`go tool pprof`, the pprof web UI) and Valgrind DHAT's JSON
//! (`dh_view.html`). Folded stacks are in [`crate::flame`].

use crate::analysis::{Analysis, FrameView};
use rustc_hash::FxHashMap;
use std::io::Write;

/// pprof's `profile.proto`, the messages heapscope writes.
pub mod pprof {
    #![allow(missing_docs)]

    /// A profile.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Profile {
        #[prost(message, repeated, tag = "1")]
        pub sample_type: Vec<ValueType>,
        #[prost(message, repeated, tag = "2")]
        pub sample: Vec<Sample>,
        #[prost(message, repeated, tag = "4")]
        pub location: Vec<Location>,
        #[prost(message, repeated, tag = "5")]
        pub function: Vec<Function>,
        #[prost(string, repeated, tag = "6")]
        pub string_table: Vec<String>,
        #[prost(int64, tag = "9")]
        pub time_nanos: i64,
        #[prost(message, optional, tag = "11")]
        pub period_type: Option<ValueType>,
        #[prost(int64, tag = "12")]
        pub period: i64,
        #[prost(int64, repeated, tag = "13")]
        pub comment: Vec<i64>,
        #[prost(int64, tag = "14")]
        pub default_sample_type: i64,
    }

    /// A value's type and unit, as string table indices.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ValueType {
        #[prost(int64, tag = "1")]
        pub r#type: i64,
        #[prost(int64, tag = "2")]
        pub unit: i64,
    }

    /// One stack and its values.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(uint64, repeated, tag = "1")]
        pub location_id: Vec<u64>,
        #[prost(int64, repeated, tag = "2")]
        pub value: Vec<i64>,
    }

    /// A code location.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Location {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(uint64, tag = "3")]
        pub address: u64,
        #[prost(message, repeated, tag = "4")]
        pub line: Vec<Line>,
    }

    /// A source line of a location.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Line {
        #[prost(uint64, tag = "1")]
        pub function_id: u64,
        #[prost(int64, tag = "2")]
        pub line: i64,
    }

    /// A function.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Function {
        #[prost(uint64, tag = "1")]
        pub id: u64,
        #[prost(int64, tag = "2")]
        pub name: i64,
        #[prost(int64, tag = "3")]
        pub system_name: i64,
        #[prost(int64, tag = "4")]
        pub filename: i64,
    }
}

/// The sample types heapscope writes, in order: Go's heap profile names, so
/// pprof's `-sample_index` choices read as usual, plus the peak.
pub const PPROF_SAMPLE_TYPES: [(&str, &str); 5] = [
    ("alloc_objects", "count"),
    ("alloc_space", "bytes"),
    ("inuse_objects", "count"),
    ("inuse_space", "bytes"),
    ("peak_space", "bytes"),
];

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: FxHashMap<String, i64>,
}

impl Strings {
    fn new() -> Strings {
        let mut s = Strings::default();
        s.get("");
        s
    }

    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// The analysis as a pprof profile (not yet encoded). "In use" is live at
/// the end of the run; `peak_space` needs the peak snapshot.
pub fn pprof_profile(a: &Analysis) -> pprof::Profile {
    let mut strings = Strings::new();
    let mut functions: Vec<pprof::Function> = Vec::new();
    let mut function_ids: FxHashMap<(String, String), u64> = FxHashMap::default();
    let mut locations: Vec<pprof::Location> = Vec::new();
    let mut location_ids: FxHashMap<(String, String, u32), u64> = FxHashMap::default();
    let mut location = |f: &FrameView, strings: &mut Strings| -> u64 {
        let file = f.file.clone().unwrap_or_default();
        let key = (f.function.clone(), file.clone(), f.line);
        if let Some(&id) = location_ids.get(&key) {
            return id;
        }
        let fkey = (f.function.clone(), file.clone());
        let function_id = match function_ids.get(&fkey) {
            Some(&id) => id,
            None => {
                let id = functions.len() as u64 + 1;
                let name = strings.get(&f.function);
                functions.push(pprof::Function {
                    id,
                    name,
                    system_name: name,
                    filename: strings.get(&file),
                });
                function_ids.insert(fkey, id);
                id
            }
        };
        let id = locations.len() as u64 + 1;
        locations.push(pprof::Location {
            id,
            address: 0,
            line: vec![pprof::Line {
                function_id,
                line: i64::from(f.line),
            }],
        });
        location_ids.insert(key, id);
        id
    };
    let sample_type = PPROF_SAMPLE_TYPES
        .iter()
        .map(|(t, u)| pprof::ValueType {
            r#type: strings.get(t),
            unit: strings.get(u),
        })
        .collect();
    let unknown = FrameView {
        function: "[no stack]".into(),
        file: None,
        line: 0,
    };
    let mut samples = Vec::new();
    let mut ids: Vec<_> = a.profile.active().collect();
    ids.sort_by_key(|(id, _)| *id);
    for (id, s) in ids {
        if s.alloc_blocks == 0 {
            continue;
        }
        // The stacks the flamegraphs draw: from the user's entry point to
        // their first frame, unless --full-stacks.
        let frames = crate::flame::frames(a, id);
        let location_id = if frames.is_empty() {
            vec![location(&unknown, &mut strings)]
        } else {
            frames.iter().map(|f| location(f, &mut strings)).collect()
        };
        samples.push(pprof::Sample {
            location_id,
            value: [
                s.alloc_blocks,
                s.alloc_bytes,
                s.live_blocks,
                s.live_bytes,
                s.peak_bytes,
            ]
            .map(|v| v as i64)
            .to_vec(),
        });
    }
    let comment = vec![strings.get(&format!("heapscope: {}", a.module))];
    let period_type = Some(pprof::ValueType {
        r#type: strings.get("space"),
        unit: strings.get("bytes"),
    });
    let default_sample_type = strings.get("inuse_space");
    pprof::Profile {
        sample_type,
        sample: samples,
        location: locations,
        function: functions,
        string_table: strings.table,
        time_nanos: 0,
        period_type,
        period: 1,
        comment,
        default_sample_type,
    }
}

/// Write the pprof profile, gzip-compressed as pprof writes it.
pub fn pprof(a: &Analysis, out: &mut dyn Write) -> std::io::Result<()> {
    let bytes = prost::Message::encode_to_vec(&pprof_profile(a));
    let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    gz.write_all(&bytes)?;
    gz.finish()?;
    Ok(())
}

/// The analysis as DHAT's JSON (format version 2, what `dh_view.html`
/// loads). Times are heap events; "at t-gmax" is the peak of live bytes
/// (needs the peak snapshot), "at t-end" the end of the run.
pub fn dhat(a: &Analysis) -> serde_json::Value {
    let mut ftbl: Vec<String> = vec!["[root]".into()];
    let mut index: FxHashMap<String, usize> = FxHashMap::default();
    let mut frame = |f: &FrameView| -> usize {
        let key = format!("{}\u{0}{:?}\u{0}{}", f.function, f.file, f.line);
        *index.entry(key).or_insert_with(|| {
            let n = ftbl.len();
            ftbl.push(match &f.file {
                Some(file) if f.line > 0 => {
                    format!("0x{n:x}: {} ({file}:{}:0)", f.function, f.line)
                }
                Some(file) => format!("0x{n:x}: {} ({file})", f.function),
                None => format!("0x{n:x}: {}", f.function),
            });
            n
        })
    };
    let mut ids: Vec<_> = a
        .profile
        .active()
        .filter(|(_, s)| s.alloc_blocks > 0)
        .collect();
    ids.sort_by_key(|(id, _)| *id);
    let pps: Vec<serde_json::Value> = ids
        .into_iter()
        .map(|(id, s)| {
            // Whole stacks: DHAT has one program point per stack, and two
            // stacks that differ only in library frames would repeat one.
            let fs: Vec<usize> = a
                .stacks
                .get(&id)
                .map(|frames| frames.iter().map(&mut frame).collect())
                .unwrap_or_default();
            serde_json::json!({
                "tb": s.alloc_bytes, "tbk": s.alloc_blocks, "tl": s.lifetime_events,
                "mb": s.max_live_bytes, "mbk": s.max_live_blocks,
                "gb": s.peak_bytes, "gbk": s.peak_blocks,
                "eb": s.live_bytes, "ebk": s.live_blocks,
                "fs": fs,
            })
        })
        .collect();
    serde_json::json!({
        "dhatFileVersion": 2,
        "mode": "heap",
        "verb": "Allocated",
        "bklt": true,
        "bkacc": false,
        "tu": "events",
        "Mtu": "Mevents",
        "tuth": crate::profile::SHORT_LIVED_EVENTS,
        "cmd": format!("heapscope run {}", a.module),
        "pid": 0,
        "te": a.summary.events,
        "tg": a.peak_seq,
        "pps": pps,
        "ftbl": ftbl,
    })
}

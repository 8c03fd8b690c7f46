//! A JavaScript engine (Boa, in Rust) running an allocation-heavy script:
//! objects, strings, arrays, closures, JSON. `js.wasm [N]`.
use boa_engine::{Context, Source};

const SCRIPT: &str = r#"
function run(n) {
  const people = [];
  for (let i = 0; i < n; i++) {
    people.push({ id: i, name: "person " + i, tags: ["t" + (i % 7), "g" + (i % 3)], score: (i * 37) % 101 });
  }
  const byTag = {};
  for (const p of people) {
    for (const t of p.tags) {
      (byTag[t] = byTag[t] || []).push(p.name);
    }
  }
  const text = JSON.stringify(people);
  const back = JSON.parse(text);
  const top = back.filter(p => p.score > 50).map(p => p.name.toUpperCase()).sort();
  let words = "";
  for (let i = 0; i < n; i++) { words += String.fromCharCode(97 + (i % 26)); }
  return text.length + top.length + Object.keys(byTag).length + words.split("a").length;
}
"#;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("N is a number"))
        .unwrap_or(5_000);
    let mut context = Context::default();
    context
        .eval(Source::from_bytes(SCRIPT))
        .expect("the script loads");
    let result = context
        .eval(Source::from_bytes(&format!("run({n})")))
        .expect("the script runs");
    println!("run({n}) = {}", result.display());
}

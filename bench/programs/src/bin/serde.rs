//! A Rust program using serde_json, allocation-heavy: builds N records,
//! writes them as JSON, parses them back into `Value`s and into structs,
//! ROUNDS times, and prints a checksum. `serde.wasm [N] [ROUNDS]`.
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Order {
    id: u64,
    customer: String,
    tags: Vec<String>,
    lines: Vec<Line>,
    note: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Line {
    sku: String,
    quantity: u32,
    price: f64,
}

fn orders(n: u64) -> Vec<Order> {
    (0..n)
        .map(|i| Order {
            id: i,
            customer: format!("customer-{}", i % 997),
            tags: (0..i % 4).map(|t| format!("tag{t}")).collect(),
            lines: (0..1 + i % 5)
                .map(|l| Line {
                    sku: format!("SKU-{:06}", (i * 7 + l) % 100_000),
                    quantity: (1 + (i + l) % 9) as u32,
                    price: ((i * 13 + l) % 10_000) as f64 / 100.0,
                })
                .collect(),
            note: (i % 3 == 0).then(|| "leave at the door".repeat(1 + (i % 3) as usize)),
        })
        .collect()
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("N and ROUNDS are numbers"))
        .collect();
    let n = args.first().copied().unwrap_or(2_000);
    let rounds = args.get(1).copied().unwrap_or(5);
    let mut checksum = 0u64;
    for _ in 0..rounds {
        let text = serde_json::to_string(&orders(n)).expect("serialises");
        let value: serde_json::Value = serde_json::from_str(&text).expect("parses");
        let back: Vec<Order> = serde_json::from_value(value).expect("has the shape");
        let total: f64 = back
            .iter()
            .flat_map(|o| &o.lines)
            .map(|l| l.price * l.quantity as f64)
            .sum();
        checksum = checksum.wrapping_add(text.len() as u64 + total as u64);
    }
    println!("{n} orders x {rounds} rounds: checksum {checksum}");
}

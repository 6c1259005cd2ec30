//! Prints the SQL of generated cases: `schemagen SEED [MAJOR] [COUNT]` (MAJOR 13..18,
//! default 15; COUNT cases from SEED on, default 1), for reading a case or loading it by
//! hand.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(seed) = args.first().and_then(|s| s.parse::<u64>().ok()) else {
        eprintln!("usage: schemagen SEED [MAJOR] [COUNT]");
        std::process::exit(2);
    };
    let major = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(15);
    let count = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1u64);
    for s in seed..seed + count {
        print!("{}", coffer_testkit::schemagen::generate(s, major).sql);
    }
}

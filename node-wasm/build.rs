//! Compiles the example policy modules in `modules/*.wat` to WebAssembly
//! binaries in `OUT_DIR`, so the examples shipped with the node (and used by
//! the tests and the golden vectors) are always built from their source.

use std::path::Path;

fn main() {
    let out = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    for name in ["quadratic_vote", "flat_tax", "cheapest_bid"] {
        let src = format!("modules/{name}.wat");
        println!("cargo:rerun-if-changed={src}");
        let bytes = wat::parse_file(&src).unwrap_or_else(|e| panic!("{src}: {e}"));
        std::fs::write(Path::new(&out).join(format!("{name}.wasm")), bytes).expect("write module");
    }
}

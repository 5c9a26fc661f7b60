//! Embeds every file of `assets/` (the admin UI) into the binary: generates a table of
//! `(name, include_bytes!(…))` so the UI needs no front-end build step and new asset files
//! are picked up without touching Rust code.

use std::fmt::Write;
use std::path::Path;

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<String> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| !n.starts_with('.'))
            .collect(),
        Err(e) => panic!("cannot read the UI assets in {}: {e}", dir.display()),
    };
    names.sort();
    // A binary without its pages would serve 404 at / and /login: refuse to build one.
    for required in ["index.html", "login.html"] {
        assert!(
            names.iter().any(|n| n == required),
            "the UI asset {required} is missing from {}",
            dir.display()
        );
    }
    let mut out = String::from("/// Embedded UI assets: (file name, contents).\npub static ASSETS: &[(&str, &[u8])] = &[\n");
    for name in &names {
        let path = dir.join(name);
        let _ = writeln!(
            out,
            "    ({name:?}, include_bytes!({:?})),",
            path.display().to_string()
        );
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    std::fs::write(Path::new(&out_dir).join("assets.rs"), out)
        .expect("cannot write assets.rs into OUT_DIR");
}

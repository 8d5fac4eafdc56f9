//! Embeds the web console (`console/`) in the binary: writes
//! `$OUT_DIR/console_files.rs`, every file under `console/` as
//! `(relative path, include_bytes!(…))`, sorted, for
//! `features::console::assets`. Plain ES modules and CSS, so nothing is
//! built: no Node.js, no network.

use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    // Absent only where the sources are stubs (cargo-chef's dependency
    // recipe in deploy/Dockerfile); the real build has it, and a test checks
    // the entry page is embedded.
    if root.is_dir() {
        collect(&root, &mut files);
    } else {
        println!("cargo:warning=no {}: the console is not embedded", root.display());
    }
    files.sort();
    let mut out = String::from("pub(super) static FILES: &[(&str, &[u8])] = &[\n");
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under console/").to_string_lossy().replace('\\', "/");
        out.push_str(&format!("    ({relative:?}, include_bytes!({:?})),\n", file.display().to_string()));
    }
    out.push_str("];\n");
    let target = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("console_files.rs");
    fs::write(target, out).expect("cannot write console_files.rs");
}

fn collect(directory: &Path, files: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(directory).unwrap_or_else(|e| panic!("cannot read {}: {e}", directory.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else {
            files.push(path);
        }
    }
}

//! The console's files, embedded by `build.rs`, and their fingerprint: one
//! SHA-256 over every file (its path, length and bytes), computed once at
//! first use. Every asset is served under `/console/assets/<fingerprint>/`,
//! so the modules import each other by plain relative paths and any change
//! to any file moves them all to a new URL (cached for a year, immutable);
//! only the entry page, which names the fingerprint, is revalidated.

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

include!(concat!(env!("OUT_DIR"), "/console_files.rs"));

/// The entry page: a template naming the assets' directory as `{{ASSETS}}`
/// and the modules to preload as `{{PRELOAD}}`.
const ENTRY: &str = "index.html";
/// Hex digits of the fingerprint in asset URLs (64 bits: no collision between deployments).
const FINGERPRINT_LEN: usize = 16;

pub struct Assets {
    pub fingerprint: String,
    /// The entry page, its placeholders filled in.
    pub entry: String,
}

pub static ASSETS: LazyLock<Assets> = LazyLock::new(|| {
    let mut hash = Sha256::new();
    for (path, bytes) in FILES {
        hash.update(path.as_bytes());
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    let fingerprint: String = hash.finalize().iter().map(|byte| format!("{byte:02x}")).collect();
    let fingerprint = fingerprint[..FINGERPRINT_LEN].to_owned();
    let base = format!("/console/assets/{fingerprint}");
    let preload: String = FILES
        .iter()
        .filter(|(path, _)| path.ends_with(".js"))
        .map(|(path, _)| format!("<link rel=\"modulepreload\" href=\"{base}/{path}\">\n"))
        .collect();
    let template =
        FILES.iter().find(|(path, _)| *path == ENTRY).map_or("", |(_, bytes)| std::str::from_utf8(bytes).unwrap_or(""));
    let entry = template.replace("{{PRELOAD}}", &preload).replace("{{ASSETS}}", &base);
    Assets { fingerprint, entry }
});

/// An asset's bytes and media type; `None` for the entry page and unknown paths.
pub fn asset(path: &str) -> Option<(&'static [u8], &'static str)> {
    if path == ENTRY {
        return None;
    }
    let (_, bytes) = FILES.iter().find(|(name, _)| *name == path)?;
    Some((bytes, media_type(path)?))
}

fn media_type(path: &str) -> Option<&'static str> {
    Some(match path.rsplit_once('.')?.1 {
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "html" => "text/html; charset=utf-8",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_has_a_media_type_and_the_entry_names_the_assets() {
        for (path, _) in FILES {
            assert!(media_type(path).is_some(), "{path} has no media type: add it to media_type");
        }
        assert!(ASSETS.entry.contains(&format!("/console/assets/{}/app.js", ASSETS.fingerprint)));
        assert!(!ASSETS.entry.contains("{{"), "a placeholder is left in the entry page");
    }
}

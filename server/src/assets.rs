//! The page's static files: which names carry a content hash, and how long a
//! browser may keep each answer.
//!
//! cargo-leptos (`hash-files` in the workspace's Cargo.toml) renames the page's js,
//! wasm and css to `bookstore.<hash>.<ext>` and lists the hashes in
//! `<site root>/hash.txt`. Leptos reads that file to write the hashed names into
//! the page; this module reads it once more to know which files may be kept for a
//! year (`immutable`: a new build has new names). Everything else is revalidated:
//! the favicon for an hour, pages and API answers on every load.
//!
//! The files themselves are served by leptos_axum's fallback (tower-http's
//! `ServeDir`), which picks the `.br` or `.gz` copy cargo-leptos wrote beside each
//! file (`--precompress`) when the browser accepts it; pages and API answers are
//! compressed as they go out (`CompressionLayer` in `startup.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::Request;
use axum::http::header::{HeaderValue, CACHE_CONTROL};
use axum::middleware::Next;
use axum::response::Response;

/// The name of the hash list cargo-leptos writes into the site root.
pub const HASH_FILE: &str = "hash.txt";

const FOR_GOOD: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const FOR_AN_HOUR: HeaderValue = HeaderValue::from_static("public, max-age=3600");
const REVALIDATE: HeaderValue = HeaderValue::from_static("no-cache");

/// The hashes of one build of the page, as listed in its hash file.
#[derive(Debug, Clone, Default)]
pub struct AssetHashes {
    hashes: Arc<[String]>,
}

impl AssetHashes {
    /// Reads `<site_root>/hash.txt`; a site built without hashes has none (and then
    /// nothing is cached for good).
    pub fn read(site_root: &str) -> Self {
        let text = std::fs::read_to_string(hash_file_path(site_root)).unwrap_or_default();
        Self::parse(&text)
    }

    /// Lines of `kind: hash` (`js: …`, `wasm: …`, `css: …`).
    fn parse(text: &str) -> Self {
        let hashes = text
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(_, hash)| hash.trim())
            .filter(|hash| hash.len() >= 8)
            .map(str::to_owned)
            .collect();
        Self { hashes }
    }

    pub fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// Whether `path` names a file of this build by its content hash
    /// (`/pkg/bookstore.<hash>.wasm`, or its `.br`/`.gz` copy).
    fn is_hashed(&self, path: &str) -> bool {
        let Some(name) = path.strip_prefix("/pkg/") else { return false };
        !name.contains('/') && self.hashes.iter().any(|hash| name.contains(&format!(".{hash}.")))
    }

    /// How long a browser may keep the answer to a GET of `path`.
    fn cache_control(&self, path: &str) -> HeaderValue {
        if self.is_hashed(path) {
            FOR_GOOD
        } else if path == "/favicon.svg" {
            FOR_AN_HOUR
        } else {
            REVALIDATE
        }
    }
}

/// The hash file's path as Leptos needs it: Leptos joins the name to the folder of
/// the running executable, and joining an absolute path keeps that path, so the
/// server, its tests and a container all read the file beside the files it names.
pub fn hash_file_path(site_root: &str) -> PathBuf {
    let path = Path::new(site_root).join(HASH_FILE);
    std::path::absolute(&path).unwrap_or(path)
}

/// Middleware: sets `Cache-Control` on every successful GET that has none.
pub async fn cache_headers(hashes: AssetHashes, request: Request, next: Next) -> Response {
    let is_get = request.method() == axum::http::Method::GET;
    let control = hashes.cache_control(request.uri().path());
    let mut response = next.run(request).await;
    if is_get && response.status().is_success() && !response.headers().contains_key(CACHE_CONTROL) {
        response.headers_mut().insert(CACHE_CONTROL, control);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASHES: &str = "js: 2mJ1Gm0dFQ4hMbVHKOQ2sA\nwasm: AAp3CBMpXtz2HWMn2q1lWQ\ncss: 7Ykq1F-2XK0-8RfQmW1ycQ\n";

    #[test]
    fn only_files_named_by_a_hash_of_this_build_are_kept_for_good() {
        let hashes = AssetHashes::parse(HASHES);
        assert_eq!(hashes.cache_control("/pkg/bookstore.AAp3CBMpXtz2HWMn2q1lWQ.wasm"), FOR_GOOD);
        assert_eq!(hashes.cache_control("/pkg/bookstore.2mJ1Gm0dFQ4hMbVHKOQ2sA.js"), FOR_GOOD);
        assert_eq!(hashes.cache_control("/pkg/bookstore.7Ykq1F-2XK0-8RfQmW1ycQ.css"), FOR_GOOD);
        // An older build's name, an unhashed name, a file elsewhere: revalidated.
        assert_eq!(hashes.cache_control("/pkg/bookstore.0000000000000000000000.wasm"), REVALIDATE);
        assert_eq!(hashes.cache_control("/pkg/bookstore.wasm"), REVALIDATE);
        assert_eq!(hashes.cache_control("/pkg/snippets/x/AAp3CBMpXtz2HWMn2q1lWQ.js"), REVALIDATE);
        assert_eq!(hashes.cache_control("/"), REVALIDATE);
        assert_eq!(hashes.cache_control("/orders/abc"), REVALIDATE);
        assert_eq!(hashes.cache_control("/favicon.svg"), FOR_AN_HOUR);
    }

    #[test]
    fn a_site_without_a_hash_file_caches_nothing_for_good() {
        let hashes = AssetHashes::read("/nonexistent/site");
        assert!(hashes.is_empty());
        assert_eq!(hashes.cache_control("/pkg/bookstore.wasm"), REVALIDATE);
    }

    #[test]
    fn the_hash_file_path_is_absolute_so_leptos_does_not_look_beside_the_executable() {
        assert!(hash_file_path("target/site").is_absolute());
        assert!(hash_file_path("target/site").ends_with("target/site/hash.txt"));
    }
}

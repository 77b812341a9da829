//! The stylesheet and scripts, embedded in the binary and served under a versioned path, so that browsers may keep
//! them for a year: a new build changes the version and so the path.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../../assets/console.css"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/console.js"),
    },
    // htmx 2.0.11 (zero-clause BSD, see `assets/htmx.LICENSE`), unmodified.
    Asset {
        name: "htmx.min.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../../assets/htmx.min.js"),
    },
];

/// A digest of every asset: the path segment that changes whenever one of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: not a security measure, only a cache key.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in ASSETS.iter().flat_map(|asset| asset.body.iter()) {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
});

/// The path a page links to for asset `name`.
pub(crate) fn href(name: &str) -> String {
    format!("/ui/assets/{}/{name}", *VERSION)
}

pub(crate) async fn serve(Path((version, name)): Path<(String, String)>) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    // An old version's path still gets today's file, but only for a short while in caches.
    let cache = if version == *VERSION { "public, max-age=31536000, immutable" } else { "public, max-age=60" };
    let mut response = asset.body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

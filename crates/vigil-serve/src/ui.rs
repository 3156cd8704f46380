//! The web UI served by the binary: a fleet overview and an entity view over the HTTP API,
//! with feedback by brushing a range. Its files (`crates/vigil-serve/ui/`) are embedded at build
//! time, so the binary is all an operator installs. Plain JavaScript with no build step (there is
//! nothing to compile, so nothing for CI to install); charts by the vendored uPlot (MIT, 50 KB,
//! with brushing built in; `ui/vendor/uplot/README.md` says which version and from where).
//!
//! The files hold no data and need no token: the page asks the API with the token and tenant
//! the operator types in, which the browser keeps (the token only for the session).

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../ui/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!(
        "vendor/uplot/uPlot.iife.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("vendor/uplot/uPlot.min.css", "text/css; charset=utf-8"),
];

/// Everything from here only, nothing inline (so text from the API can never run as code or
/// restyle the page; the scripts set styles through the DOM, which this allows), and the page
/// is not framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// `/` sends a browser to the UI; `/ui/` is the page, `/ui/FILE` its files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        // Relative, so that the UI also works behind a proxy that adds a path prefix.
        .route("/", get(|| async { Redirect::to("ui/") }))
        .route("/ui", get(|| async { Redirect::to("ui/") }))
        .route(
            "/ui/",
            get(|headers: HeaderMap| async move { file("index.html", &headers) }),
        )
        .route(
            "/ui/{*path}",
            get(
                |Path(path): Path<String>, headers: HeaderMap| async move { file(&path, &headers) },
            ),
        )
}

/// An asset's entity tag: its bytes' hash, so a browser's copy is checked, not fetched again.
fn etag(asset: &Asset) -> String {
    use md5::{Digest, Md5};
    let hex: String = Md5::digest(asset.bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("\"{hex}\"")
}

fn file(path: &str, request: &HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            format!("the UI has no file `{path}`; open /ui/\n"),
        )
            .into_response();
    };
    let tag = etag(asset);
    let unchanged = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut response = if unchanged {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        asset.bytes.into_response()
    };
    let headers = response.headers_mut();
    headers.insert(
        header::ETAG,
        HeaderValue::from_str(&tag).expect("hex is a header value"),
    );
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // A new binary may bring new files: the browser asks each time, and gets 304 while its
    // copy's tag is current.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_names_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].bytes).unwrap();
        for reference in page
            .split(['"', '\''])
            .filter(|s| s.ends_with(".js") || s.ends_with(".css"))
        {
            assert!(
                ASSETS.iter().any(|a| a.path == reference),
                "index.html names `{reference}`, which is not embedded"
            );
        }
    }

    #[test]
    fn an_unknown_file_is_404_and_a_known_one_has_its_type() {
        let none = HeaderMap::new();
        assert_eq!(file("secret.txt", &none).status(), StatusCode::NOT_FOUND);
        assert_eq!(file("../Cargo.toml", &none).status(), StatusCode::NOT_FOUND);
        let page = file("app.js", &none);
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }

    #[test]
    fn a_current_copy_is_answered_304_and_a_stale_one_gets_the_file() {
        let tag = file("app.js", &HeaderMap::new()).headers()[header::ETAG].clone();
        let mut asking = HeaderMap::new();
        asking.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(file("app.js", &asking).status(), StatusCode::NOT_MODIFIED);
        asking.insert(header::IF_NONE_MATCH, HeaderValue::from_static("\"stale\""));
        assert_eq!(file("app.js", &asking).status(), StatusCode::OK);
    }
}

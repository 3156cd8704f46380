//! The web UI served by the binary: a fleet overview and an entity view over the HTTP API,
//! with feedback by brushing a range. Its files (`crates/vigil-serve/ui/`) are embedded at build
//! time, so the binary is all an operator installs. Plain JavaScript with no build step (there is
//! nothing to compile, so nothing for CI to install); charts by the vendored uPlot (MIT, 50 KB,
//! with brushing built in; `ui/vendor/uplot/README.md` says which version and from where).
//!
//! The files hold no data and need no token: the page asks the API with the token and tenant
//! the operator types in, which the browser keeps (the token only for the session).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
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

/// Scripts only from here (no inline script, so text from the API can never run as code);
/// uPlot sets element styles, hence inline styles.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
     frame-ancestors 'none'";

/// `/` sends a browser to the UI; `/ui/` is the page, `/ui/FILE` its files.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(|| async { file("index.html") }))
        .route(
            "/ui/{*path}",
            get(|Path(path): Path<String>| async move { file(&path) }),
        )
}

fn file(path: &str) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return (
            StatusCode::NOT_FOUND,
            format!("the UI has no file `{path}`; open /ui/\n"),
        )
            .into_response();
    };
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    // Small files, and a new binary may bring new ones: the browser asks each time (304s).
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
        assert_eq!(file("secret.txt").status(), StatusCode::NOT_FOUND);
        assert_eq!(file("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        let page = file("app.js");
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(
            page.headers()[header::CONTENT_TYPE],
            "text/javascript; charset=utf-8"
        );
    }
}

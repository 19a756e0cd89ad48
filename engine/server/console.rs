//! The web console (`/console/`): one page, its script, style sheet and icon, compiled into
//! the binary. It is a client of the same `/auth` and `/api/v1` endpoints as any other, with
//! the same tokens and roles: nothing here reads the store.
//!
//! Every answer carries a Content-Security-Policy that allows only this server's own script,
//! style, images and API (`'self'`), no inline script or style, no frames, no form posts; so
//! an injected tag could neither run nor send anything elsewhere. No file refers to another
//! host: the console works on a factory network without the internet.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

/// The console's Content-Security-Policy.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const INDEX: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/app.js");
const STYLE: &str = include_str!("console/app.css");
const ICON: &str = include_str!("console/icon.svg");

/// The console's routes: `/` and `/console` redirect to `/console/`; `/reset-password` (the
/// link of the password reset mail) is the console's reset form.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route(
            "/console/",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/reset-password",
            get(|| async { page(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/console/app.js",
            get(|| async { page(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/app.css",
            get(|| async { page(STYLE, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/icon.svg",
            get(|| async { page(ICON, "image/svg+xml") }),
        )
}

fn page(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary: revalidate on every load (they are small).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No file of the console names another host: no `http://`, `https://` or
    /// protocol-relative `//host` reference outside comments is allowed.
    #[test]
    fn console_files_name_no_other_host() {
        for (name, text) in [
            ("index.html", INDEX),
            ("app.js", SCRIPT),
            ("app.css", STYLE),
            ("icon.svg", ICON),
        ] {
            for (number, line) in text.lines().enumerate() {
                let code = line.split("// ").next().unwrap_or(line);
                for marker in ["http://", "https://", "src=\"//", "href=\"//", "url(//"] {
                    // The SVG namespace is a name, not a resource the browser loads.
                    if code.contains(marker) && !code.contains("xmlns=\"http://www.w3.org/") {
                        panic!("{name}:{}: names another host: {line}", number + 1);
                    }
                }
            }
        }
    }

    /// The policy forbids inline script and style and names no other source than the server.
    #[test]
    fn policy_allows_only_self() {
        assert!(CSP.contains("default-src 'none'"));
        assert!(CSP.contains("script-src 'self';"));
        assert!(!CSP.contains("unsafe"));
        assert!(!CSP.contains("http"));
        assert!(!INDEX.contains("<script>"), "inline script in index.html");
        assert!(!INDEX.contains("style="), "inline style in index.html");
        assert!(!INDEX.contains("<style"), "inline style in index.html");
    }
}

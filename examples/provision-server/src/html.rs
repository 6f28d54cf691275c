//! Server-rendered HTML: the page layout and the security headers every page carries.
//!
//! Pages are [`maud`] templates: every value put into a page with `(value)` is escaped.
//! [`PreEscaped`] is only for markup this server makes itself (the style sheet, the QR
//! code's SVG), never for anything a request or the store supplied.

use axum::http::HeaderValue;
use axum::http::header::{self, HeaderMap};
use maud::{DOCTYPE, Markup, PreEscaped, html};

const STYLE: &str = "body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}\
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}\
.error{color:#a00}.ok{color:#070}nav a{margin-right:1em}label{display:block;margin:.5em 0}\
pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap}";

/// A complete page: the layout (title, style sheet, heading) around `body`.
pub fn page(title: &str, body: Markup) -> String {
    html! {
        (DOCTYPE) "\n"
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { (title) } "\n"
                (body) "\n"
            }
        }
        "\n"
    }
    .into_string()
}

/// The content security policy of every answer.
pub const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers for every HTML page: no caching (pages may show codes), no referrer (URLs may
/// hold codes), no framing, a strict content security policy.
pub fn headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        let page = page("<a href=\"x\">'&'</a>", html! { p { "body" } });
        assert!(
            page.contains("<title>&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</title>"),
            "{page}"
        );
        assert!(
            page.contains("<h1>&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;</h1>\n<p>body</p>\n"),
            "{page}"
        );
        assert!(!page.contains("<a href"), "{page}");
        assert_eq!(
            csrf_field("\"><x>").into_string(),
            "<input type=\"hidden\" name=\"csrf\" value=\"&quot;&gt;&lt;x&gt;\">"
        );
    }

    #[test]
    fn lays_out_the_page() {
        let page = page("T", html! { p { "b" } });
        assert!(page.starts_with(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>T</title><style>body{"
        ));
        assert!(page.ends_with("</style></head><body><h1>T</h1>\n<p>b</p>\n</body></html>\n"));
    }
}

//! Where the console may send a browser back to, and which requests count as cross-site.

use axum::http::HeaderMap;

use crate::console::session::{is_cross_site, local_path};

#[track_caller]
fn check(next: &str, expected: Option<&str>) {
    assert_eq!(local_path(Some(next)), expected, "{next:?}");
}

#[test]
fn only_paths_of_this_site_are_followed() {
    check("/", Some("/"));
    check("/ui/tasks?name=a&enabled=true", Some("/ui/tasks?name=a&enabled=true"));
    check("/ui/tasks/ünïcode", Some("/ui/tasks/ünïcode"));
    check("", None);
    check("ui/tasks", None);
    check("https://evil.example/", None);
    check("//evil.example/", None);
    check("/\\evil.example/", None);
    check("/\t/evil.example/", None);
    check("/\n/evil.example/", None);
    check("/ui/tasks\r\nSet-Cookie: a=b", None);
    assert_eq!(local_path(None), None);
}

#[test]
fn requests_a_browser_marks_as_cross_site_are_refused() {
    let headers = |pairs: &[(&'static str, &'static str)]| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    };
    assert!(is_cross_site(&headers(&[("sec-fetch-site", "cross-site")])));
    assert!(is_cross_site(&headers(&[("origin", "null")])));
    assert!(!is_cross_site(&headers(&[("sec-fetch-site", "same-origin"), ("origin", "http://127.0.0.1:8080")])));
    // Behind a proxy that rewrites `Host`, `Origin` names the public address: not a reason to refuse.
    assert!(!is_cross_site(&headers(&[("origin", "https://jobs.example.com"), ("host", "10.0.0.5:8080")])));
    assert!(!is_cross_site(&headers(&[])));
}

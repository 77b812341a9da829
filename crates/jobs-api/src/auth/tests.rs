//! Which routes take a signature, how `Authorization` reads, and the `auth` section's checks.

use axum::http::{HeaderMap, HeaderValue, Method, header};

use jobs_model::Secret;

use crate::auth::{AuthConfig, bearer_token, is_executor_route};

#[track_caller]
fn check_route(method: Method, path: &str, expected: bool) {
    assert_eq!(is_executor_route(&method, path), expected, "{method} {path}");
}

#[test]
fn executor_routes_take_signatures() {
    let id = "0190f1c4-0000-7000-8000-000000000000";
    for prefix in ["", "/api/v1"] {
        check_route(Method::POST, &format!("{prefix}/executors/register"), true);
        check_route(Method::POST, &format!("{prefix}/executors/{id}/heartbeat"), true);
        check_route(Method::DELETE, &format!("{prefix}/executors/{id}"), true);
        check_route(Method::POST, &format!("{prefix}/executions/{id}/callback"), true);
        check_route(Method::POST, &format!("{prefix}/executions/{id}/logs"), true);

        check_route(Method::GET, &format!("{prefix}/executors"), false);
        check_route(Method::GET, &format!("{prefix}/executors/{id}"), false);
        check_route(Method::PUT, &format!("{prefix}/executors/{id}/status"), false);
        check_route(Method::DELETE, &format!("{prefix}/executors/register"), false);
        check_route(Method::GET, &format!("{prefix}/executions/{id}/logs"), false);
        check_route(Method::POST, &format!("{prefix}/executions/{id}/cancel"), false);
        check_route(Method::POST, &format!("{prefix}/tasks/t/trigger"), false);
        check_route(Method::POST, &format!("{prefix}/executors/register/"), false);
    }
}

#[track_caller]
fn check_bearer(value: &str, expected: Option<&str>) {
    let mut headers = HeaderMap::new();
    headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    assert_eq!(bearer_token(&headers), Some(expected), "{value}");
}

#[test]
fn reads_bearer_tokens() {
    assert_eq!(bearer_token(&HeaderMap::new()), None);
    check_bearer("Bearer abc", Some("abc"));
    check_bearer("bearer  abc ", Some("abc"));
    check_bearer("Bearer", None);
    check_bearer("Bearer ", None);
    check_bearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l", None);
    check_bearer("abc", None);
}

#[track_caller]
fn check_config(config: AuthConfig, expected: Result<(), &str>) {
    assert_eq!(config.validate(), expected.map_err(str::to_owned));
}

#[test]
fn empty_credentials_are_refused() {
    check_config(AuthConfig::default(), Ok(()));
    check_config(AuthConfig { api_tokens: vec![Secret::new("t")], executor_secret: Some(Secret::new("s")) }, Ok(()));
    check_config(
        AuthConfig { api_tokens: vec![Secret::new("t"), Secret::new(" ")], ..AuthConfig::default() },
        Err("auth.api_tokens[1] must not be empty"),
    );
    check_config(
        AuthConfig { api_tokens: vec![Secret::new("tök")], ..AuthConfig::default() },
        Err("auth.api_tokens[0] must be printable ASCII (it travels in an HTTP header)"),
    );
    check_config(
        AuthConfig { executor_secret: Some(Secret::new("")), ..AuthConfig::default() },
        Err("auth.executor_secret must not be empty (leave it out to turn signatures off)"),
    );
}

#[test]
fn debug_hides_secrets() {
    let config = AuthConfig { api_tokens: vec![Secret::new("t0ken")], executor_secret: Some(Secret::new("s3cret")) };
    assert_eq!(format!("{config:?}"), "AuthConfig { api_tokens: [***], executor_secret: Some(***) }");
}

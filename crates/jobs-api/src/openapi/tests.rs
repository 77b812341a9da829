//! The document covers exactly the routes the router serves, and its errors use the one error body.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::Value;
use tokio::sync::watch;
use tower::ServiceExt;

use jobs_balance::Manager;
use jobs_election::{Lease, Role};
use jobs_engine::{DispatchError, Engine, EngineParts, ExecutorClient};
use jobs_model::ExecutionId;
use jobs_model::protocol::DispatchRequest;
use jobs_registry::Registry;

use crate::openapi::{document_json, page};
use crate::{AuthConfig, ServerConfig};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    document_json()
}

/// `(METHOD, path)` of every operation in the document.
fn documented_routes() -> BTreeSet<(String, String)> {
    let doc = document();
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// `(METHOD, path)` of every `.route(...)` in `router()`'s source; paths other than `/health`, `/ready` and `/metrics` are nested
/// in `/api/v1`.
fn routed_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../lib.rs");
    let mut routes = BTreeSet::new();
    for call in source.split(".route(").skip(1) {
        let call = &call[..closing_paren(call)];
        let path = call.split('"').nth(1).expect("a route's path is a string literal");
        let path = if path.starts_with("/health") || path == "/ready" || path == "/metrics" {
            path.to_owned()
        } else {
            format!("/api/v1{path}")
        };
        for method in METHODS {
            let found = call
                .match_indices(&format!("{method}("))
                .any(|(at, _)| at == 0 || !call[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':'));
            if found {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Where the call whose arguments start `text` ends.
fn closing_paren(text: &str) -> usize {
    let mut depth = 1;
    for (at, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' if depth == 1 => return at,
            ')' => depth -= 1,
            _ => {}
        }
    }
    panic!("unbalanced parentheses in `.route({text}`");
}

#[test]
fn every_route_of_the_router_is_documented_and_no_other() {
    let routed = routed_routes();
    let documented = documented_routes();
    assert!(routed.len() >= 20, "the source scan found too few routes: {routed:?}");
    let missing: Vec<_> = routed.difference(&documented).collect();
    assert!(missing.is_empty(), "routes missing from the OpenAPI document: {missing:?}");
    let extra: Vec<_> = documented.difference(&routed).collect();
    assert!(extra.is_empty(), "documented routes the router does not serve: {extra:?}");
}

/// An executor client for an engine that never dispatches (it is never the leader here).
#[derive(Debug)]
struct NoExecutors;

#[async_trait]
impl ExecutorClient for NoExecutors {
    async fn execute(&self, _: &str, _: &DispatchRequest) -> Result<(), DispatchError> {
        Err(DispatchError::Unreachable("no executors in this test".to_owned()))
    }

    async fn cancel(&self, _: &str, _: ExecutionId) -> Result<(), DispatchError> {
        Err(DispatchError::Unreachable("no executors in this test".to_owned()))
    }
}

async fn test_router() -> axum::Router {
    let store = jobs_storage::testing::test_store().await;
    let (_role, role_receiver) = watch::channel(Role::Follower);
    let registry = Arc::new(Registry::new(store.clone(), Default::default()));
    let engine = Engine::new(EngineParts {
        store,
        registry,
        strategies: Arc::new(Manager::default()),
        client: Arc::new(NoExecutors),
        config: Default::default(),
        instance_id: "openapi-test".to_owned(),
        lock_key: "openapi-test".to_owned(),
        advertised_url: "http://127.0.0.1:1".to_owned(),
        role: role_receiver,
        lease: Lease::default(),
        health_check: Default::default(),
        retention: Default::default(),
        alerts: Default::default(),
        executor_secret: None,
        clock: std::sync::Arc::new(jobs_engine::SystemClock),
        tls: None,
    });
    crate::router(engine, &ServerConfig::default(), &AuthConfig::default())
}

/// Sends a bodiless request; returns the status and, for an error, the error body's `code` (panics on another body).
async fn send(router: &axum::Router, method: &str, uri: &str) -> (StatusCode, Option<String>) {
    let request = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    if status.is_success() {
        return (status, None);
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
        panic!("{method} {uri}: {status} without the error body: {}", String::from_utf8_lossy(&body))
    });
    assert!(body["error"]["message"].is_string(), "{method} {uri}: {body}");
    assert!(!body["error"]["message"].as_str().unwrap().contains("no such route"), "{method} {uri} is not routed");
    (status, Some(body["error"]["code"].as_str().unwrap().to_owned()))
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let router = test_router().await;
    let documented = documented_routes();
    assert!(documented.len() >= 20);
    for (method, path) in documented {
        let uri = path
            .replace("{task}", "no-such-task")
            .replace("{executor}", "0190a5b4-2c3d-7e4f-8a9b-0c1d2e3f4a5b")
            .replace("{execution}", "0190a5b4-2c3d-7e4f-8a9b-0c1d2e3f4a5b");
        let (status, code) = send(&router, &method, &uri).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}: {code:?}");
        if uri == "/ready" {
            // No engine runs here, so this instance never serves: not ready, and saying so is no fault.
            assert_eq!((status, code.as_deref()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
            continue;
        }
        assert!(!status.is_server_error(), "{method} {uri}: {status} {code:?}");
    }
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_gets_400_with_the_error_body() {
    let router = test_router().await;
    for (method, path) in documented_routes().into_iter().filter(|(_, path)| path.contains('{')) {
        let uri = path.replace("{task}", "%FF").replace("{executor}", "%FF").replace("{execution}", "%FF");
        let (status, code) = send(&router, &method, &uri).await;
        assert_eq!((status, code.as_deref()), (StatusCode::BAD_REQUEST, Some("invalid_input")), "{method} {uri}");
    }
}

#[tokio::test]
async fn the_document_and_the_page_are_served() {
    let router = test_router().await;
    let request = Request::get("/api/v1/openapi.json").body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let served: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(served, document());
    assert_eq!(served["info"]["title"], "jobs");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));

    let request = Request::get("/api/v1/docs").body(Body::empty()).unwrap();
    let response = router.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let page = String::from_utf8(body.to_vec()).unwrap();
    for (_, path) in documented_routes() {
        assert!(page.contains(&format!("<code>{path}</code>")), "the page misses {path}");
    }
    for loads in ["<script", "<link", "<img", "src=", "@import", "url("] {
        assert!(!page.contains(loads), "the page loads nothing, yet has `{loads}`");
    }
}

#[test]
fn every_error_response_is_the_error_body() {
    let doc = document();
    let error_body = serde_json::json!({"$ref": "#/components/schemas/ErrorBody"});
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for (status, response) in operation["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    continue;
                }
                let response = match response["$ref"].as_str() {
                    Some(reference) => &doc["components"]["responses"][reference.rsplit('/').next().unwrap()],
                    None => response,
                };
                let schema = &response["content"]["application/json"]["schema"];
                assert_eq!(schema, &error_body, "{method} {path} {status}");
            }
        }
    }
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]));
}

#[test]
fn operation_ids_are_unique_and_api_routes_declare_security() {
    let doc = document();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "duplicate operationId {id}");
            let secured = operation.get("security").is_some();
            assert_eq!(secured, path.starts_with("/api/v1/"), "{method} {path}: security");
        }
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["executor_signature"]["name"], "X-Jobs-Signature");
}

#[test]
fn signed_routes_are_the_ones_the_auth_layer_takes_signatures_on() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path.replace("{task}", "t").replace("{executor}", "e").replace("{execution}", "x");
        for (method, operation) in item.as_object().unwrap() {
            let documented = operation["security"].as_array().into_iter().flatten().any(|requirement| {
                requirement.get("executor_signature").is_some() && requirement.get("executor_timestamp").is_some()
            });
            let method = axum::http::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            assert_eq!(documented, crate::auth::is_executor_route(&method, &concrete), "{method} {path}");
        }
    }
}

#[test]
fn schemes_are_described() {
    let doc = document();
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["executor_timestamp"]["name"], "X-Jobs-Timestamp");
    for (name, scheme) in schemes {
        assert!(scheme["description"].as_str().is_some_and(|text| !text.is_empty()), "{name}");
    }
}

#[test]
fn links_name_existing_operations_and_their_parameters() {
    let doc = document();
    let mut operations = std::collections::BTreeMap::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            operations.insert(operation["operationId"].as_str().unwrap().to_owned(), operation.clone());
        }
    }
    let mut count = 0;
    for operation in operations.values() {
        for response in operation["responses"].as_object().unwrap().values() {
            for link in response["links"].as_object().into_iter().flat_map(|links| links.values()) {
                let target = &operations[link["operationId"].as_str().expect("links use `operationId`")];
                for name in link["parameters"].as_object().unwrap().keys() {
                    let parameters = target["parameters"].as_array().unwrap();
                    assert!(parameters.iter().any(|parameter| parameter["name"] == *name), "{link}");
                }
                count += 1;
            }
        }
    }
    assert!(count >= 15, "{count} links");
}

#[test]
fn page_escapes_text() {
    let mut doc = document();
    doc["info"]["title"] = "<jobs & co>".into();
    let html = page::render(&doc);
    assert!(html.contains("&lt;jobs &amp; co&gt;"));
    assert!(!html.contains("<jobs & co>"));
}

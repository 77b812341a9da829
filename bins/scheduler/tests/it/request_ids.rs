//! Every response carries `X-Request-Id`: the caller's when it is sane, else a fresh UUID.

use crate::support::{TestApp, spawn_app};

async fn request_id(app: &TestApp, path: &str, incoming: Option<&str>) -> (u16, String) {
    let mut request = app.client.get(app.url(path));
    if let Some(incoming) = incoming {
        request = request.header("x-request-id", incoming);
    }
    let response = request.send().await.expect("request sent");
    let id = response.headers().get("x-request-id").map(|id| id.to_str().expect("ASCII").to_owned());
    (response.status().as_u16(), id.unwrap_or_else(|| panic!("{path}: no X-Request-Id in the response")))
}

#[tokio::test]
async fn responses_carry_a_request_id_and_echo_a_sane_incoming_one() {
    let app = spawn_app().await;

    let (status, first) = request_id(&app, "/health", None).await;
    assert_eq!(status, 200);
    let (_, second) = request_id(&app, "/api/v1/tasks", None).await;
    for id in [&first, &second] {
        assert_eq!(id.len(), 36, "`{id}` should be a UUID");
        assert_eq!(id.matches('-').count(), 4, "`{id}` should be a UUID");
    }
    assert_ne!(first, second, "each request gets its own id");

    let (status, echoed) = request_id(&app, "/api/v1/scheduler/status", Some("client-abc.123")).await;
    assert_eq!((status, echoed.as_str()), (200, "client-abc.123"));
    // Rejected requests carry one too.
    let (status, echoed) = request_id(&app, "/api/v1/nowhere", Some("lost-route-1")).await;
    assert_eq!((status, echoed.as_str()), (404, "lost-route-1"));

    for odd in ["has space", "quote\"d", &"x".repeat(129)] {
        let (_, replaced) = request_id(&app, "/health", Some(odd)).await;
        assert_ne!(replaced, odd);
        assert_eq!(replaced.len(), 36, "`{odd}` should be replaced by a UUID, got `{replaced}`");
    }
    app.stop().await;
}

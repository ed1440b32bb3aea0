//! What the edge does for every route: correlation ids, 404/405, body limits, CORS, health.

use serde_json::json;

use crate::support::{get_text, get_with_headers};
use crate::{TestStack, status_and_json};

#[tokio::test(flavor = "multi_thread")]
async fn correlation_id_is_echoed_or_minted() {
    let stack = TestStack::start().await;
    for (header, id) in [("X-Correlation-ID", "abc-123"), ("X-Request-ID", "req-9")] {
        let response = get_with_headers(&stack, "/api/v1/flights/", &[(header, id)]).await;
        assert_eq!(response.headers()["x-correlation-id"], id);
        // The header the client sent comes back under its own name too.
        assert_eq!(response.headers()[header], id);
    }
    let response = get_with_headers(&stack, "/api/v1/flights/", &[("X-Correlation-ID", "c")]).await;
    assert!(
        response.headers().get("x-request-id").is_none(),
        "X-Request-ID only where the client uses it"
    );
    // An unusable id (over 128 characters) is replaced, and not echoed.
    let long = "x".repeat(129);
    let response = get_with_headers(&stack, "/api/v1/flights/", &[("X-Request-ID", &long)]).await;
    assert_eq!(response.headers()["x-correlation-id"].len(), 36);
    assert!(response.headers().get("x-request-id").is_none());

    // Errors carry one too, and a minted one is a UUID.
    let response = get_with_headers(&stack, "/nope", &[]).await;
    let minted = response.headers()["x-correlation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(minted.len(), 36, "{minted}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_routes_and_methods_and_big_bodies() {
    let stack = TestStack::start_with(|env, _| env.set("GATEWAY_MAX_BODY_BYTES", "4096")).await;
    assert_eq!(
        stack.get("/api/v1/nothing").await,
        (404, json!({"detail": "Ruta no encontrada."}))
    );

    let response = stack
        .http
        .delete(stack.url("/api/v1/flights/"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_json(response).await,
        (405, json!({"detail": "Metodo no permitido."}))
    );

    let big = "x".repeat(5000); // this stack allows 4096 bytes
    let response = stack
        .http
        .post(stack.url("/api/v1/flights/destinations/"))
        .header("content-type", "application/json")
        .body(format!(r#"{{"name": "{big}", "tax_amount": 1}}"#))
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_and_json(response).await,
        (
            413,
            json!({"detail": "El cuerpo de la solicitud es demasiado grande."})
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cors_allows_the_configured_origins_with_credentials() {
    let stack = TestStack::start().await;
    let response = stack
        .http
        .request(reqwest::Method::OPTIONS, stack.url("/api/v1/flights/"))
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    assert_eq!(headers["access-control-allow-credentials"], "true");

    let response = get_with_headers(
        &stack,
        "/api/v1/flights/",
        &[("Origin", "http://evil.example")],
    )
    .await;
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn health_docs_and_metrics() {
    let stack = TestStack::start().await;
    assert_eq!(
        stack.get("/health").await,
        (
            200,
            json!({"status": "ok", "message": "Sistema con Agente de IA Operativo"})
        )
    );
    // Swagger UI and ReDoc, served from the gateway itself (scripts/docs_browser_check.py drives
    // them in a browser).
    for (path, loads) in [
        ("/docs", "/docs/assets/swagger-ui-bundle.js"),
        ("/redoc", "/docs/assets/redoc.standalone.js"),
    ] {
        let docs = get_with_headers(&stack, path, &[]).await;
        assert_eq!(docs.status(), 200);
        let csp = docs.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{csp}");
        let page = docs.text().await.unwrap();
        assert!(page.contains(loads), "{path}");
        assert!(
            !page.contains("https://"),
            "the docs pages load nothing from the internet"
        );
    }
    let init = get_text(&stack, "/docs/assets/swagger-init.js").await;
    assert!(init.contains("/openapi.json"), "{init}");
    // The bundles: gzipped to a client that accepts it, inflated for one that does not.
    let bundle = "/docs/assets/swagger-ui.css";
    let gzipped = get_with_headers(&stack, bundle, &[("accept-encoding", "gzip")]).await;
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["content-type"], "text/css; charset=utf-8");
    let gzipped_len = gzipped.bytes().await.unwrap().len();
    let plain = get_with_headers(&stack, bundle, &[("accept-encoding", "identity")]).await;
    assert!(plain.headers().get("content-encoding").is_none());
    let css = plain.text().await.unwrap();
    assert!(css.len() > gzipped_len && css.contains(".swagger-ui"));
    let missing = get_with_headers(&stack, "/docs/assets/nothing.js", &[]).await;
    assert_eq!(missing.status(), 404);

    stack.get("/api/v1/flights/").await;
    let metrics = get_text(&stack, "/metrics").await;
    assert!(metrics.contains("http_server_requests_total"), "{metrics}");
    assert!(metrics.contains(r#"route="/api/v1/flights""#), "{metrics}");
}

//! The interactive API docs people already know from FastAPI: Swagger UI at `/docs` and ReDoc at
//! `/redoc`, both reading `/openapi.json`. Their bundles are vendored (scripts/vendor-docs-ui.sh)
//! and embedded gzipped, so the pages work offline and cost no disk or network at run time.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

/// A vendored file: name, content type, gzipped bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    gzipped: &'static [u8],
}

const ASSETS: &[Asset] = &[
    Asset {
        name: "swagger-ui-bundle.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../assets/vendor/swagger-ui-bundle.js.gz"),
    },
    Asset {
        name: "swagger-ui.css",
        content_type: "text/css; charset=utf-8",
        gzipped: include_bytes!("../assets/vendor/swagger-ui.css.gz"),
    },
    Asset {
        name: "redoc.standalone.js",
        content_type: "text/javascript; charset=utf-8",
        gzipped: include_bytes!("../assets/vendor/redoc.standalone.js.gz"),
    },
];

/// Where the bundles are served; the versions in the path make them cacheable for good.
const ASSETS_PATH: &str = "/docs/assets";

const SWAGGER_UI_HTML: &str = r##"<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flightmesh — API (Swagger UI)</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/assets/swagger-init.js"></script>
</body>
</html>
"##;

/// Swagger UI's start-up, a file rather than an inline script so that the pages' CSP can refuse
/// inline scripts.
const SWAGGER_INIT_JS: &str = r##"window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  persistAuthorization: true,
  displayRequestDuration: true,
  tryItOutEnabled: true,
});
"##;

/// What the docs pages may load: the gateway's own files and API only (ReDoc's Redocly logo, an
/// image on a CDN, is refused: the pages work offline and call nothing else). Both UIs style
/// elements inline; ReDoc runs its search in a worker made from a blob.
const DOCS_CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
     script-src 'self'; worker-src blob:; connect-src 'self'; frame-ancestors 'none'";

const REDOC_HTML: &str = r#"<!doctype html>
<html lang="es">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flightmesh — API (ReDoc)</title>
<style>body { margin: 0; }</style>
</head>
<body>
<redoc spec-url="/openapi.json"></redoc>
<script src="/docs/assets/redoc.standalone.js"></script>
</body>
</html>
"#;

/// `/docs` (and `/docs/`), `/redoc` and the bundles they load.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/docs", get(|| async { page(SWAGGER_UI_HTML) }))
        .route("/docs/", get(|| async { page(SWAGGER_UI_HTML) }))
        .route("/redoc", get(|| async { page(REDOC_HTML) }))
        .route(
            &format!("{ASSETS_PATH}/swagger-init.js"),
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
                    SWAGGER_INIT_JS,
                )
            }),
        )
        .route(&format!("{ASSETS_PATH}/{{file}}"), get(asset))
}

/// A docs page with its Content-Security-Policy.
fn page(html: &'static str) -> Response {
    (
        [(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_CSP),
        )],
        Html(html),
    )
        .into_response()
}

/// A bundle, gzipped to clients that accept it (every browser), inflated for the others.
async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return crate::error::ApiError::detail(StatusCode::NOT_FOUND, "Ruta no encontrada.")
            .into_response();
    };
    let accepts_gzip = headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut response = if accepts_gzip {
        let mut response = asset.gzipped.into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        response
    } else {
        let mut plain = Vec::new();
        match std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(asset.gzipped),
            &mut plain,
        ) {
            Ok(_) => plain.into_response(),
            Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    );
    headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

//! Helpers the API tests share: starting a mesh or a lone gateway, sending requests as a caller,
//! and reading headers and metrics. (`login_burst` includes this file too.)

use std::net::SocketAddr;

use flightmesh::testing::{TestMesh, status_and_json};
use flightmesh_gateway::{Config, Gateway};
use flightmesh_runtime::{CancellationToken, Env};
use flightmesh_testkit::TestDatabase;
use serde_json::Value;

/// The bootstrap admin's email in the meshes started by [`production_mesh`].
pub const ADMIN_EMAIL: &str = "admin@flightmesh.test";

/// `env` with `vars` set.
pub fn with_vars(env: Env, vars: &[(&str, &str)]) -> Env {
    vars.iter()
        .fold(env, |env, (name, value)| env.set(*name, *value))
}

/// Starts the test mesh with `vars` set in its environment.
pub async fn mesh_with(vars: &[(&str, &str)]) -> TestMesh {
    let vars: Vec<(String, String)> = vars
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
    TestMesh::start_with(move |env, _| {
        vars.into_iter()
            .fold(env, |env, (name, value)| env.set(name, value))
    })
    .await
}

/// The mesh under the production policy (in the gateway and in bookings), with `vars` set too.
pub async fn production_mesh_with(vars: &[(&str, &str)]) -> TestMesh {
    // Both enforcers: the gateway's route table and bookings' ownership rules.
    mesh_with(&[&[("ACCESS_POLICY", "production")], vars].concat()).await
}

/// The mesh under the production policy, with the bootstrap admin [`ADMIN_EMAIL`] signing in
/// with `admin_password`.
pub async fn production_mesh(admin_password: &str) -> TestMesh {
    production_mesh_with(&[
        ("GATEWAY_ADMIN_EMAIL", ADMIN_EMAIL),
        ("GATEWAY_ADMIN_PASSWORD", admin_password),
    ])
    .await
}

/// `request` with `token` as its bearer, if there is one.
pub fn with_bearer(
    request: reqwest::RequestBuilder,
    token: Option<&str>,
) -> reqwest::RequestBuilder {
    match token {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Sends `request`, with `token` as its bearer if there is one → (status, JSON).
pub async fn send_as(request: reqwest::RequestBuilder, token: Option<&str>) -> (u16, Value) {
    status_and_json(with_bearer(request, token).send().await.unwrap()).await
}

/// GET `path` through the gateway as `token` (anonymous with `None`) → (status, JSON).
pub async fn get_as(mesh: &TestMesh, path: &str, token: Option<&str>) -> (u16, Value) {
    send_as(mesh.http.get(mesh.url(path)), token).await
}

/// POST JSON to `path` through the gateway as `token` (anonymous with `None`) → (status, JSON).
pub async fn post_as(
    mesh: &TestMesh,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    send_as(mesh.http.post(mesh.url(path)).json(body), token).await
}

/// GET `path` through the gateway with extra request `headers` → the response as it came.
pub async fn get_with_headers(
    mesh: &TestMesh,
    path: &str,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let request = headers
        .iter()
        .fold(mesh.http.get(mesh.url(path)), |request, (name, value)| {
            request.header(*name, *value)
        });
    request.send().await.unwrap()
}

/// GET `path` through the gateway → the body as text, whatever the status.
pub async fn get_text(mesh: &TestMesh, path: &str) -> String {
    get_with_headers(mesh, path, &[])
        .await
        .text()
        .await
        .unwrap()
}

/// GET `url` (anywhere, not only through the gateway) → the body as text.
pub async fn fetch_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The gateway's metrics page, from its admin port.
pub async fn admin_metrics(mesh: &TestMesh) -> String {
    fetch_text(&format!("http://{}/metrics", mesh.addrs.gateway_admin)).await
}

/// The value of the unlabelled metric `name` on a metrics `page`, if it is there.
pub fn metric(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

/// The `field` of each item of a JSON list.
pub fn field_of_each(list: &Value, field: &str) -> Vec<Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("a list: {list}"))
        .iter()
        .map(|item| item[field].clone())
        .collect()
}

/// The value of header `name` in `response`, if it has one.
pub fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().unwrap().to_owned())
}

/// (status, JSON body, the value of header `name`) of a response.
pub async fn status_json_and_header(
    response: reqwest::Response,
    name: &str,
) -> (u16, Value, Option<String>) {
    let value = header(&response, name);
    let (status, body) = status_and_json(response).await;
    (status, body, value)
}

/// An address on which nothing listens (bound for a moment, then released).
pub fn closed_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// The environment of a gateway alone on `db` (no mesh behind it) with the production policy,
/// with `vars` set.
pub fn lone_gateway_env(db: &TestDatabase, vars: &[(&str, &str)]) -> Env {
    let env = Env::from_pairs([
        ("DATABASE_URL", db.url()),
        ("HTTP_ADDR", "127.0.0.1:0"),
        ("ADMIN_ADDR", "127.0.0.1:0"),
        ("DRAIN_DELAY", "0s"),
        ("ENVIRONMENT", "development"),
        ("ACCESS_POLICY", "production"),
        ("RATE_LIMIT_AUTH", "100000/60s"),
        ("LOG_FORMAT", "text"),
    ]);
    with_vars(env, vars)
}

/// A gateway started from an environment of its own, outside any mesh.
pub struct LoneGateway {
    /// `http://<public address>`.
    pub base: String,
    /// `http://<admin address>`.
    pub admin: String,
    /// Cancel to stop it.
    pub stop: CancellationToken,
    /// Its serving loop: ends when it has stopped.
    pub task: tokio::task::JoinHandle<Result<(), flightmesh_runtime::BoxError>>,
}

/// Builds a gateway from `env` and runs it in the background.
pub async fn start_gateway(env: &Env) -> LoneGateway {
    let gateway = Gateway::build(Config::from_env(env).expect("a valid configuration"))
        .await
        .expect("the gateway starts");
    let stop = CancellationToken::new();
    LoneGateway {
        base: format!("http://{}", gateway.local_addr()),
        admin: format!("http://{}", gateway.admin_addr()),
        stop: stop.clone(),
        task: tokio::spawn(gateway.run(stop)),
    }
}

/// Starts a gateway alone on `db` (see [`lone_gateway_env`]), with `vars` set.
pub async fn start_lone_gateway(db: &TestDatabase, vars: &[(&str, &str)]) -> LoneGateway {
    start_gateway(&lone_gateway_env(db, vars)).await
}

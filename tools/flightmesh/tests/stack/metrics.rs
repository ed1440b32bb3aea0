//! Every metric of the operations docs is on the admin port of the services it names, after
//! traffic that exercises each of them.

use flightmesh::model_stub::{Reply, Stub};
use flightmesh::testing::TestMesh;
use serde_json::json;

/// (metric, services) from the Metrics table of docs/operations.md.
fn documented_metrics() -> Vec<(String, Vec<String>)> {
    let docs = include_str!("../../../../docs/operations.md");
    let table = docs
        .split("| Metric | Type | Labels | From |")
        .nth(1)
        .expect("docs/operations.md has the metrics table");
    table
        .lines()
        .skip(2)
        .take_while(|line| line.starts_with('|'))
        .map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let name = cells[1].trim_matches('`').to_owned();
            let services = cells[4].split(',').map(|s| s.trim().to_owned()).collect();
            (name, services)
        })
        .collect()
}

async fn scrape(http: &reqwest::Client, url: String) -> String {
    let response = http.get(&url).send().await.expect("scrape");
    assert_eq!(response.status(), 200, "{url}");
    response.text().await.expect("a text body")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_metric_is_exposed_after_traffic() {
    let model = Stub::start().await;
    let mesh = TestMesh::start_with_model(
        &model,
        &[
            ("AI_AI_MODEL", "stub-model"),
            ("GATEWAY_RATE_LIMIT_AI", "2/60s"),
        ],
    )
    .await;

    // Catalog, a booking and its cancellation, the stats it causes.
    let destination = mesh.destination("Metrica", 10.0, true, true).await;
    let flight = mesh.flight("MT100", 200.0, destination, 10).await;
    let (status, booking) = mesh
        .post(
            "/api/v1/bookings/",
            &json!({"passenger_name": "Nino", "passenger_age": 8, "flight_id": flight, "has_pet": true}),
        )
        .await;
    assert_eq!(status, 200, "{booking}");
    let id = booking["id"].as_i64().unwrap();
    let (status, _) = mesh
        .post(&format!("/api/v1/bookings/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(status, 200);
    let http = reqwest::Client::new();
    let stats_metrics = format!("http://{}/metrics", mesh.addrs.admin[2]);
    flightmesh::testing::eventually(std::time::Duration::from_secs(15), || async {
        scrape(&http, stats_metrics.clone())
            .await
            .contains(r#"event_type="booking.cancelled""#)
    })
    .await;
    assert_eq!(mesh.get("/api/v1/stats/general").await.0, 200);

    // The model answers with a tool call, then text; the third question is over the AI limit.
    model.script([
        Reply::tool_call("c1", "market_data", json!({"destination": "Metrica"})),
        Reply::Text("Metrica paga 10.00 de impuestos."),
        Reply::Text("Hola."),
    ]);
    for expected in [200, 200, 429] {
        let (status, body) = mesh
            .post(
                "/api/v1/ai/chat",
                &json!({"message": "¿Impuestos de Metrica?"}),
            )
            .await;
        assert_eq!(status, expected, "{body}");
    }
    // A route that needs a user, without one.
    assert_eq!(mesh.get("/api/v1/auth/me").await.0, 401);
    // The destination search, straight to the agent (the gateway's AI budget is spent above).
    let mut agent = flightmesh_proto::ai::ai_agent_service_client::AiAgentServiceClient::new(
        mesh.channel(mesh.addrs.ai).await,
    );
    agent
        .embed_destination(flightmesh_proto::ai::EmbedDestinationRequest {
            destination_id: destination,
            description: "playas y buceo".into(),
        })
        .await
        .expect("embedded");
    agent
        .search_destinations(flightmesh_proto::ai::SearchDestinationsRequest {
            query: "buceo".into(),
            limit: None,
        })
        .await
        .expect("searched");

    let [flights, bookings, stats, ai] = mesh.addrs.admin;
    let gateway_metrics = format!("http://{}/metrics", mesh.addrs.gateway_admin);
    let mut pages = vec![("gateway", scrape(&http, gateway_metrics).await)];
    for (service, addr) in [
        ("flights", flights),
        ("bookings", bookings),
        ("stats-worker", stats),
        ("ai-agent", ai),
    ] {
        pages.push((
            service,
            scrape(&http, format!("http://{addr}/metrics")).await,
        ));
    }

    let documented = documented_metrics();
    assert!(documented.len() >= 20, "{documented:?}");
    for (metric, services) in documented {
        for service in services {
            let page = &pages
                .iter()
                .find(|(name, _)| *name == service)
                .unwrap_or_else(|| panic!("{metric}: unknown service {service}"))
                .1;
            let exposed = page.lines().any(|line| {
                !line.starts_with('#')
                    && line
                        .strip_prefix(metric.as_str())
                        .is_some_and(|rest| rest.starts_with(['{', ' ', '_']))
            });
            assert!(exposed, "{metric} is not on the /metrics of {service}");
        }
    }
    mesh.stop().await;
}

#[test]
fn the_grafana_dashboard_charts_every_documented_metric_and_only_those() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../../docs/grafana/flightmesh.json"))
            .expect("valid JSON");
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().into_iter().flatten())
        .map(|target| target["expr"].as_str().expect("an expr"))
        .collect();
    let documented: Vec<String> = documented_metrics()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    // Metric names end in a unit or `_total` (Prometheus conventions); labels do not.
    let suffixes = ["_total", "_seconds", "_bucket", "_events"];
    for expr in &exprs {
        for token in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if suffixes.iter().any(|s| token.ends_with(s)) {
                let metric = token.strip_suffix("_bucket").unwrap_or(token);
                assert!(
                    documented.iter().any(|d| d == metric),
                    "{metric} in the dashboard is not documented"
                );
            }
        }
    }
    for metric in &documented {
        assert!(
            exprs.iter().any(|e| e.contains(metric.as_str())),
            "{metric} has no panel"
        );
    }
}

//! Creates the catalog a run books on, through the public REST API.

use crate::client::Client;

/// A flight the scenarios may book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlightInfo {
    pub id: i64,
    pub allows_pets: bool,
}

/// Creates `destinations` destinations (every third without pets, every second on promotion) and
/// `flights` flights over them with `capacity` seats each. Names carry `tag` so runs never clash.
pub async fn catalog(
    base: &str,
    tag: &str,
    destinations: usize,
    flights: usize,
    capacity: i32,
) -> Result<Vec<FlightInfo>, String> {
    let Client::Rest { http, .. } = Client::rest(base, 16) else {
        unreachable!("Client::rest is a REST client")
    };
    let base = base.trim_end_matches('/');
    let mut created = Vec::new();
    for d in 0..destinations.max(1) {
        let allows_pets = d % 3 != 2;
        let body = serde_json::json!({
            "name": format!("{tag} destino {d}"),
            "tax_amount": 25 + 5 * d,
            "is_promotion": d % 2 == 0,
            "allows_pets": allows_pets,
        });
        let destination = post(
            http.clone(),
            &format!("{base}/api/v1/flights/destinations/"),
            &body,
        )
        .await?;
        created.push((
            destination["id"].as_i64().ok_or("destination without id")?,
            allows_pets,
        ));
    }
    let mut out = Vec::with_capacity(flights);
    for f in 0..flights.max(1) {
        let (destination_id, allows_pets) = created[f % created.len()];
        let body = serde_json::json!({
            "flight_number": format!("{tag}-{f}"),
            "origin": "Bogota",
            "base_price": 100 + 10 * (f % 50),
            "destination_id": destination_id,
            "capacity": capacity,
        });
        let flight = post(http.clone(), &format!("{base}/api/v1/flights/"), &body).await?;
        out.push(FlightInfo {
            id: flight["id"].as_i64().ok_or("flight without id")?,
            allows_pets,
        });
    }
    Ok(out)
}

async fn post(
    http: reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> Result<serde_json::Value, String> {
    let response = http
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{url}: {e}"))?;
    let status = response.status();
    let json: serde_json::Value = response.json().await.map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(json)
    } else {
        Err(format!("{url}: {status} {json}"))
    }
}

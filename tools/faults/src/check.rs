//! The invariants after a fault: nothing lost, nothing twice, nothing oversold, nobody broken.

use std::fmt;
use std::time::{Duration, Instant};

use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::{Value, json};

use crate::clients::ClientReport;
use crate::deploy::Deployment;

/// What one scenario shows.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// The scenario.
    pub scenario: String,
    /// Bookings the clients got a 200 for.
    pub acknowledged: usize,
    /// Of those, found in PostgreSQL under the id the API answered.
    pub found: usize,
    /// `booking.created` events applied in Redis.
    pub applied: i64,
    /// Bookings in PostgreSQL (acknowledged or not: a client that gave up may have booked).
    pub stored: i64,
    /// Logical bookings stored more than once.
    pub duplicates: i64,
    /// Acknowledged but not found.
    pub lost: usize,
    /// Flights with more confirmed bookings than seats.
    pub oversold: i64,
    /// Whether Redis equals PostgreSQL's sums (the `loadgen verify` figures).
    pub statistics_agree: bool,
    /// The comparison, printed when it does not.
    pub comparison: String,
    /// Attempts retried by the clients (5xx or transport).
    pub retried: u64,
    /// Answers 500.
    pub internal_errors: usize,
    /// The first of their bodies.
    pub internal_error_bodies: Vec<String>,
    /// Bookings not answered within the clients' patience, and other 4xx.
    pub failed: u64,
    /// From the fault until bookings succeed again.
    pub recovery: Duration,
    /// The longest a booking started after the fault waited for its answer (retries included).
    pub longest_wait: Duration,
    /// Processes not stopped by the test that are gone or not ready.
    pub unhealthy: Vec<String>,
}

impl Verdict {
    /// Panics naming every invariant that does not hold.
    ///
    /// # Panics
    /// See above.
    pub fn assert_holds(&self) {
        let mut broken = Vec::new();
        if self.lost > 0 {
            broken.push(format!("{} acknowledged bookings lost", self.lost));
        }
        if self.duplicates > 0 {
            broken.push(format!("{} bookings stored twice", self.duplicates));
        }
        if self.oversold > 0 {
            broken.push(format!("{} flights oversold", self.oversold));
        }
        if !self.statistics_agree {
            broken.push(format!(
                "the statistics differ from the bookings:\n{}",
                self.comparison
            ));
        }
        if self.internal_errors > 0 {
            broken.push(format!(
                "{} answers 500 ({:?})",
                self.internal_errors, self.internal_error_bodies
            ));
        }
        if self.failed > 0 {
            broken.push(format!("{} bookings failed for good", self.failed));
        }
        if !self.unhealthy.is_empty() {
            broken.push(format!("unhealthy: {:?}", self.unhealthy));
        }
        assert!(
            broken.is_empty(),
            "{}: {}\n{self}",
            self.scenario,
            broken.join("; ")
        );
    }

    /// The verdict as JSON (the docs' tables are made from these lines).
    #[must_use]
    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario, "acknowledged": self.acknowledged, "found": self.found,
            "applied": self.applied, "stored": self.stored, "duplicates": self.duplicates,
            "lost": self.lost, "oversold": self.oversold, "statistics_agree": self.statistics_agree,
            "retried": self.retried, "internal_errors": self.internal_errors, "failed": self.failed,
            "recovery_ms": u64::try_from(self.recovery.as_millis()).unwrap_or(u64::MAX),
            "longest_wait_ms": u64::try_from(self.longest_wait.as_millis()).unwrap_or(u64::MAX),
        })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: acknowledged {} · found {} · applied {} (stored {}) · duplicates {} · lost {} · \
             oversold {} · statistics {} · retried attempts {} · 500s {} · failed {} · recovery {:.1} s \
             · longest wait {:.1} s",
            self.scenario,
            self.acknowledged,
            self.found,
            self.applied,
            self.stored,
            self.duplicates,
            self.lost,
            self.oversold,
            if self.statistics_agree {
                "= PostgreSQL"
            } else {
                "DIFFER"
            },
            self.retried,
            self.internal_errors,
            self.failed,
            self.recovery.as_secs_f64(),
            self.longest_wait.as_secs_f64()
        )
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(diesel::QueryableByName)]
struct Stored {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    passenger_name: String,
}

/// One number from PostgreSQL.
async fn count(conn: &mut AsyncPgConnection, sql: &'static str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .expect(sql)
        .n
}

impl Deployment {
    /// A catalog to book on: eight flights over three destinations, two of them with 40 seats
    /// only (so that sold-out answers and the oversell invariant are exercised). Returns the
    /// flight ids.
    ///
    /// # Panics
    /// If the gateway refuses it.
    pub async fn catalog(&self) -> Vec<i64> {
        let http = reqwest::Client::new();
        let base = self.gateways()[0].clone();
        let post = |path: &str, body: Value| {
            let (http, url) = (http.clone(), format!("{base}{path}"));
            async move {
                let response = http.post(url).json(&body).send().await.expect("gateway");
                let status = response.status();
                let body: Value = response.json().await.expect("JSON");
                assert_eq!(status, 200, "{body}");
                body["id"].as_i64().expect("an id")
            }
        };
        let mut destinations = Vec::new();
        for (name, promotion) in [("Cartagena", true), ("Lima", false), ("Cusco", true)] {
            destinations.push(
                post(
                    "/api/v1/flights/destinations/",
                    json!({"name": name, "tax_amount": 25.5, "is_promotion": promotion, "allows_pets": true}),
                )
                .await,
            );
        }
        let mut flights = Vec::new();
        for n in 0..8 {
            let capacity = if n < 2 { 40 } else { 100_000 };
            flights.push(
                post(
                    "/api/v1/flights/",
                    json!({
                        "flight_number": format!("FM{n:03}"), "origin": "Bogota",
                        "base_price": 100 + n * 10, "destination_id": destinations[n % 3],
                        "capacity": capacity
                    }),
                )
                .await,
            );
        }
        flights
    }

    /// Checks the invariants after the clients of `scenario` stopped (`fault`: when the fault
    /// was injected, for the recovery time). Waits up to a minute for the events to be applied.
    ///
    /// # Panics
    /// If PostgreSQL or Redis cannot be read.
    pub async fn check(
        &mut self,
        scenario: &str,
        report: &ClientReport,
        fault: Instant,
    ) -> Verdict {
        let acknowledged = report.acknowledged();
        let ids: Vec<i64> = acknowledged.iter().filter_map(|b| b.id).collect();
        let mut conn = AsyncPgConnection::establish(self.database_url())
            .await
            .expect("the deployment's database");
        let stored_rows: Vec<Stored> = diesel::sql_query(
            "SELECT id, passenger_name FROM bookings.bookings WHERE id = ANY($1)",
        )
        .bind::<diesel::sql_types::Array<BigInt>, _>(&ids)
        .load(&mut conn)
        .await
        .expect("bookings");
        let found = acknowledged
            .iter()
            .filter(|b| {
                stored_rows
                    .iter()
                    .any(|row| Some(row.id) == b.id && row.passenger_name == b.passenger)
            })
            .count();
        let stored = count(&mut conn, "SELECT count(*) AS n FROM bookings.bookings").await;
        let duplicates = count(
            &mut conn,
            "SELECT count(*) - count(DISTINCT passenger_name) AS n FROM bookings.bookings",
        )
        .await;
        let oversold = count(
            &mut conn,
            "SELECT count(*) AS n FROM (SELECT b.flight_id FROM bookings.bookings b \
             JOIN flights.flights f ON f.id = b.flight_id WHERE b.status = 'confirmed' \
             GROUP BY b.flight_id, f.capacity HAVING count(*) > f.capacity) o",
        )
        .await;
        let comparison = flightmesh_loadgen::verify::settle(
            self.database_url(),
            &self.redis_url,
            &self.names.redis_prefix,
            Duration::from_secs(60),
        )
        .await
        .expect("PostgreSQL and Redis can be read");
        let verdict = Verdict {
            scenario: scenario.to_owned(),
            acknowledged: acknowledged.len(),
            found,
            applied: comparison.redis.created,
            stored,
            duplicates,
            lost: acknowledged.len() - found,
            oversold,
            statistics_agree: comparison.agrees(),
            comparison: comparison.to_string(),
            retried: report.retried,
            internal_errors: report.internal_errors.len(),
            internal_error_bodies: report.internal_errors.iter().take(3).cloned().collect(),
            failed: report.gave_up + report.client_errors.len() as u64,
            recovery: report.recovery_after(fault),
            longest_wait: report.longest_wait_after(fault),
            unhealthy: self.unhealthy().await,
        };
        eprintln!("{verdict}");
        eprintln!("FAULT-VERDICT {}", verdict.json());
        verdict
    }
}

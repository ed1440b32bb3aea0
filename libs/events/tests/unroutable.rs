//! An event no queue takes yet (its consumer has not declared its queue: a first start) is
//! retried quietly; one that stays unroutable past the grace period is a warning. Both are
//! delivered once the queue exists.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use flightmesh_events::outbox::{self, NewEvent};
use flightmesh_events::relay::{Relay, RelayConfig};
use flightmesh_runtime::CancellationToken;
use flightmesh_runtime::config::{Env, Secret};
use flightmesh_testkit::{TestDatabase, unique_name};
use lapin::options::{
    ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const TABLE: &str = "flights.outbox";

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Whether a line at `level` names the outbox row `id`.
    fn logged(&self, level: &str, id: i64) -> bool {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .any(|l| l.contains(level) && l.contains(&format!("id={id} ")))
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn event(exchange: &str, aggregate_id: i64) -> NewEvent {
    NewEvent {
        event_id: uuid::Uuid::new_v4(),
        event_type: "destination.created".to_owned(),
        aggregate_id,
        exchange: exchange.to_owned(),
        routing_key: "destination.created".to_owned(),
        payload: vec![1, 2, 3],
        payload_json: (&serde_json::json!({"id": aggregate_id})).into(),
        traceparent: None,
    }
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 30 s");
}

#[tokio::test(flavor = "multi_thread")]
async fn unroutable_events_are_retried_quietly_until_the_grace_period_then_warned() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let db = TestDatabase::create().await;
    flightmesh_db::migrate(
        &Secret::new(db.url().to_owned()),
        "flights",
        &[outbox::MIGRATIONS],
    )
    .await
    .unwrap();
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let exchange = unique_name("unroutable");
    let young = outbox::insert(&mut conn, TABLE, &event(&exchange, 1))
        .await
        .unwrap();
    let old = outbox::insert(&mut conn, TABLE, &event(&exchange, 2))
        .await
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE {TABLE} SET created_at = now() - interval '5 minutes' WHERE id = {old}"
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    let env = Env::from_pairs([("DATABASE_URL", db.url())]);
    let pool = flightmesh_db::pool(&flightmesh_db::DbConfig::from_env(&env).unwrap());
    let mut config = RelayConfig::new(
        TABLE,
        Secret::new(AMQP_URL.to_owned()),
        vec![exchange.clone()],
    );
    config.idle_poll = Duration::from_millis(50);
    let shutdown = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(pool, config).run(shutdown.clone()));

    // No queue is bound: both come back unroutable and are retried; only the old one warns.
    eventually("both events returned unroutable", async || {
        captured.logged("INFO", young) && captured.logged("WARN", old)
    })
    .await;
    assert!(
        !captured.logged("WARN", young),
        "a young unroutable event is no warning"
    );

    // The consumer declares its queue: both are delivered.
    let amqp = flightmesh_events::amqp::connect(&Secret::new(AMQP_URL.to_owned()), "test")
        .await
        .unwrap();
    let channel = amqp.create_channel().await.unwrap();
    let queue = unique_name("unroutable-q");
    channel
        .queue_declare(
            queue.as_str().into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    channel
        .queue_bind(
            queue.as_str().into(),
            exchange.as_str().into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .unwrap();
    eventually("both events published", async || {
        let pending: Count = diesel::sql_query(format!(
            "SELECT count(*) AS n FROM {TABLE} WHERE published_at IS NULL"
        ))
        .get_result(&mut conn)
        .await
        .unwrap();
        pending.n == 0
    })
    .await;
    let queued = flightmesh_events::amqp::inspect_queue(&channel, &queue)
        .await
        .unwrap();
    assert_eq!(queued.message_count(), 2);

    shutdown.cancel();
    relay.await.unwrap();
    channel
        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    channel
        .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
        .await
        .unwrap();
}

//! A connection's frame size bounds the buffers lapin keeps resident for it (32 frames each way).

use flightmesh_events::amqp::{FRAME_MAX, connect};
use flightmesh_runtime::config::Secret;

const AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

#[tokio::test]
async fn connections_ask_for_small_frames_unless_the_url_says_otherwise() {
    let connection = connect(&Secret::new(AMQP_URL.to_owned()), "frame size test")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    assert_eq!(connection.configuration().frame_max(), FRAME_MAX);
    connection.close(200, "done".into()).await.unwrap();

    let url = format!("{AMQP_URL}?frame_max=65536");
    let connection = connect(&Secret::new(url), "frame size test")
        .await
        .expect("RabbitMQ on 127.0.0.1:5672");
    assert_eq!(connection.configuration().frame_max(), 65_536);
    connection.close(200, "done".into()).await.unwrap();
}

#[tokio::test]
async fn a_malformed_url_is_an_error_not_a_panic() {
    let refused = connect(&Secret::new("amqp://[::1".to_owned()), "bad url").await;
    assert!(refused.is_err());
}

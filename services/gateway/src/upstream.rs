//! Channels to the mesh services, one per domain, and their readiness.

use std::collections::BTreeMap;
use std::time::Duration;

use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// How long `/readyz` waits for one service's health answer.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);

/// Lazily connected gRPC channels by domain (`flights`, `bookings`, …).
#[derive(Debug, Clone)]
pub struct Upstreams {
    channels: BTreeMap<String, Channel>,
}

impl Upstreams {
    /// Channels to every URL (no connection is made yet).
    pub fn new(
        urls: &BTreeMap<String, String>,
    ) -> Result<Self, flightmesh_runtime::channel::ChannelError> {
        let channels = urls
            .iter()
            .map(|(domain, url)| {
                Ok((
                    domain.clone(),
                    flightmesh_runtime::channel::lazy_channel(url)?,
                ))
            })
            .collect::<Result<_, flightmesh_runtime::channel::ChannelError>>()?;
        Ok(Self { channels })
    }

    /// The channel of a domain, if one is configured.
    #[must_use]
    pub fn channel(&self, domain: &str) -> Option<Channel> {
        self.channels.get(domain).cloned()
    }

    /// Each service's `grpc.health.v1` status: `SERVING`, `NOT_SERVING` or why it could not be
    /// asked.
    pub async fn health(&self) -> BTreeMap<String, String> {
        let checks = self.channels.iter().map(|(domain, channel)| async move {
            let mut client = HealthClient::new(channel.clone());
            let answer = tokio::time::timeout(
                HEALTH_TIMEOUT,
                client.check(HealthCheckRequest {
                    service: String::new(),
                }),
            )
            .await;
            let status = match answer {
                Ok(Ok(response)) => match response.into_inner().status() {
                    ServingStatus::Serving => "SERVING".to_owned(),
                    other => other.as_str_name().to_owned(),
                },
                Ok(Err(status)) => format!("unreachable ({:?})", status.code()),
                Err(_) => "unreachable (timeout)".to_owned(),
            };
            (domain.clone(), status)
        });
        futures::future::join_all(checks)
            .await
            .into_iter()
            .collect()
    }
}

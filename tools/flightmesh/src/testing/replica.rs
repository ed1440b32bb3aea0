//! A service run beside a test's mesh: a second replica, a worker taking over.

use std::net::SocketAddr;
use std::time::Duration;

use flightmesh_runtime::{CancellationToken, Host, HostError};
use tokio::task::JoinHandle;

/// A service's [`Host`] running on its own until [`Replica::stop`].
pub struct Replica {
    /// Its gRPC address.
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), HostError>>,
}

impl Replica {
    /// Runs `host` (what a service's `build` made) in the background.
    #[must_use]
    pub fn start(host: Host) -> Self {
        let shutdown = CancellationToken::new();
        Self {
            addr: host.grpc_addr(),
            task: tokio::spawn(host.run(shutdown.clone())),
            shutdown,
        }
    }

    /// Shuts it down and waits for it.
    ///
    /// # Panics
    /// If it does not stop within 30 s or stops with an error.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("the replica stops in time")
            .expect("the replica's task completes")
            .expect("the replica stops cleanly");
    }
}

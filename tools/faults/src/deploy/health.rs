//! Waiting for the processes of a [`Deployment`]: readiness at start, health checks after a
//! fault, and polling a condition until it holds.

use std::time::{Duration, Instant};

use super::{Deployment, Service};

impl Deployment {
    /// The readiness a start waits for: the gateway's needs every upstream.
    fn ready_url(&self, name: &str) -> String {
        let p = &self.processes[self.index(name)];
        match p.service {
            Service::Gateway => format!("http://{}:{}/readyz", p.ip, self.ports.http),
            service => {
                let index = Service::ALL.iter().position(|s| *s == service).unwrap_or(0);
                format!("http://{}:{}/readyz", p.ip, self.ports.admin[index])
            }
        }
    }

    /// What a readiness probe asks: the admin `/readyz` of a gRPC service; the gateway's own
    /// readiness (`/readyz/self`: one replica of an upstream down does not unready it).
    fn probe_url(&self, name: &str) -> String {
        let p = &self.processes[self.index(name)];
        match p.service {
            Service::Gateway => format!("http://{}:{}/readyz/self", p.ip, self.ports.http),
            _ => self.ready_url(name),
        }
    }

    /// Waits until `name` answers ready (a minute at most).
    ///
    /// # Panics
    /// If it exits or is not ready in time, with the end of its log.
    pub async fn wait_ready(&mut self, name: &str) {
        let url = self.ready_url(name);
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(response) = http.get(&url).timeout(Duration::from_secs(2)).send().await
                && response.status() == 200
            {
                return;
            }
            let index = self.index(name);
            let exited = self.processes[index].child.try_wait().ok().flatten();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{name} is not ready ({exited:?}):\n{}",
                self.log_tail(name, 30)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Every process the test did not stop: exited ones, and ones not ready, with why.
    pub async fn unhealthy(&mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let names: Vec<String> = self
            .processes
            .iter()
            .filter(|p| !p.stopped)
            .map(|p| p.name.clone())
            .collect();
        let http = reqwest::Client::new();
        for name in names {
            let index = self.index(&name);
            if let Ok(Some(status)) = self.processes[index].child.try_wait() {
                problems.push(format!("{name} exited ({status})"));
                continue;
            }
            let url = self.probe_url(&name);
            match http.get(&url).timeout(Duration::from_secs(5)).send().await {
                Ok(r) if r.status() == 200 => {}
                Ok(r) => problems.push(format!("{name} not ready: {}", r.status())),
                Err(err) => problems.push(format!("{name} not ready: {err}")),
            }
        }
        problems
    }
}

/// Polls `check` every 100 ms until it holds.
///
/// # Panics
/// If it does not within `limit`.
pub async fn wait_until<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

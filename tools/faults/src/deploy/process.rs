//! Starting, killing and replacing the service processes of a [`Deployment`] (and its Redis),
//! with the environment each replica is given.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flightmesh_testkit::ServiceRole;

use super::{Deployment, Process, Service, wait_until};

/// Where the workspace's debug binaries are: beside the test executable's `deps/`.
fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable's path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf();
    for service in Service::ALL {
        assert!(
            dir.join(service.binary()).exists(),
            "{} is not built: run `cargo build --bins` (the test command's `cargo test --workspace` builds it)",
            dir.join(service.binary()).display()
        );
    }
    dir
}

/// `program`, run so that it is killed when the thread that starts it ends (util-linux's
/// `setpriv --pdeathsig KILL`, which then execs it: the child's pid is the program's). A test run
/// stopped without its `Drop`s (Ctrl-C, SIGKILL) so leaves no service or Redis running. The
/// deployment is driven from the test's own thread, which outlives it.
pub(crate) fn dies_with_the_test(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args(["--pdeathsig", "KILL", "--", program]);
    command
}

impl Deployment {
    /// Starts a fresh `redis-server` on the deployment's port (its data is gone with the last).
    pub async fn start_redis(&mut self) {
        let log = std::fs::File::create(self.work.join("redis.log")).expect("redis log");
        let child = dies_with_the_test("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.redis_port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .current_dir(&self.work)
            .stdout(log.try_clone().expect("redis log"))
            .stderr(log)
            .spawn()
            .expect("redis-server starts (it is installed with the services)");
        self.redis = Some(child);
        let url = self.redis_url.clone();
        wait_until(Duration::from_secs(20), "redis-server", || {
            let url = url.clone();
            async move {
                let Ok(client) = redis::Client::open(url.as_str()) else {
                    return false;
                };
                match client.get_multiplexed_async_connection().await {
                    Ok(mut conn) => redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok(),
                    Err(_) => false,
                }
            }
        })
        .await;
    }

    /// Kills the deployment's Redis (SIGKILL): its data is lost.
    pub fn kill_redis(&mut self) {
        if let Some(mut child) = self.redis.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts a new replica of `service` on an address of its own, not yet in DNS (see
    /// [`Deployment::swap_dns`]); returns its name (`<binary>-<n>`).
    pub fn spawn(&mut self, service: Service) -> String {
        let ip = Ipv4Addr::new(127, 0, self.subnet, self.next_host);
        self.next_host += 1;
        let n = self
            .processes
            .iter()
            .filter(|p| p.service == service)
            .count()
            + 1;
        let name = format!("{}-{n}", service.binary());
        let (child, log) = self.launch(&name, service, ip);
        self.processes.push(Process {
            name: name.clone(),
            service,
            ip,
            child,
            log,
            in_dns: false,
            stopped: false,
        });
        name
    }

    /// Starts a replacement for `name` (killed before) on the same address.
    pub fn restart(&mut self, name: &str) {
        let index = self.index(name);
        let (service, ip) = (self.processes[index].service, self.processes[index].ip);
        let (child, log) = self.launch(name, service, ip);
        let process = &mut self.processes[index];
        process.child = child;
        process.log = log;
        process.stopped = false;
        process.in_dns = true;
        self.publish_dns();
    }

    fn launch(&mut self, name: &str, service: Service, ip: Ipv4Addr) -> (Child, PathBuf) {
        self.launches += 1;
        let log_path = self.work.join(format!("{name}.{}.log", self.launches));
        let log = std::fs::File::create(&log_path).expect("a log file");
        let binary = binary_dir().join(service.binary());
        let mut command = dies_with_the_test("unshare");
        command
            .args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(&self.hosts)
            .arg(&binary)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(self.env_of(name, service, ip))
            .current_dir(&self.work)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = command
            .spawn()
            .unwrap_or_else(|err| panic!("{name} does not start: {err}"));
        (child, log_path)
    }

    /// The environment of one replica: as the charts set it, on the deployment's names.
    fn env_of(&self, name: &str, service: Service, ip: Ipv4Addr) -> Vec<(String, String)> {
        let dns = |s: Service, port: u16| format!("dns:///{}:{port}", s.dns_name());
        let [flights, bookings, stats, ai] = self.ports.grpc;
        let mut env: Vec<(String, String)> = [
            ("LOG_FORMAT", "json".to_owned()),
            ("RUST_LOG", "info".to_owned()),
            ("TOKIO_WORKER_THREADS", "1".to_owned()),
            ("ENVIRONMENT", "development".to_owned()),
            ("ACCESS_POLICY", "compatible".to_owned()),
            ("AMQP_URL", self.amqp_url.clone()),
            ("REDIS_URL", self.redis_url.clone()),
            ("REDIS_KEY_PREFIX", self.names.redis_prefix.clone()),
            ("BOOKINGS_EXCHANGE", self.names.exchange.clone()),
            ("CATALOG_EXCHANGE", self.names.catalog_exchange.clone()),
            ("STATS_QUEUE", self.names.stats_queue.clone()),
            ("DRAIN_DELAY", "2s".to_owned()),
            ("RETRY_BASE_DELAY", "200ms".to_owned()),
            ("FLIGHTS_URL", dns(Service::Flights, flights)),
            ("BOOKINGS_URL", dns(Service::Bookings, bookings)),
            ("STATS_URL", dns(Service::Stats, stats)),
            ("AI_URL", dns(Service::Ai, ai)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let index = Service::ALL.iter().position(|s| *s == service).unwrap_or(0);
        let admin = format!("{ip}:{}", self.ports.admin[index]);
        env.push(("ADMIN_ADDR".to_owned(), admin));
        match service {
            Service::Gateway => {
                env.push(("HTTP_ADDR".into(), format!("{ip}:{}", self.ports.http)));
                env.push((
                    "DATABASE_URL".into(),
                    self.db.service_url(ServiceRole::Gateway),
                ));
                env.push(("RATE_LIMIT_DEFAULT".into(), "100000000/60s".into()));
            }
            other => {
                env.push((
                    "GRPC_ADDR".into(),
                    format!("{ip}:{}", self.ports.grpc[index]),
                ));
                let role = match other {
                    Service::Flights => Some(ServiceRole::Flights),
                    Service::Bookings => Some(ServiceRole::Bookings),
                    _ => None,
                };
                if let Some(role) = role {
                    env.push(("DATABASE_URL".into(), self.db.service_url(role)));
                }
            }
        }
        for (target, key, value) in &self.options.env {
            if target == name || target == service.binary() {
                env.retain(|(k, _)| k != key);
                env.push((key.clone(), value.clone()));
            }
        }
        env
    }

    /// SIGKILL. Its address leaves the DNS name, as a dead pod's leaves its Service's endpoints.
    pub fn kill(&mut self, name: &str) {
        let index = self.index(name);
        let process = &mut self.processes[index];
        let _ = process.child.kill();
        let _ = process.child.wait();
        process.stopped = true;
        process.in_dns = false;
        self.publish_dns();
    }

    /// SIGTERM, then waits for the process to drain and exit (30 s at most).
    pub async fn terminate(&mut self, name: &str) {
        let index = self.index(name);
        let pid = self.processes[index].child.id();
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let process = &mut self.processes[index];
            if process.child.try_wait().ok().flatten().is_some() {
                process.stopped = true;
                return;
            }
            if Instant::now() > deadline {
                let _ = process.child.kill();
                let _ = process.child.wait();
                process.stopped = true;
                panic!(
                    "{name} did not exit within 30 s of SIGTERM:\n{}",
                    self.log_tail(name, 40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt as _;

    use super::dies_with_the_test;

    #[test]
    fn a_child_dies_when_the_thread_that_started_it_ends() {
        let mut child = std::thread::spawn(|| {
            let child = dies_with_the_test("sleep")
                .arg("30")
                .spawn()
                .expect("setpriv and sleep run");
            // setpriv sets the signal after it starts; a thread that ended before would go
            // unnoticed (a test thread lives as long as its deployment).
            std::thread::sleep(std::time::Duration::from_millis(500));
            child
        })
        .join()
        .expect("the starting thread");
        let status = child.wait().expect("the child is waited for");
        assert_eq!(status.signal(), Some(9), "{status:?}");
    }
}

//! Starting, killing and replacing the service processes of a [`Deployment`].

use std::io::Write as _;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use flightmesh::testing::{AMQP_URL, Isolation, cleanup};
use flightmesh_testkit::{ServiceRole, TestDatabase, unique_name};

/// The deployable services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Service {
    Flights,
    Bookings,
    Stats,
    Ai,
    Gateway,
}

impl Service {
    /// In the order a Deployment would roll them.
    pub const ALL: [Self; 5] = [
        Self::Flights,
        Self::Bookings,
        Self::Stats,
        Self::Ai,
        Self::Gateway,
    ];

    /// The binary (and the chart, and the image).
    #[must_use]
    pub fn binary(self) -> &'static str {
        match self {
            Self::Flights => "flights",
            Self::Bookings => "bookings",
            Self::Stats => "stats-worker",
            Self::Ai => "ai-agent",
            Self::Gateway => "gateway",
        }
    }

    /// The name every replica of the service answers to (a headless Service).
    fn dns_name(self) -> String {
        format!("fm-{}", self.binary())
    }
}

/// How many replicas, and environment overrides.
#[derive(Debug, Clone)]
pub struct Options {
    /// Replicas per service.
    pub replicas: Vec<(Service, usize)>,
    /// `(replica or service, variable, value)`: a replica named `bookings-1`, or every replica
    /// of a service named by its binary (`bookings`).
    pub env: Vec<(String, String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            replicas: vec![
                (Service::Flights, 2),
                (Service::Bookings, 2),
                (Service::Stats, 2),
                (Service::Ai, 1),
                (Service::Gateway, 2),
            ],
            env: Vec::new(),
        }
    }
}

impl Options {
    /// `variable=value` for `target` (a replica name or a service binary name).
    #[must_use]
    pub fn with_env(mut self, target: &str, variable: &str, value: &str) -> Self {
        self.env
            .push((target.to_owned(), variable.to_owned(), value.to_owned()));
        self
    }
}

/// One service process.
struct Process {
    name: String,
    service: Service,
    ip: Ipv4Addr,
    child: Child,
    log: PathBuf,
    /// Whether its address is in the service's DNS name.
    in_dns: bool,
    /// Whether the test stopped it on purpose (killed or terminated).
    stopped: bool,
}

/// Ports shared by every replica of a service (each replica has its own address).
#[derive(Debug, Clone, Copy)]
struct Ports {
    grpc: [u16; 4],
    admin: [u16; 5],
    http: u16,
}

/// See the crate docs.
pub struct Deployment {
    /// The deployment's database (dropped with it).
    pub db: TestDatabase,
    /// Its exchanges, queue and Redis prefix.
    pub names: Isolation,
    /// Its own Redis.
    pub redis_url: String,
    redis_port: u16,
    redis: Option<Child>,
    work: PathBuf,
    hosts: PathBuf,
    base_hosts: String,
    ports: Ports,
    options: Options,
    subnet: u8,
    next_host: u8,
    launches: u32,
    processes: Vec<Process>,
}

/// The hosts file's constant size (see [`Deployment::publish_dns`]).
const HOSTS_FILE_SIZE: usize = 16 * 1024;

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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether this machine lets a process mount a hosts file of its own (`unshare -m`).
///
/// # Errors
/// Why it cannot.
pub fn can_isolate_names() -> Result<(), String> {
    let probe = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount --bind /etc/hosts /etc/hosts"])
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "unshare -m cannot bind-mount /etc/hosts here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!("unshare is not available: {err}")),
    }
}

impl Deployment {
    /// Starts every replica and waits until each is ready.
    ///
    /// # Panics
    /// If a process cannot start or does not become ready within a minute.
    pub async fn start(options: Options) -> Self {
        let db = TestDatabase::create().await;
        let names = Isolation::new();
        let work = std::env::temp_dir().join(unique_name("fm-faults"));
        std::fs::create_dir_all(&work).expect("a work directory");
        let redis_port = free_port();
        let ports = Ports {
            grpc: [free_port(), free_port(), free_port(), free_port()],
            admin: [
                free_port(),
                free_port(),
                free_port(),
                free_port(),
                free_port(),
            ],
            http: free_port(),
        };
        let base_hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
        let hosts = work.join("hosts");
        std::fs::write(&hosts, vec![b'\n'; HOSTS_FILE_SIZE]).expect("the hosts file");
        let subnet = u8::try_from(std::process::id() % 200 + 20).unwrap_or(99);
        let mut deployment = Self {
            db,
            names,
            redis_url: format!("redis://127.0.0.1:{redis_port}"),
            redis_port,
            redis: None,
            work,
            hosts,
            base_hosts,
            ports,
            options: options.clone(),
            subnet,
            next_host: 2,
            launches: 0,
            processes: Vec::new(),
        };
        deployment.start_redis().await;
        // The services that own a schema first: their migrations run once, under a lock.
        let mut started = Vec::new();
        for (service, replicas) in &options.replicas {
            for _ in 0..*replicas {
                started.push(deployment.spawn(*service));
            }
        }
        deployment.swap_dns(&[], &started);
        for name in &started {
            deployment.wait_ready(name).await;
        }
        deployment
    }

    /// Starts a fresh `redis-server` on the deployment's port (its data is gone with the last).
    pub async fn start_redis(&mut self) {
        let log = std::fs::File::create(self.work.join("redis.log")).expect("redis log");
        let child = Command::new("redis-server")
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
        let mut command = Command::new("unshare");
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
            ("ENVIRONMENT", "development".to_owned()),
            ("ACCESS_POLICY", "compatible".to_owned()),
            ("AMQP_URL", AMQP_URL.to_owned()),
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

    /// Rewrites the hosts file from the replicas in DNS: in place (every bind mount sees the
    /// same inode), and without ever truncating it — the content is padded to a constant size
    /// and written in one call, so a resolver never reads an empty or half-written file (a name
    /// missing for a moment sends getaddrinfo to a DNS server this machine does not have, and a
    /// blocked lookup holds up a process's exit).
    pub fn publish_dns(&self) {
        let mut text = self.base_hosts.clone();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        for p in self.processes.iter().filter(|p| p.in_dns) {
            text.push_str(&format!("{} {}\n", p.ip, p.service.dns_name()));
        }
        assert!(
            text.len() < HOSTS_FILE_SIZE,
            "the hosts file outgrew its padding"
        );
        text.push('#');
        while text.len() < HOSTS_FILE_SIZE - 1 {
            text.push(' ');
        }
        text.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.hosts)
            .expect("the hosts file");
        file.write_all(text.as_bytes()).expect("the hosts file");
    }

    /// Takes `old` out of their services' DNS names and puts `new` in, in one change (as the
    /// endpoints of a headless Service change when new pods are ready and old ones terminate).
    pub fn swap_dns(&mut self, old: &[String], new: &[String]) {
        for name in old {
            let index = self.index(name);
            self.processes[index].in_dns = false;
        }
        for name in new {
            let index = self.index(name);
            self.processes[index].in_dns = true;
        }
        self.publish_dns();
    }

    fn index(&self, name: &str) -> usize {
        self.processes
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

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

    /// Names of the replicas of `service` that run.
    #[must_use]
    pub fn replicas(&self, service: Service) -> Vec<String> {
        self.processes
            .iter()
            .filter(|p| p.service == service && !p.stopped)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Names of every process that runs.
    #[must_use]
    pub fn running(&self) -> Vec<String> {
        self.processes
            .iter()
            .filter(|p| !p.stopped)
            .map(|p| p.name.clone())
            .collect()
    }

    /// Messages waiting in the deployment's stats queue (0 if it cannot be read).
    pub async fn stats_queue_depth(&self) -> u32 {
        let url = flightmesh_runtime::config::Secret::new(AMQP_URL.to_owned());
        let Ok(connection) = flightmesh_events::amqp::connect(&url, "faults: queue depth").await
        else {
            return 0;
        };
        let depth = match connection.create_channel().await {
            Ok(channel) => channel
                .queue_declare(
                    self.names.stats_queue.as_str().into(),
                    lapin::options::QueueDeclareOptions {
                        passive: true,
                        ..lapin::options::QueueDeclareOptions::default()
                    },
                    lapin::types::FieldTable::default(),
                )
                .await
                .map_or(0, |queue| queue.message_count()),
            Err(_) => 0,
        };
        let _ = connection.close(200, "done".into()).await;
        depth
    }

    /// Base URLs of the running gateways in DNS (what clients balance over).
    #[must_use]
    pub fn gateways(&self) -> Vec<String> {
        self.processes
            .iter()
            .filter(|p| p.service == Service::Gateway && !p.stopped && p.in_dns)
            .map(|p| format!("http://{}:{}", p.ip, self.ports.http))
            .collect()
    }

    /// The base URL of gateway `name`.
    #[must_use]
    pub fn gateway_url(&self, name: &str) -> String {
        let p = &self.processes[self.index(name)];
        format!("http://{}:{}", p.ip, self.ports.http)
    }

    /// The `/metrics` URL of a replica.
    #[must_use]
    pub fn metrics_url(&self, name: &str) -> String {
        let p = &self.processes[self.index(name)];
        let index = Service::ALL
            .iter()
            .position(|s| *s == p.service)
            .unwrap_or(0);
        format!("http://{}:{}/metrics", p.ip, self.ports.admin[index])
    }

    /// Process id of a replica (for RSS and descriptors).
    #[must_use]
    pub fn pid(&self, name: &str) -> u32 {
        self.processes[self.index(name)].child.id()
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

    /// Whether `name`'s log has a line containing `needle`.
    #[must_use]
    pub fn logged(&self, name: &str, needle: &str) -> bool {
        let p = &self.processes[self.index(name)];
        std::fs::read_to_string(&p.log).is_ok_and(|text| text.contains(needle))
    }

    /// The last `lines` lines of `name`'s log.
    #[must_use]
    pub fn log_tail(&self, name: &str, lines: usize) -> String {
        let p = &self.processes[self.index(name)];
        let text = std::fs::read_to_string(&p.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The admin's URL of the deployment's database.
    #[must_use]
    pub fn database_url(&self) -> &str {
        self.db.url()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for p in &mut self.processes {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        self.kill_redis();
        cleanup(self.names.clone());
        if std::env::var_os("FAULTS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.work);
        } else {
            eprintln!("logs kept in {}", self.work.display());
        }
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

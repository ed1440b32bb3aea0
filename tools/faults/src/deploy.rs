//! Starting, killing and replacing the service processes of a [`Deployment`].
//!
//! This module describes the deployment (its services, options, ports and processes) and reads
//! it; `process` spawns and stops the processes, `dns` owns the hosts file, `health` the waits.

mod dns;
mod health;
mod process;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::process::Child;

use flightmesh::testing::{AMQP_URL, Isolation, cleanup};
use flightmesh_testkit::{TestDatabase, unique_name};

pub use dns::can_isolate_names;
pub use health::wait_until;

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
    /// The admin URL of the PostgreSQL server the deployment's database is made on; `None`: the
    /// machine's (`flightmesh_testkit`'s).
    pub postgres: Option<String>,
    /// The AMQP URL of the broker the deployment uses; `None`: the machine's.
    pub rabbitmq: Option<String>,
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
            postgres: None,
            rabbitmq: None,
        }
    }
}

impl Options {
    /// The deployment on the RabbitMQ broker at `amqp_url`.
    #[must_use]
    pub fn on_rabbitmq(mut self, amqp_url: String) -> Self {
        self.rabbitmq = Some(amqp_url);
        self
    }

    /// The deployment's database on the server whose admin URL is `admin_url`.
    #[must_use]
    pub fn on_postgres(mut self, admin_url: String) -> Self {
        self.postgres = Some(admin_url);
        self
    }

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
    /// The broker it uses.
    pub amqp_url: String,
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

/// A loopback port nothing listens on now.
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Deployment {
    /// Starts every replica and waits until each is ready.
    ///
    /// # Panics
    /// If a process cannot start or does not become ready within a minute.
    pub async fn start(options: Options) -> Self {
        let db = match &options.postgres {
            Some(admin_url) => TestDatabase::create_on(admin_url).await,
            None => TestDatabase::create().await,
        };
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
            amqp_url: options
                .rabbitmq
                .clone()
                .unwrap_or_else(|| AMQP_URL.to_owned()),
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

    fn index(&self, name: &str) -> usize {
        self.processes
            .iter()
            .position(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
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
        let url = flightmesh_runtime::config::Secret::new(self.amqp_url.clone());
        let Ok(connection) = flightmesh_events::amqp::connect(&url, "faults: queue depth").await
        else {
            return 0;
        };
        let depth = match connection.create_channel().await {
            Ok(channel) => {
                flightmesh_events::amqp::inspect_queue(&channel, &self.names.stats_queue)
                    .await
                    .map_or(0, |queue| queue.message_count())
            }
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
        // Its exchanges and queue on the machine's broker; a broker of its own goes away whole.
        if self.options.rabbitmq.is_none() {
            cleanup(self.names.clone());
        }
        if std::env::var_os("FAULTS_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.work);
        } else {
            eprintln!("logs kept in {}", self.work.display());
        }
    }
}

//! The whole mesh in one process, each service on its own port exactly as when deployed apart.
//!
//! [`Stack::start`] is what `flightmesh up` runs and what end-to-end tests start (on port 0).
//! [`deps`] checks that PostgreSQL, Redis and RabbitMQ answer before anything starts, and
//! [`demo`] loads a small catalog. [`config_docs`] renders every service's configuration table.

pub mod demo;
pub mod deps;
#[cfg(feature = "testing")]
pub mod embeddings_stub;
#[cfg(feature = "testing")]
pub mod model_stub;
#[cfg(feature = "testing")]
pub mod testing;

use std::net::SocketAddr;

use flightmesh_runtime::cli::ProcessConfig;
use flightmesh_runtime::config::{Env, markdown_table};
use flightmesh_runtime::{CancellationToken, ConfigError, HostConfig, Listeners};
use tokio::task::JoinSet;

/// Start-up and run-time failures, with their cause chain.
pub use flightmesh_runtime::BoxError;

/// Where each service of a running stack listens.
#[derive(Debug, Clone, Copy)]
pub struct Addresses {
    /// REST gateway.
    pub gateway: SocketAddr,
    /// The gateway's admin HTTP port (`/livez`, `/readyz`, `/metrics`).
    pub gateway_admin: SocketAddr,
    /// gRPC of the flights service.
    pub flights: SocketAddr,
    /// gRPC of the bookings service.
    pub bookings: SocketAddr,
    /// gRPC of the stats worker.
    pub stats: SocketAddr,
    /// gRPC of the AI agent.
    pub ai: SocketAddr,
    /// Admin HTTP ports, same order: flights, bookings, stats, ai.
    pub admin: [SocketAddr; 4],
}

/// A service of the mesh behind the gateway (the gateway always runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Destinations, flights, the search index.
    Flights,
    /// Bookings, the seat ledger, the booking events.
    Bookings,
    /// The stats worker.
    Stats,
    /// The AI agent.
    Ai,
}

impl Service {
    /// Every service: the whole mesh.
    pub const ALL: [Self; 4] = [Self::Flights, Self::Bookings, Self::Stats, Self::Ai];

    /// The prefix of its variables in a stack's environment (`FLIGHTS_GRPC_ADDR`).
    fn env_prefix(self) -> &'static str {
        match self {
            Self::Flights => "FLIGHTS_",
            Self::Bookings => "BOOKINGS_",
            Self::Stats => "STATS_",
            Self::Ai => "AI_",
        }
    }
}

/// The services a stack runs, each configured from one environment under its own prefix.
struct Selection<'a> {
    env: &'a Env,
    services: &'a [Service],
}

impl Selection<'_> {
    /// `service`'s configuration; `None` when the stack leaves it out.
    fn config<C>(
        &self,
        service: Service,
        from_env: fn(&Env) -> Result<C, ConfigError>,
    ) -> Result<Option<C>, ConfigError> {
        self.services
            .contains(&service)
            .then(|| from_env(&self.env.clone().with_prefix(service.env_prefix())))
            .transpose()
    }
}

/// A running mesh.
pub struct Stack {
    /// The bound addresses.
    pub addrs: Addresses,
    shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, Result<(), BoxError>)>,
    /// Holds the port the services left out "listen" on (see [`Stack::start_services`]).
    _closed: tokio::net::TcpSocket,
}

/// A port that is bound but never listens: connecting to it is refused at once, as to a service
/// that is down, and nothing else can take the port while the socket is kept.
fn closed_port() -> Result<(tokio::net::TcpSocket, SocketAddr), BoxError> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind("127.0.0.1:0".parse()?)?;
    let addr = socket.local_addr()?;
    Ok((socket, addr))
}

/// Binds a service's ports now, so that its address is known before anything is built.
fn prebind(host: &mut HostConfig) -> Result<(SocketAddr, SocketAddr), BoxError> {
    let listeners = Listeners::bind(host.grpc_addr, host.admin_addr).map_err(|err| {
        format!(
            "cannot listen on {} / {}: {err}",
            host.grpc_addr, host.admin_addr
        )
    })?;
    let addrs = (listeners.grpc_addr()?, listeners.admin_addr()?);
    host.listeners = Some(listeners);
    Ok(addrs)
}

impl Stack {
    /// Builds every service from `env` (service-specific variables may be prefixed with the
    /// service name: `FLIGHTS_GRPC_ADDR`, `GATEWAY_HTTP_ADDR`, …), wires each service to the
    /// addresses the others actually bound, and starts them all.
    pub async fn start(env: &Env) -> Result<Self, BoxError> {
        Self::start_services(env, &Service::ALL).await
    }

    /// As [`Stack::start`], with only the gateway and `services`: the others' addresses refuse
    /// connections (a call to them is the gateway's 503), so a test of one service does not
    /// depend on the rest.
    pub async fn start_services(env: &Env, services: &[Service]) -> Result<Self, BoxError> {
        let shutdown = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let wanted = Selection { env, services };
        let mut flights = wanted.config(Service::Flights, flightmesh_flights::Config::from_env)?;
        let mut bookings =
            wanted.config(Service::Bookings, flightmesh_bookings::Config::from_env)?;
        let mut stats = wanted.config(Service::Stats, flightmesh_stats_worker::Config::from_env)?;
        let mut ai = wanted.config(Service::Ai, flightmesh_ai_agent::Config::from_env)?;
        let (closed_socket, closed) = closed_port()?;
        let bind = |host: Option<&mut HostConfig>| match host {
            Some(host) => prebind(host),
            None => Ok((closed, closed)),
        };
        let (flights_addr, flights_admin) = bind(flights.as_mut().map(|c| &mut c.host))?;
        let (bookings_addr, bookings_admin) = bind(bookings.as_mut().map(|c| &mut c.host))?;
        let (stats_addr, stats_admin) = bind(stats.as_mut().map(|c| &mut c.host))?;
        let (ai_addr, ai_admin) = bind(ai.as_mut().map(|c| &mut c.host))?;

        let url = |addr: SocketAddr| format!("http://{addr}");
        let mut hosts = Vec::new();
        if let Some(mut config) = flights {
            config.bookings_url = url(bookings_addr);
            hosts.push(("flights", flightmesh_flights::build(config).await?));
        }
        if let Some(mut config) = bookings {
            config.flights_url = url(flights_addr);
            hosts.push(("bookings", flightmesh_bookings::build(config).await?));
        }
        if let Some(mut config) = stats {
            (config.flights_url, config.bookings_url) = (url(flights_addr), url(bookings_addr));
            hosts.push((
                "stats-worker",
                flightmesh_stats_worker::build(config).await?,
            ));
        }
        if let Some(mut config) = ai {
            (config.flights_url, config.stats_url) = (url(flights_addr), url(stats_addr));
            hosts.push(("ai-agent", flightmesh_ai_agent::build(config).await?));
        }
        let gateway_env = env
            .clone()
            .with_prefix("GATEWAY_")
            .set("FLIGHTS_URL", url(flights_addr))
            .set("BOOKINGS_URL", url(bookings_addr))
            .set("STATS_URL", url(stats_addr))
            .set("AI_URL", url(ai_addr));
        let gateway =
            flightmesh_gateway::Gateway::build(flightmesh_gateway::Config::from_env(&gateway_env)?)
                .await?;
        let addrs = Addresses {
            gateway: gateway.local_addr(),
            gateway_admin: gateway.admin_addr(),
            flights: flights_addr,
            bookings: bookings_addr,
            stats: stats_addr,
            ai: ai_addr,
            admin: [flights_admin, bookings_admin, stats_admin, ai_admin],
        };
        for (name, host) in hosts {
            let token = shutdown.clone();
            tasks.spawn(async move { (name, host.run(token).await.map_err(BoxError::from)) });
        }
        let token = shutdown.clone();
        tasks.spawn(async move { ("gateway", gateway.run(token).await) });
        Ok(Self {
            addrs,
            shutdown,
            tasks,
            _closed: closed_socket,
        })
    }

    /// A token that stops the stack when cancelled.
    #[must_use]
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until every service stopped (after the token is cancelled, or one fails — then the
    /// others are stopped too). Returns the first failure.
    pub async fn wait(mut self) -> Result<(), BoxError> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (name, result) = match joined {
                Ok(done) => done,
                Err(err) => ("a service", Err(Box::new(err) as BoxError)),
            };
            if let Err(err) = result {
                tracing::error!(service = name, error = %err, "service failed; stopping the stack");
                self.shutdown.cancel();
                first_error.get_or_insert_with(|| format!("{name}: {err}").into());
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Stops every service and waits for them.
    pub async fn stop(self) -> Result<(), BoxError> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// The README's configuration section: one table per service, generated from the config
/// structs (a test keeps the README equal to this).
#[must_use]
pub fn config_docs() -> String {
    let sections = [
        ("gateway", flightmesh_gateway::Config::vars()),
        ("flights", flightmesh_flights::Config::vars()),
        ("bookings", flightmesh_bookings::Config::vars()),
        ("stats-worker", flightmesh_stats_worker::Config::vars()),
        ("ai-agent", flightmesh_ai_agent::Config::vars()),
    ];
    let mut out = String::new();
    for (name, vars) in sections {
        out.push_str(&format!("#### {name}\n\n{}\n", markdown_table(&vars)));
    }
    out.push_str(&format!(
        "#### every service\n\n{}",
        markdown_table(&ProcessConfig::vars())
    ));
    out
}

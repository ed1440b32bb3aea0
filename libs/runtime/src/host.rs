//! The process shell every gRPC service runs in.
//!
//! A [`Host`] binds the gRPC port and the admin HTTP port, serves the service's gRPC handlers
//! together with `grpc.health.v1` and server reflection, records RED metrics for every call, runs
//! the service's background tasks (outbox relays, consumers) under supervision, and shuts all of
//! it down in order:
//!
//! 1. the shutdown token is cancelled (SIGTERM), or a background task ended when it should not
//!    have (see [`crate::supervise`]: `/readyz` then names the task);
//! 2. health turns NOT_SERVING and `/readyz` 503 while the listener still accepts, for
//!    `DRAIN_DELAY`, so load balancers stop sending before connections are refused;
//! 3. the listener closes and in-flight calls finish;
//! 4. background tasks (which saw the same token) are awaited; then the admin port closes.
//!
//! [`Host::run`] returns an error if a background task failed, so the binary exits non-zero and
//! Kubernetes restarts the pod.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;

use crate::admin::{CheckFn, Readiness, monitor_health, serve_admin};
use crate::config::{Reader, Var};
use crate::shed::ShedConfig;
use crate::supervise::{Supervisor, TaskFailure, TaskOutcome};

mod grpc;
use grpc::{Drain, add_health_and_reflection, announce_health, serve_grpc};

/// Health-check service name that stays SERVING for as long as the process can answer: the
/// liveness probe asks for it, so a database outage makes pods unready, never restarts them.
pub const LIVENESS_SERVICE: &str = "liveness";

/// How long in-flight calls get to finish once the listener has closed.
const CALL_GRACE: Duration = Duration::from_secs(10);
/// How long background tasks get to finish after the gRPC server has drained.
const TASK_GRACE: Duration = Duration::from_secs(20);

/// `DRAIN_DELAY`: how long a stopping service reports NOT_SERVING before closing its listener.
pub const DRAIN_DELAY: Var = Var::new("DRAIN_DELAY", "5s")
    .doc("How long health reports NOT_SERVING before the listener closes on shutdown");

/// Where a service listens.
#[derive(Debug, Clone)]
pub struct HostConfig {
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// Admin HTTP (`/livez`, `/readyz`, `/metrics`) listen address.
    pub admin_addr: SocketAddr,
    /// See [`DRAIN_DELAY`].
    pub drain_delay: Duration,
    /// How many calls it admits at once (see [`crate::shed`]).
    pub shed: ShedConfig,
    /// Already bound sockets to serve on instead of binding the addresses. Lets a process that
    /// runs several services (the dev stack, tests) learn every address before wiring services
    /// that call each other (flights ⇄ bookings).
    pub listeners: Option<Listeners>,
}

/// A pair of bound sockets for a [`Host`]: gRPC and admin.
#[derive(Debug, Clone)]
pub struct Listeners {
    grpc: Arc<std::net::TcpListener>,
    admin: Arc<std::net::TcpListener>,
}

impl Listeners {
    /// Binds both addresses now (port 0 picks a free port).
    pub fn bind(grpc: SocketAddr, admin: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            grpc: Arc::new(std::net::TcpListener::bind(grpc)?),
            admin: Arc::new(std::net::TcpListener::bind(admin)?),
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }
}

/// A tokio listener sharing a bound std socket.
fn adopt(listener: &std::net::TcpListener) -> std::io::Result<TcpListener> {
    let listener = listener.try_clone()?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

impl HostConfig {
    /// Reads a host's variables, with this service's default addresses.
    pub fn read(
        r: &mut Reader<'_>,
        grpc_default: &'static str,
        admin_default: &'static str,
    ) -> Self {
        Self {
            grpc_addr: r.get(Var::new("GRPC_ADDR", grpc_default).doc("gRPC listen address")),
            admin_addr: r.get(
                Var::new("ADMIN_ADDR", admin_default)
                    .doc("Admin HTTP listen address (`/livez`, `/readyz`, `/metrics`)"),
            ),
            drain_delay: r.duration(DRAIN_DELAY),
            shed: ShedConfig::read(r),
            listeners: None,
        }
    }
}

/// Why a host could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("gRPC server failed")]
    Grpc(#[from] tonic::transport::Error),
    /// Reflection could not read the descriptor set.
    #[error("cannot build the reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A background task ended while the service was running (see [`crate::supervise`]).
    #[error(transparent)]
    Task(#[from] TaskFailure),
}

type TaskFn = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, Result<(), String>> + Send>;

/// A service process: gRPC + admin HTTP + background tasks. See the module docs.
pub struct Host {
    name: &'static str,
    grpc: TcpListener,
    admin: TcpListener,
    drain_delay: Duration,
    shed: ShedConfig,
    routes: RoutesBuilder,
    service_names: Vec<&'static str>,
    checks: Vec<(&'static str, CheckFn)>,
    tasks: Vec<(&'static str, TaskFn)>,
    /// Cancelled when the drain starts (see [`Host::draining`]).
    draining: CancellationToken,
    /// Cancelled when the drain delay has passed (see [`Host::drained`]).
    drained: CancellationToken,
}

impl Host {
    /// Binds both ports (port 0 picks a free one: tests use that).
    pub async fn bind(name: &'static str, config: &HostConfig) -> Result<Self, HostError> {
        // Install the recorder before the first call is counted.
        crate::metrics::declare(crate::metrics::GRPC_METRICS);
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| HostError::Bind { addr, source })
        };
        let (grpc, admin) = match &config.listeners {
            Some(listeners) => {
                let failed = |addr| move |source| HostError::Bind { addr, source };
                (
                    adopt(&listeners.grpc).map_err(failed(config.grpc_addr))?,
                    adopt(&listeners.admin).map_err(failed(config.admin_addr))?,
                )
            }
            None => (
                bind(config.grpc_addr).await?,
                bind(config.admin_addr).await?,
            ),
        };
        Ok(Self {
            name,
            grpc,
            admin,
            drain_delay: config.drain_delay,
            shed: config.shed,
            routes: RoutesBuilder::default(),
            service_names: Vec::new(),
            checks: Vec::new(),
            tasks: Vec::new(),
            draining: CancellationToken::new(),
            drained: CancellationToken::new(),
        })
    }

    /// Cancelled when the host starts draining (health NOT_SERVING, `/readyz` 503): what a
    /// listener the service serves itself (the gateway's HTTP port) reports during the drain.
    #[must_use]
    pub fn draining(&self) -> CancellationToken {
        self.draining.clone()
    }

    /// Cancelled once the drain delay has passed, when the gRPC listener closes: a listener the
    /// service serves itself (a task, see [`Host::spawn`]) closes then too and lets its
    /// in-flight requests finish.
    #[must_use]
    pub fn drained(&self) -> CancellationToken {
        self.drained.clone()
    }

    /// The bound gRPC address.
    #[must_use]
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound admin HTTP address.
    #[must_use]
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// Serves a generated tonic server; its health status follows the host's readiness.
    pub fn add_service<S>(&mut self, service: S) -> &mut Self
    where
        S: tower::Service<
                http::Request<tonic::body::Body>,
                Response = http::Response<tonic::body::Body>,
                Error = std::convert::Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.routes.add_service(service);
        self.service_names.push(S::NAME);
        self
    }

    /// A dependency the service cannot work without (its database, say): while the check fails,
    /// health is NOT_SERVING and `/readyz` answers 503 naming it.
    pub fn readiness_check<F, Fut>(&mut self, name: &'static str, check: F) -> &mut Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        self.checks.push((
            name,
            Arc::new(move || Box::pin(check()) as BoxFuture<'static, _>),
        ));
        self
    }

    /// A supervised background task (outbox relay, consumer, periodic job). It gets the stop
    /// token and should finish its current unit of work and return once the token is cancelled.
    /// Returning before that, returning an `Err` or panicking is a failure: logged at ERROR with
    /// the task's name, `/readyz` answers 503 naming the task, health turns NOT_SERVING, the
    /// service drains and [`Host::run`] returns [`HostError::Task`] (the process exits non-zero).
    pub fn spawn<F, Fut>(&mut self, name: &'static str, task: F) -> &mut Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        self.tasks.push((
            name,
            Box::new(move |token| {
                Box::pin(async move { task(token).await.into_outcome() })
                    as BoxFuture<'static, Result<(), String>>
            }),
        ));
        self
    }

    /// Serves until `shutdown` is cancelled, then stops in order (see the module docs).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), HostError> {
        let Self {
            name,
            grpc,
            admin,
            drain_delay,
            shed,
            mut routes,
            service_names,
            checks,
            tasks,
            draining,
            drained,
        } = self;
        let (grpc_addr, admin_addr) = (grpc.local_addr().ok(), admin.local_addr().ok());
        // Stopped by the caller's shutdown or by a failed background task (this host only).
        let stop = shutdown.child_token();
        let mut supervisor = Supervisor::new(stop.clone());
        let readiness = Arc::new(Readiness {
            draining: AtomicBool::new(false),
            tasks: supervisor.failures(),
            checks,
        });
        let reporter = add_health_and_reflection(&mut routes)?;
        let (readiness_names, initially) =
            announce_health(&reporter, &service_names, &readiness).await;
        // Admin port: stays up until everything else has stopped, so probes see the drain.
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn(serve_admin(admin, readiness.clone(), admin_stop.clone()));
        // Health follows the readiness checks while running (until the drain stops it).
        let monitor_stop = CancellationToken::new();
        let monitor = tokio::spawn(monitor_health(
            reporter.clone(),
            readiness_names.clone(),
            readiness.clone(),
            initially,
            monitor_stop.clone(),
        ));
        for (task_name, task) in tasks {
            supervisor.spawn(task_name, task(stop.clone()));
        }
        tracing::info!(service = name, grpc = ?grpc_addr, admin = ?admin_addr, "serving");
        let drain = Drain {
            name,
            delay: drain_delay,
            readiness: readiness.clone(),
            reporter,
            readiness_names,
            monitor_stop,
            draining: draining.clone(),
            drained: drained.clone(),
        };
        let until_drained = drained.clone().cancelled_owned();
        let served = serve_grpc(
            name,
            grpc,
            routes,
            shed,
            drain.run(stop.clone()),
            until_drained,
        );
        let served = served.await;
        // The server returns early only on error; make sure everything else stops too.
        stop.cancel();
        draining.cancel();
        drained.cancel();
        let _ = monitor.await;
        let tasks = supervisor.join(TASK_GRACE).await;
        admin_stop.cancel();
        let _ = admin_task.await;
        served?;
        if let Err(failure) = tasks {
            tracing::error!(service = name, error = %failure, "stopped after a background task failed");
            return Err(failure.into());
        }
        tracing::info!(service = name, "stopped");
        Ok(())
    }
}

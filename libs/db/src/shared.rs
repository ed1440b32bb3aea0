//! Connections that many single statements use at once, so that tokio-postgres pipelines them.
//!
//! A pooled connection serves one caller at a time: every statement costs both sides a write, a
//! read and a wake-up. A statement that is a whole transaction by itself (autocommit) needs no
//! connection of its own, though: callers that share a connection have their statements queued
//! by tokio-postgres' connection task and written together, and PostgreSQL reads the next one
//! without going back to sleep. Each statement still ends in its own Sync, so one failing does not
//! touch the others. Only for such statements: a transaction (`BEGIN` … `COMMIT`) on a shared
//! connection would take in whatever the other callers send meanwhile.
//!
//! A connection whose socket closed (a restarted server, a terminated backend) is replaced by the
//! next caller of its slot before use, as the pool's checkout check does; one that fails a
//! statement with a connection error ([`SharedConn::check`]) leaves its slot at once.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use diesel_async::AsyncPgConnection;
use flightmesh_runtime::config::Secret;

use crate::error::is_connection_failure;
use crate::{DbConfig, DbError, DieselError};

/// A few connections shared by every caller, taken in turn.
pub struct SharedConnections {
    url: Secret<String>,
    connect_timeout: Duration,
    slots: Box<[Slot]>,
    next: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    conn: Mutex<Option<Open>>,
    /// Held while connecting, so that the callers of an empty slot open one connection.
    connecting: tokio::sync::Mutex<()>,
}

/// An open connection and whether its socket has closed since.
#[derive(Clone)]
struct Open {
    conn: Arc<AsyncPgConnection>,
    /// Set when tokio-postgres' connection task ends: the socket closed or failed.
    closed: Arc<AtomicBool>,
}

impl Slot {
    /// The slot's connection, unless it has none or its socket closed.
    fn current(&self) -> Option<Arc<AsyncPgConnection>> {
        let slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|open| !open.closed.load(Ordering::Acquire))
            .map(|open| Arc::clone(&open.conn))
    }
}

/// One of the shared connections, as a caller holds it for a statement.
pub struct SharedConn<'a> {
    conn: Arc<AsyncPgConnection>,
    slot: &'a Slot,
}

impl SharedConnections {
    /// `count` connections (at least one) to `config`'s database, opened on first use.
    #[must_use]
    pub fn new(config: &DbConfig, count: usize) -> Self {
        Self {
            url: config.url.clone(),
            connect_timeout: config.connect_timeout,
            slots: (0..count.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next connection in turn, connecting it first if it is not open.
    pub async fn get(&self) -> Result<SharedConn<'_>, DbError> {
        let turn = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[turn];
        if let Some(conn) = slot.current() {
            return Ok(SharedConn { conn, slot });
        }
        let _connecting = slot.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(conn) = slot.current() {
            return Ok(SharedConn { conn, slot });
        }
        let open = tokio::time::timeout(self.connect_timeout, connect(self.url.expose()))
            .await
            .map_err(|elapsed| DbError::Unavailable(Box::new(elapsed)))??;
        let conn = Arc::clone(&open.conn);
        *slot.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(open);
        Ok(SharedConn { conn, slot })
    }
}

/// Connects, driving the connection on a task of its own that marks it closed when it ends
/// (diesel-async's own driver keeps that to itself).
async fn connect(url: &str) -> Result<Open, DbError> {
    let unavailable = |err| DbError::Unavailable(Box::new(err));
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(unavailable)?;
    let closed = Arc::new(AtomicBool::new(false));
    let marks_closed = Arc::clone(&closed);
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "shared database connection failed");
        }
        marks_closed.store(true, Ordering::Release);
    });
    let conn = AsyncPgConnection::try_from(client)
        .await
        .map_err(|err| DbError::Unavailable(Box::new(err)))?;
    Ok(Open {
        conn: Arc::new(conn),
        closed,
    })
}

impl SharedConn<'_> {
    /// Passes `result` through; if its error says the connection is gone, the connection leaves
    /// its slot so that the next caller opens a new one.
    pub fn check<T>(&self, result: Result<T, DieselError>) -> Result<T, DieselError> {
        if let Err(err) = &result
            && is_connection_failure(err)
        {
            let mut slot = self
                .slot
                .conn
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if slot
                .as_ref()
                .is_some_and(|open| Arc::ptr_eq(&open.conn, &self.conn))
            {
                *slot = None;
            }
        }
        result
    }
}

impl Deref for SharedConn<'_> {
    type Target = AsyncPgConnection;

    fn deref(&self) -> &AsyncPgConnection {
        &self.conn
    }
}

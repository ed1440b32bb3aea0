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
//! The statements go straight to tokio-postgres, prepared once per connection and kept by their
//! text: on the booking path diesel's query builder (walking the statement for its text, its
//! binds and its cache key on every execution) was a tenth of the service's CPU (ADR 0015).
//!
//! A connection whose socket closed (a restarted server, a terminated backend) is replaced by the
//! next caller of its slot before use, as the pool's checkout check does; one that fails a
//! statement with a connection error leaves its slot at once.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use flightmesh_runtime::config::Secret;
use tokio_postgres::types::{IsNull, ToSql, Type, accepts, to_sql_checked};
use tokio_postgres::{Client, Row, Statement};

use crate::error::{from_postgres, is_connection_failure};
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
    conn: Mutex<Option<Arc<Open>>>,
    /// Held while connecting, so that the callers of an empty slot open one connection.
    connecting: tokio::sync::Mutex<()>,
}

/// An open connection, whether its socket has closed since, and its prepared statements.
struct Open {
    client: Client,
    /// Set when tokio-postgres' connection task ends: the socket closed or failed.
    closed: Arc<AtomicBool>,
    /// Statements prepared on this connection, by their text (a handful: a list is enough).
    statements: Mutex<Vec<(&'static str, Statement)>>,
}

impl Slot {
    /// The slot's connection, unless it has none or its socket closed.
    fn current(&self) -> Option<Arc<Open>> {
        let slot = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        slot.as_ref()
            .filter(|open| !open.closed.load(Ordering::Acquire))
            .map(Arc::clone)
    }
}

/// One of the shared connections, as a caller holds it for its statements.
pub struct SharedConn<'a> {
    open: Arc<Open>,
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
        if let Some(open) = slot.current() {
            return Ok(SharedConn { open, slot });
        }
        let _connecting = slot.connecting.lock().await;
        // Another caller may have connected while this one waited.
        if let Some(open) = slot.current() {
            return Ok(SharedConn { open, slot });
        }
        let open = tokio::time::timeout(self.connect_timeout, connect(self.url.expose()))
            .await
            .map_err(|elapsed| DbError::Unavailable(Box::new(elapsed)))??;
        let open = Arc::new(open);
        *slot.conn.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&open));
        Ok(SharedConn { open, slot })
    }
}

/// Connects, driving the connection on a task of its own that marks it closed when it ends.
async fn connect(url: &str) -> Result<Open, DbError> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|err| DbError::Unavailable(Box::new(err)))?;
    let closed = Arc::new(AtomicBool::new(false));
    let marks_closed = Arc::clone(&closed);
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "shared database connection failed");
        }
        marks_closed.store(true, Ordering::Release);
    });
    Ok(Open {
        client,
        closed,
        statements: Mutex::new(Vec::new()),
    })
}

impl SharedConn<'_> {
    /// Runs `sql` with `params` (`$1`, `$2`, … in order) as a statement of its own (autocommit)
    /// and reads its answer to the end, so an error at its commit is this call's error too.
    /// The statement is prepared on first use on each connection. A connection error takes the
    /// connection out of its slot, so that the next caller opens a new one.
    pub async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, DieselError> {
        let result = match self.statement(sql).await {
            Ok(statement) => self.open.client.query(&statement, params).await,
            Err(err) => Err(err),
        };
        let result = result.map_err(from_postgres);
        if let Err(err) = &result
            && is_connection_failure(err)
        {
            self.leave_slot();
        }
        result
    }

    /// `sql` prepared on this connection, preparing it the first time.
    async fn statement(&self, sql: &'static str) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .open
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(text, _)| same_text(text, sql))
            .map(|(_, statement)| statement.clone());
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.open.client.prepare(sql).await?;
        let mut statements = self
            .open
            .statements
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Another caller may have prepared it meanwhile: keep theirs, ours closes when dropped.
        if let Some((_, known)) = statements.iter().find(|(text, _)| same_text(text, sql)) {
            return Ok(known.clone());
        }
        statements.push((sql, statement.clone()));
        Ok(statement)
    }

    fn leave_slot(&self) {
        let mut slot = self
            .slot
            .conn
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if slot
            .as_ref()
            .is_some_and(|open| Arc::ptr_eq(open, &self.open))
        {
            *slot = None;
        }
    }
}

/// The same statement text; usually the very same constant, so the address says it first.
fn same_text(a: &str, b: &str) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// JSON text bound as JSONB as it is, without parsing it into a value first.
#[derive(Debug, Clone, Copy)]
pub struct JsonbText<'a>(pub &'a str);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        // JSONB's binary format: a version byte, then the JSON text.
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    accepts!(JSONB);
    to_sql_checked!();
}

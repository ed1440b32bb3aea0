//! Why a database operation failed, as far as callers need to know: unavailable (retry, 503),
//! a query that failed, migrations that could not run; the constraint a write broke; and the
//! conversion into the shared `Fault` every service maps to a status.

use diesel::result::DatabaseErrorKind;
use diesel_async::pooled_connection::PoolError;

use crate::DieselError;

/// Why a database operation failed, as far as callers need to know.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or dropped the connection: retry later (503).
    #[error("database unavailable")]
    Unavailable(#[source] flightmesh_runtime::BoxError),
    /// A query failed for another reason (a bug, a violated constraint nobody mapped).
    #[error("database query failed")]
    Query(#[source] DieselError),
    /// Migrations could not be applied.
    #[error("database migrations for schema {schema} failed: {reason}")]
    Migration {
        /// The schema.
        schema: String,
        /// What went wrong.
        reason: String,
    },
}

impl From<DbError> for flightmesh_runtime::status::Fault {
    fn from(err: DbError) -> Self {
        match err {
            DbError::Unavailable(_) => Self::Unavailable(Box::new(err)),
            DbError::Query(_) | DbError::Migration { .. } => Self::Internal(Box::new(err)),
        }
    }
}

/// The conversions a service error with a `Fault(flightmesh_runtime::status::Fault)` variant needs
/// to take `?` on database errors (ours and diesel's) and on field violations, written once.
#[macro_export]
macro_rules! fault_conversions {
    ($error:ty) => {
        impl From<$crate::DbError> for $error {
            fn from(err: $crate::DbError) -> Self {
                Self::Fault(err.into())
            }
        }

        impl From<$crate::DieselError> for $error {
            fn from(err: $crate::DieselError) -> Self {
                Self::Fault($crate::DbError::from(err).into())
            }
        }

        impl From<flightmesh_runtime::status::FieldViolations> for $error {
            fn from(violations: flightmesh_runtime::status::FieldViolations) -> Self {
                Self::Fault(violations.into())
            }
        }
    };
}

impl From<bb8::RunError<PoolError>> for DbError {
    fn from(err: bb8::RunError<PoolError>) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

impl From<DieselError> for DbError {
    fn from(err: DieselError) -> Self {
        if is_connection_failure(&err) {
            Self::Unavailable(Box::new(err))
        } else {
            Self::Query(err)
        }
    }
}

/// True when the error means "the connection is gone", not "the query is wrong".
pub(crate) fn is_connection_failure(err: &DieselError) -> bool {
    match err {
        DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection,
            _,
        )
        | DieselError::BrokenTransactionManager => true,
        // SQLSTATE class 57 (operator intervention: admin shutdown, crash shutdown, cannot
        // connect now) reaches us as an "unknown" error; its messages are stable.
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            message.starts_with("terminating connection")
                || message.starts_with("the database system is")
                || message.contains("connection closed")
        }
        _ => false,
    }
}

/// A tokio-postgres error in diesel's terms, so that one classification serves both
/// ([`is_connection_failure`], [`constraint_violation`]): a server error by its SQLSTATE; a closed
/// or failed socket as a command that could not be sent (a dependency outage); anything else (a
/// value that does not fit its parameter, an unreadable column) as a failed query, as diesel
/// reports its own bind errors. (diesel-async calls every error without a SQLSTATE a failed
/// send, which would answer a bug with a 503 and drop a healthy connection.)
pub(crate) fn from_postgres(err: tokio_postgres::Error) -> DieselError {
    use tokio_postgres::error::SqlState;
    let Some(db) = err.as_db_error().cloned() else {
        let io = std::error::Error::source(&err)
            .and_then(|source| source.downcast_ref::<std::io::Error>());
        let socket = err.is_closed() || io.is_some();
        let kind = if socket {
            DatabaseErrorKind::UnableToSendCommand
        } else {
            DatabaseErrorKind::Unknown
        };
        return DieselError::DatabaseError(kind, Box::new(err.to_string()));
    };
    let kind = match *db.code() {
        SqlState::UNIQUE_VIOLATION => DatabaseErrorKind::UniqueViolation,
        SqlState::FOREIGN_KEY_VIOLATION => DatabaseErrorKind::ForeignKeyViolation,
        SqlState::CHECK_VIOLATION => DatabaseErrorKind::CheckViolation,
        SqlState::NOT_NULL_VIOLATION => DatabaseErrorKind::NotNullViolation,
        SqlState::T_R_SERIALIZATION_FAILURE => DatabaseErrorKind::SerializationFailure,
        SqlState::READ_ONLY_SQL_TRANSACTION => DatabaseErrorKind::ReadOnlyTransaction,
        _ => DatabaseErrorKind::Unknown,
    };
    DieselError::DatabaseError(kind, Box::new(ServerError(db)))
}

/// A server's error report, as diesel reads one.
struct ServerError(tokio_postgres::error::DbError);

impl diesel::result::DatabaseErrorInformation for ServerError {
    fn message(&self) -> &str {
        self.0.message()
    }

    fn details(&self) -> Option<&str> {
        self.0.detail()
    }

    fn hint(&self) -> Option<&str> {
        self.0.hint()
    }

    fn table_name(&self) -> Option<&str> {
        self.0.table()
    }

    fn column_name(&self) -> Option<&str> {
        self.0.column()
    }

    fn constraint_name(&self) -> Option<&str> {
        self.0.constraint()
    }

    fn statement_position(&self) -> Option<i32> {
        None
    }
}

/// Which constraint a write violated, for turning it into a domain error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation<'a> {
    /// SQLSTATE 23505 on the named constraint or index.
    Unique(&'a str),
    /// SQLSTATE 23503 on the named constraint.
    ForeignKey(&'a str),
    /// SQLSTATE 23514 on the named constraint.
    Check(&'a str),
}

/// The constraint `err` violated, if it is a constraint violation.
#[must_use]
pub fn constraint_violation(err: &DieselError) -> Option<Violation<'_>> {
    let DieselError::DatabaseError(kind, info) = err else {
        return None;
    };
    let name = info.constraint_name().unwrap_or_default();
    match kind {
        DatabaseErrorKind::UniqueViolation => Some(Violation::Unique(name)),
        DatabaseErrorKind::ForeignKeyViolation => Some(Violation::ForeignKey(name)),
        DatabaseErrorKind::CheckViolation => Some(Violation::Check(name)),
        _ => None,
    }
}

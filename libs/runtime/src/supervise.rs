//! Supervision of a process's long-running tasks (consumers, outbox relays, periodic jobs).
//!
//! A long-running task is meant to run for as long as the process serves. One that ends before
//! the process is stopping — it returned, returned an error, or panicked — leaves a pod that
//! looks healthy but no longer does its work (a stats consumer that died on one bad message
//! while the API still answered). A [`Supervisor`] turns that into a visible failure: it logs
//! the task's name and cause at ERROR, records the failure (the [`Host`](crate::Host) reports it
//! in `/readyz` and gRPC health) and cancels the process's stop token, so the service drains and
//! its `run` returns an error: the binary exits non-zero and Kubernetes restarts the pod.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// What a supervised task's output says about how it ended: `()` is a plain return; a
/// `Result` is an error when `Err` (its cause chain is logged).
pub trait TaskOutcome: Send + 'static {
    /// `Err(cause)` when the task failed.
    fn into_outcome(self) -> Result<(), String>;
}

impl TaskOutcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E> TaskOutcome for Result<(), E>
where
    E: Into<crate::BoxError> + Send + 'static,
{
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|err| crate::telemetry::error_chain(err.into().as_ref()))
    }
}

/// A supervised task that ended when it should not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("background task {task:?} {cause}")]
pub struct TaskFailure {
    /// The task's name.
    pub task: &'static str,
    /// How it ended: `ended unexpectedly`, `failed: …` or `panicked: …`.
    pub cause: String,
}

/// The first failure of a supervisor's tasks, shared with whoever reports readiness.
#[derive(Debug, Clone, Default)]
pub struct Failures(Arc<Mutex<Option<TaskFailure>>>);

impl Failures {
    /// The first task failure, if any.
    #[must_use]
    pub fn first(&self) -> Option<TaskFailure> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn record(&self, failure: TaskFailure) {
        let mut first = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if first.is_none() {
            *first = Some(failure);
        }
    }
}

/// Runs tasks that must live as long as the process serves (see the module docs).
pub struct Supervisor {
    stop: CancellationToken,
    failures: Failures,
    tasks: JoinSet<()>,
}

impl Supervisor {
    /// Tasks are expected to end only once `stop` is cancelled; the first failure cancels it.
    #[must_use]
    pub fn new(stop: CancellationToken) -> Self {
        Self {
            stop,
            failures: Failures::default(),
            tasks: JoinSet::new(),
        }
    }

    /// The token tripped by a shutdown or by the first failure.
    #[must_use]
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// A handle on the failures, for readiness reports.
    #[must_use]
    pub fn failures(&self) -> Failures {
        self.failures.clone()
    }

    /// Runs `task` under supervision. It fails if it panics, returns an error, or returns at
    /// all before the stop token is cancelled.
    pub fn spawn<Fut>(&mut self, name: &'static str, task: Fut)
    where
        Fut: Future + Send + 'static,
        Fut::Output: TaskOutcome,
    {
        let stop = self.stop.clone();
        let failures = self.failures.clone();
        self.tasks.spawn(async move {
            let ended = AssertUnwindSafe(task).catch_unwind().await;
            let cause = match ended {
                Ok(outcome) => match outcome.into_outcome() {
                    Ok(()) if stop.is_cancelled() => {
                        tracing::debug!(task = name, "background task stopped");
                        return;
                    }
                    Ok(()) => "ended unexpectedly".to_owned(),
                    Err(error) => format!("failed: {error}"),
                },
                Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            };
            tracing::error!(
                task = name,
                cause = %cause,
                "background task ended; the service stops so that it is restarted"
            );
            failures.record(TaskFailure { task: name, cause });
            stop.cancel();
        });
    }

    /// Waits up to `grace` for every task to end (call it once the stop token is cancelled),
    /// then aborts the rest. Returns the first failure, if any.
    pub async fn join(mut self, grace: Duration) -> Result<(), TaskFailure> {
        let finished = tokio::time::timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            tracing::warn!(
                tasks = self.tasks.len(),
                "background tasks did not stop in time; aborting them"
            );
            self.tasks.abort_all();
            while self.tasks.join_next().await.is_some() {}
        }
        self.failures.first().map_or(Ok(()), Err)
    }
}

/// The text of a panic payload (`panic!("…")` carries a `&str` or a `String`).
fn panic_message(payload: &(dyn Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-text panic payload".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_stops_on_shutdown_is_not_a_failure() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone());
        let token = stop.clone();
        supervisor.spawn("worker", async move { token.cancelled().await });
        stop.cancel();
        assert_eq!(supervisor.join(Duration::from_secs(1)).await, Ok(()));
    }

    #[tokio::test]
    async fn returning_early_failing_or_panicking_trips_the_stop_token() {
        for (task, expected) in [
            (0, "ended unexpectedly"),
            (1, "failed: broker refused the queue"),
            (2, "panicked: attempt to multiply with overflow"),
        ] {
            let stop = CancellationToken::new();
            let mut supervisor = Supervisor::new(stop.clone());
            let failures = supervisor.failures();
            supervisor.spawn("consumer", async move {
                match task {
                    0 => Ok(()),
                    1 => Err("broker refused the queue"),
                    _ => panic!("attempt to multiply with overflow"),
                }
            });
            tokio::time::timeout(Duration::from_secs(5), stop.cancelled())
                .await
                .expect("the failure cancels the stop token");
            let failure = failures.first().expect("recorded");
            assert_eq!(failure.task, "consumer");
            assert_eq!(failure.cause, expected);
            assert_eq!(supervisor.join(Duration::from_secs(1)).await, Err(failure));
        }
    }

    #[tokio::test]
    async fn an_error_during_shutdown_is_still_a_failure_and_stuck_tasks_are_aborted() {
        let stop = CancellationToken::new();
        let mut supervisor = Supervisor::new(stop.clone());
        supervisor.spawn("flusher", async { Err::<(), _>("flush failed") });
        supervisor.spawn("stuck", std::future::pending::<()>());
        stop.cancel();
        let failure = supervisor
            .join(Duration::from_millis(200))
            .await
            .unwrap_err();
        assert_eq!(failure.task, "flusher");
        assert_eq!(failure.cause, "failed: flush failed");
    }
}

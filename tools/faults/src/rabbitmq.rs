//! A RabbitMQ node of a scenario's own, so that restarting the broker disconnects nobody else: a
//! second node of the machine's installation (`rabbitmq-server -detached` under another node
//! name), on free ports, with its data, logs and (empty) plugin list in a directory of its own,
//! shut down and removed with this value (or by the next run's [`PrivateRabbitMq::start`], if
//! its run was killed).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::command::output;
use flightmesh_testkit::{orphaned, owned_name};

const PREFIX: &str = "fmfaults";

/// See the module docs.
pub struct PrivateRabbitMq {
    node: String,
    port: u16,
    dir: PathBuf,
}

impl PrivateRabbitMq {
    /// Starts the node and waits (up to a minute) until it accepts connections, first removing
    /// any node that a killed test run left. `Err` (the reason) where RabbitMQ's tools are
    /// missing or the node does not start.
    pub fn start() -> Result<Self, String> {
        remove_orphans();
        let name = owned_name(PREFIX);
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).map_err(|err| format!("{}: {err}", dir.display()))?;
        let node = Self {
            node: format!("{name}@localhost"),
            port: broker_port(),
            dir,
        };
        std::fs::write(node.dir.join("enabled_plugins"), "[].\n")
            .map_err(|err| format!("the plugin list: {err}"))?;
        // Started as root, the server runs as the `rabbitmq` user: the directory must be its.
        let dir = node.dir.display().to_string();
        output("chown", &["-R", "rabbitmq:rabbitmq", &dir], &[])?;
        let path = |leaf: &str| node.dir.join(leaf).display().to_string();
        output(
            "rabbitmq-server",
            &["-detached"],
            &[
                ("RABBITMQ_NODENAME", node.node.clone()),
                ("RABBITMQ_NODE_PORT", node.port.to_string()),
                ("RABBITMQ_DIST_PORT", broker_port().to_string()),
                ("RABBITMQ_MNESIA_BASE", path("mnesia")),
                ("RABBITMQ_LOG_BASE", path("log")),
                ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
                // Not the machine's rabbitmq.conf: it names the machine's listener.
                ("RABBITMQ_CONFIG_FILE", path("no-config")),
            ],
        )?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while node.ctl(&["await_startup", "--timeout", "1"]).is_err() {
            if Instant::now() > deadline {
                // The directory goes with `node`: keep the log's end in the reason.
                let log = std::fs::read_to_string(
                    node.dir.join("log").join(format!("{}.log", node.node)),
                )
                .unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(20).collect();
                return Err(format!(
                    "node {} did not start within a minute; its log ends:\n{}",
                    node.node,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        Ok(node)
    }

    /// Its AMQP URL (the `guest` user, allowed from loopback).
    #[must_use]
    pub fn amqp_url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// The node's name.
    #[must_use]
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `rabbitmqctl -n <node> <args>`.
    ///
    /// # Errors
    /// What `rabbitmqctl` printed when it failed.
    pub fn ctl(&self, args: &[&str]) -> Result<String, String> {
        let mut all = vec!["-q", "-n", &self.node];
        all.extend_from_slice(args);
        output("rabbitmqctl", &all, &[])
    }
}

impl Drop for PrivateRabbitMq {
    fn drop(&mut self) {
        if let Err(err) = self.ctl(&["shutdown"]) {
            eprintln!(
                "warning: could not shut down RabbitMQ node {}: {err}",
                self.node
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Shuts down and removes the nodes of killed test runs: their directories name them.
fn remove_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if orphaned(PREFIX, &name) {
            eprintln!("removing RabbitMQ node {name}, left by a test run that was killed");
            // Fails where the node is down already; its directory goes either way.
            let node = format!("{name}@localhost");
            let _ = output("rabbitmqctl", &["-q", "-n", &node, "shutdown"], &[]);
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A free port outside 35672–35682, where `rabbitmqctl` itself listens while it runs.
fn broker_port() -> u16 {
    loop {
        let port = crate::deploy::free_port();
        if !(35_672..=35_682).contains(&port) {
            return port;
        }
    }
}

//! The deployment's names: the hosts file every process mounts over `/etc/hosts`, rewritten as
//! replicas enter and leave their services' DNS names.

use std::io::Write as _;
use std::process::Command;

use super::{Deployment, HOSTS_FILE_SIZE};

/// Whether this machine lets a process mount a hosts file of its own (`unshare -m`), started
/// the way the deployment starts its processes (through `setpriv --pdeathsig`).
///
/// # Errors
/// Why it cannot.
pub fn can_isolate_names() -> Result<(), String> {
    let probe = Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--", "unshare", "-m", "sh", "-c"])
        .arg("mount --bind /etc/hosts /etc/hosts")
        .output();
    match probe {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "setpriv and unshare -m cannot bind-mount /etc/hosts here: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(err) => Err(format!("setpriv (util-linux) is not available: {err}")),
    }
}

impl Deployment {
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
}

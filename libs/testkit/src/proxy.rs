//! A TCP relay that a test can cut (closing every connection and refusing new ones) and restore.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Relays `127.0.0.1:<port>` to a target address until cut.
pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Bumped on every cut so that live connections notice and close.
    generation: watch::Sender<u64>,
    stop: CancellationToken,
}

impl TcpProxy {
    /// Starts relaying to `target`.
    ///
    /// # Panics
    /// If no local port can be bound.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let stop = CancellationToken::new();

        let accept_up = up.clone();
        let accept_generation = generation.clone();
        let accept_stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = accept_stop.cancelled() => return,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else { continue };
                if !accept_up.load(Ordering::SeqCst) {
                    drop(client); // refused: the dependency is "down"
                    continue;
                }
                let mut cut = accept_generation.subscribe();
                let stop = accept_stop.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {}
                        () = stop.cancelled() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
            stop,
        }
    }

    /// The address clients should connect to.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every relayed connection and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accepts and relays connections again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

//! A TCP forwarder on a loopback port to another address (the test PostgreSQL), that a test
//! can stop (listener and every connection closed, as if the database went away) and start
//! again on the same port.

use std::net::SocketAddr;

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub struct Forwarder {
    addr: SocketAddr,
    target: String,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
}

impl Forwarder {
    /// Listens on `127.0.0.1:0` and forwards every connection to `target` (`host:port`).
    pub async fn start(target: &str) -> Self {
        let mut f = Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            target: target.to_owned(),
            running: None,
        };
        f.listen().await;
        f
    }

    /// The address it listens on (the same after [`Forwarder::resume`]).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes the listener and every forwarded connection, and waits until they are closed.
    pub async fn stop(&mut self) {
        if let Some((stop, task)) = self.running.take() {
            let _ = stop.send(());
            task.await.expect("forwarder task");
        }
    }

    /// Listens again on the same port.
    pub async fn resume(&mut self) {
        assert!(self.running.is_none(), "the forwarder is running");
        self.listen().await;
    }

    async fn listen(&mut self) {
        let socket = TcpSocket::new_v4().unwrap();
        // The port was ours a moment ago; its closed connections may linger in TIME_WAIT.
        socket.set_reuseaddr(true).unwrap();
        socket.bind(self.addr).expect("bind the forwarder");
        let listener = socket.listen(64).unwrap();
        self.addr = listener.local_addr().unwrap();
        let target = self.target.clone();
        let (stop_tx, mut stop_rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            let mut conns = JoinSet::new();
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { continue };
                        let target = target.clone();
                        conns.spawn(async move {
                            if let Ok(mut server) = TcpStream::connect(&target).await {
                                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                            }
                        });
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
            drop(listener);
            // Aborts every connection's task and waits: their sockets are closed.
            conns.shutdown().await;
        });
        self.running = Some((stop_tx, task));
    }
}

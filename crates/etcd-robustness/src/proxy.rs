//! A loopback TCP proxy in front of one member, for client-side faults: every client of a
//! scenario reaches the cluster through these, so the nemesis can delay, black-hole or cut
//! the connections of one member without touching the member itself.

use rand::Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes it forwards.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// Forwards everything at once.
    Pass,
    /// Holds every chunk this long before forwarding it, both ways.
    Delay(Duration),
    /// Forwards nothing, either way, and holds what arrives (a link that went silent);
    /// new connections are accepted and held too. Back to `Pass`, what was held goes on.
    BlackHole,
    /// Forwards a chunk from the client, then with this probability closes the connection
    /// both ways before the answer can come back: the request reached the member, its
    /// answer is lost.
    Cut(f64),
}

/// A running proxy; dropping it stops accepting (open connections end with their sides).
pub struct Proxy {
    addr: SocketAddr,
    mode: watch::Sender<Mode>,
    cuts: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards every connection to `target`
    /// (`host:port` or `http://host:port`).
    pub async fn start(target: &str) -> std::io::Result<Proxy> {
        let target = target
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (mode, modes) = watch::channel(Mode::Pass);
        let cuts = Arc::new(AtomicU64::new(0));
        let counted = cuts.clone();
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let _ = inbound.set_nodelay(true);
                let target = target.clone();
                let modes = modes.clone();
                let cuts = counted.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let _ = outbound.set_nodelay(true);
                    relay(inbound, outbound, modes, cuts).await;
                });
            }
        });
        Ok(Proxy {
            addr,
            mode,
            cuts,
            accept,
        })
    }

    /// The proxy's URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A handle to change the mode from anywhere (the nemesis's thread).
    pub fn control(&self) -> Control {
        Control {
            mode: self.mode.clone(),
            cuts: self.cuts.clone(),
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Changes a proxy's mode; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Control {
    mode: watch::Sender<Mode>,
    cuts: Arc<AtomicU64>,
}

impl Control {
    /// Sets the mode for every connection, open or new.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// How many connections were cut so far.
    pub fn cuts(&self) -> u64 {
        self.cuts.load(Ordering::Relaxed)
    }
}

/// The two write halves of a relayed connection; `None` once closed.
struct Pipe {
    client: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
    server: tokio::sync::Mutex<Option<OwnedWriteHalf>>,
}

impl Pipe {
    fn writer(&self, side: Side) -> &tokio::sync::Mutex<Option<OwnedWriteHalf>> {
        match side {
            Side::Client => &self.client,
            Side::Server => &self.server,
        }
    }

    /// Closes both sockets (one lock at a time: never two held at once).
    async fn close(&self) {
        for side in [Side::Client, Side::Server] {
            if let Some(mut half) = self.writer(side).lock().await.take() {
                let _ = half.shutdown().await;
            }
        }
    }
}

/// Forwards both ways until either side closes or a cut.
async fn relay(
    inbound: TcpStream,
    outbound: TcpStream,
    modes: watch::Receiver<Mode>,
    cuts: Arc<AtomicU64>,
) {
    let (client_read, client_write) = inbound.into_split();
    let (server_read, server_write) = outbound.into_split();
    let pipe = Pipe {
        client: tokio::sync::Mutex::new(Some(client_write)),
        server: tokio::sync::Mutex::new(Some(server_write)),
    };
    let up = pump(client_read, Side::Server, modes.clone(), &pipe, Some(cuts));
    let down = pump(server_read, Side::Client, modes, &pipe, None);
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    pipe.close().await;
}

#[derive(Clone, Copy)]
enum Side {
    Client,
    Server,
}

/// Copies from `read` to the `to` side, applying the mode to each chunk; returns when
/// either side closed or the connection was cut.
async fn pump(
    mut read: OwnedReadHalf,
    to: Side,
    mut modes: watch::Receiver<Mode>,
    pipe: &Pipe,
    cuts: Option<Arc<AtomicU64>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match read.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        // Hold while black-holed; delay when delaying.
        let mode = loop {
            let mode = *modes.borrow_and_update();
            if mode != Mode::BlackHole {
                break mode;
            }
            if modes.changed().await.is_err() {
                return;
            }
        };
        if let Mode::Delay(d) = mode {
            tokio::time::sleep(d).await;
        }
        {
            let mut writer = pipe.writer(to).lock().await;
            let Some(writer) = writer.as_mut() else {
                return;
            };
            if writer.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        if let (Mode::Cut(p), Some(cuts)) = (mode, &cuts) {
            if rand::thread_rng().gen_bool(p.clamp(0.0, 1.0)) {
                cuts.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

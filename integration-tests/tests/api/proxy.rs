//! A TCP proxy the test controls, to cut PostgreSQL or Redis away from the
//! app under test without touching the machine's shared servers, to hand
//! out an address before the server behind it exists, or to make a peer slow.

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::watch,
};

pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Where connections go; until it is set, they are dropped.
    target: Arc<OnceLock<String>>,
    /// Milliseconds every chunk coming back from the target is held (a slow peer).
    delay_ms: Arc<AtomicU64>,
    /// Bumped on every cut; live connections watch it and close.
    cuts: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let proxy = Self::unaimed().await;
        proxy.aim(target);
        proxy
    }

    /// A proxy listening already, aimed later with [`Proxy::aim`]: the
    /// gateway's public URL must be in its configuration before its port
    /// (0, picked at bind) is known.
    pub async fn unaimed() -> Self {
        let listener = crate::helpers::local_listener().await;
        let addr = listener.local_addr().expect("bound");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let target = Arc::new(OnceLock::<String>::new());
        let delay_ms = Arc::new(AtomicU64::new(0));
        let accept = {
            let open = open.clone();
            let cuts = cuts.clone();
            let target = target.clone();
            let delay_ms = delay_ms.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Some(target) = target.get().cloned() else {
                        drop(inbound);
                        continue;
                    };
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let mut cut = cuts.subscribe();
                    let delay_ms = delay_ms.clone();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        let (mut from_client, mut to_client) = inbound.split();
                        let (mut from_target, mut to_target) = outbound.split();
                        // Each direction closes its write side when its read side
                        // ends (half-close), as copy_bidirectional does.
                        let up = async {
                            let copied = tokio::io::copy(&mut from_client, &mut to_target).await;
                            let _ = to_target.shutdown().await;
                            copied
                        };
                        let down = async {
                            let mut buf = vec![0u8; 16 * 1024];
                            loop {
                                let n = from_target.read(&mut buf).await?;
                                if n == 0 {
                                    let _ = to_client.shutdown().await;
                                    return Ok::<_, std::io::Error>(());
                                }
                                let delay = delay_ms.load(Ordering::SeqCst);
                                if delay > 0 {
                                    tokio::time::sleep(Duration::from_millis(delay)).await;
                                }
                                to_client.write_all(&buf[..n]).await?;
                            }
                        };
                        tokio::select! {
                            _ = async { tokio::join!(up, down) } => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            addr,
            open,
            target,
            delay_ms,
            cuts,
            accept,
        }
    }

    /// Sends connections to `target` from now on; a proxy is aimed once.
    pub fn aim(&self, target: &str) {
        self.target
            .set(target.to_owned())
            .expect("a proxy is aimed once");
    }

    /// Holds what the target sends back for `delay` from now on, each read of it (up to
    /// 16 KiB) again: a slow peer.
    pub fn delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Drops every live connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

//! A TCP proxy the test controls, to cut PostgreSQL or Redis away from the
//! app under test without touching the machine's shared servers, or to hand
//! out an address before the server behind it exists.

use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{net::TcpStream, sync::watch};

pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Where connections go; until it is set, they are dropped.
    target: Arc<OnceLock<String>>,
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
        let accept = {
            let open = open.clone();
            let cuts = cuts.clone();
            let target = target.clone();
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
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(&target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
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

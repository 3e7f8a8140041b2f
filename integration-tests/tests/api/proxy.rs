//! A TCP proxy the test controls, to cut PostgreSQL or Redis away from the
//! app under test without touching the machine's shared servers, or to give
//! a peer an address before the server behind it exists (the local WeChat
//! needs the gateway's URL, the gateway the local WeChat's).

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{net::TcpStream, sync::watch};

pub struct Proxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Where new connections go; existing ones keep their target.
    target: Arc<Mutex<String>>,
    /// Bumped on every cut; live connections watch it and close.
    cuts: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: &str) -> Self {
        let listener = crate::helpers::local_listener().await;
        let addr = listener.local_addr().expect("bound");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let target = Arc::new(Mutex::new(target.to_owned()));
        let accept = {
            let target = target.clone();
            let open = open.clone();
            let cuts = cuts.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !open.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    let target = target.lock().expect("proxy target lock").clone();
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

    /// Drops every live connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Sends new connections to `target` from now on.
    pub fn retarget(&self, target: &str) {
        *self.target.lock().expect("proxy target lock") = target.to_owned();
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

//! A TCP proxy on loopback between a manager and PostgreSQL that a test can cut: while cut,
//! open connections are closed and new ones are accepted and closed at once, which is what a
//! manager sees when the database server goes away.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on each cut, so connections opened before it end.
    epoch: Arc<AtomicU64>,
    /// Connections being forwarded now.
    active: Arc<AtomicUsize>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to 127.0.0.1:<target>.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let active = Arc::new(AtomicUsize::new(0));
        let (c, e, n) = (cut.clone(), epoch.clone(), active.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (c, e, n) = (c.clone(), e.clone(), n.clone());
                n.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    pipe(inbound, target, c, e).await;
                    n.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Proxy {
            port,
            cut,
            epoch,
            active,
        }
    }

    /// Cuts the line and waits until every forwarded connection is closed.
    pub async fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.active.load(Ordering::SeqCst) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "proxy connections did not close"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

async fn pipe(mut inbound: TcpStream, target: u16, cut: Arc<AtomicBool>, epoch: Arc<AtomicU64>) {
    let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else {
        return;
    };
    let born = epoch.load(Ordering::SeqCst);
    let watch = async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            if cut.load(Ordering::SeqCst) || epoch.load(Ordering::SeqCst) != born {
                return;
            }
        }
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = watch => {}
    }
}

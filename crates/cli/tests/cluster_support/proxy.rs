//! A TCP proxy on loopback between a manager and PostgreSQL that a test can cut: while cut,
//! open connections are closed and new ones are accepted and closed at once, which is what a
//! manager sees when the database server goes away.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};

pub struct Proxy {
    pub port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on each cut, so connections opened before it end.
    epoch: Arc<AtomicU64>,
}

impl Proxy {
    /// Forwards 127.0.0.1:<port> to 127.0.0.1:<target>.
    pub async fn start(target: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let epoch = Arc::new(AtomicU64::new(0));
        let (c, e) = (cut.clone(), epoch.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if c.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let (c, e) = (c.clone(), e.clone());
                tokio::spawn(pipe(inbound, target, c, e));
            }
        });
        Proxy { port, cut, epoch }
    }

    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.epoch.fetch_add(1, Ordering::SeqCst);
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

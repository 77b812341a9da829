//! A TCP proxy in front of an executor that holds every `POST /execute` for a while before passing it on, so that
//! the scheduler's requests are in flight when it is frozen.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Listens on a spare port and forwards to `target_port`, holding each `/execute` request for `delay`; returns
/// the port and the accepting task (abort it to stop).
pub(crate) async fn delaying(target_port: u16, delay: Duration) -> anyhow::Result<(u16, JoinHandle<()>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let accepting = tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(forward(inbound, target_port, delay));
        }
    });
    Ok((port, accepting))
}

async fn forward(inbound: TcpStream, target_port: u16, delay: Duration) {
    let Ok(outbound) = TcpStream::connect(("127.0.0.1", target_port)).await else { return };
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let requests = async move {
        let mut buffer = vec![0u8; 64 << 10];
        // HTTP/1.1 requests on one connection follow each other, so a request's head starts a read.
        while let Ok(read) = in_read.read(&mut buffer).await {
            if read == 0 {
                break;
            }
            if buffer[..read].starts_with(b"POST /execute") {
                tokio::time::sleep(delay).await;
            }
            if out_write.write_all(&buffer[..read]).await.is_err() {
                break;
            }
        }
        let _ = out_write.shutdown().await;
    };
    let answers = async move {
        let _ = tokio::io::copy(&mut out_read, &mut in_write).await;
        let _ = in_write.shutdown().await;
    };
    tokio::join!(requests, answers);
}

//! How a channel connects: over TCP, never to itself.
//!
//! On one machine, a client retrying a service's port while nothing listens there
//! can connect to itself: the service's port lies in Linux's ephemeral range, the
//! kernel may hand that very port to the client's socket, and TCP's simultaneous
//! open then joins the socket to itself. The client's socket then holds the port,
//! and the service cannot bind it when it restarts (seen after a load run: the
//! queue could not come back). [`Connector`] drops such a socket at once and fails
//! the attempt as a refused connection, which is what it is: nothing listens.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tonic::transport::Uri;

/// Connects a channel over TCP (`TCP_NODELAY` set), refusing a socket connected
/// to itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Connector;

impl tower::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        Box::pin(async move {
            let host =
                uri.host().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{uri}: no host")))?;
            let host = host.trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(80);
            let stream = not_to_itself(TcpStream::connect((host.as_str(), port)).await?)?;
            stream.set_nodelay(true)?;
            Ok(TokioIo::new(stream))
        })
    }
}

/// The stream, unless it is connected to itself: then it is reset (a zero linger,
/// so that closing it leaves no TIME_WAIT behind to hold the port) and dropped.
fn not_to_itself(stream: TcpStream) -> io::Result<TcpStream> {
    let local = stream.local_addr()?;
    if local == stream.peer_addr()? {
        stream.set_zero_linger()?;
        return Err(io::Error::new(
            io::ErrorKind::ConnectionRefused,
            format!("{local}: the socket connected to itself (nothing listens there); dropped"),
        ));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpSocket};

    #[tokio::test]
    async fn a_socket_connected_to_itself_is_dropped_as_refused() {
        // A port nothing listens on, and a socket bound to it that connects to
        // it: TCP's simultaneous open joins it to itself.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(address).unwrap();
        let stream = socket.connect(address).await.expect("a self-connection");
        assert_eq!(stream.local_addr().unwrap(), stream.peer_addr().unwrap(), "the socket is its own peer");
        let refused = not_to_itself(stream).expect_err("dropped");
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        // Reset and dropped, it no longer holds the port: a service can bind it.
        TcpListener::bind(address).await.expect("the port is free again");
    }

    #[tokio::test]
    async fn a_connection_to_a_listener_is_kept() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}", listener.local_addr().unwrap()).parse().unwrap();
        let stream = tower::Service::call(&mut Connector, uri).await.expect("connected");
        assert!(stream.inner().nodelay().unwrap());
    }
}

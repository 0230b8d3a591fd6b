//! The byte stream a database client talks over: TCP or a Unix socket,
//! buffered both ways.

use tokio::io::{AsyncRead, AsyncWrite, BufStream};

use super::Target;

/// Anything a protocol can be spoken over.
pub(super) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Duplex for T {}

/// A connected, buffered stream.
pub(super) type Stream = BufStream<Box<dyn Duplex>>;

/// Connects to `target` (TCP or a Unix socket).
pub(super) async fn connect(target: &Target) -> Result<Stream, String> {
    let inner: Box<dyn Duplex> = match target {
        Target::Tcp(addr) => {
            let s = tokio::net::TcpStream::connect(addr.as_str())
                .await
                .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
            // Requests are small and answered at once: do not hold them back.
            let _ = s.set_nodelay(true);
            Box::new(s)
        }
        Target::Unix(path) => Box::new(
            tokio::net::UnixStream::connect(path)
                .await
                .map_err(|e| format!("cannot connect to {}: {e}", path.display()))?,
        ),
        Target::Url(u) => return Err(format!("{u} is a URL, not a socket")),
    };
    Ok(BufStream::new(inner))
}

/// An I/O error while talking to the server, said plainly.
pub(super) fn io(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => format!("connection error: {e}"),
    }
}

/// `a XOR b`, byte by byte (the password scrambles).
pub(super) fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
    a.iter().zip(b).map(|(x, y)| x ^ y).collect()
}

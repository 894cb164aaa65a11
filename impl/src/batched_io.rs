//! A connection whose writes are gathered into one system call per pass of
//! the scheduler.
//!
//! **Why.** HTTP/2 (the `h2` crate under tonic) writes and flushes whatever
//! frames are queued each time its connection task runs. The frames of one
//! RPC are queued by another task — the response's HEADERS, its DATA and its
//! trailers; a request's HEADERS, DATA and end of stream — and on a
//! multi-threaded runtime the connection task runs beside that task, so
//! each frame tends to leave in a `writev` of its own. `strace` of a leader
//! at 16 clients (issue 17) showed three writes per answered put (12, 277
//! and 10 bytes) and three per AppendEntries (43 bytes, the entries, 9
//! bytes): some 2.8 `writev` calls per put, each of them, on loopback, also
//! paying the receiver's TCP processing and wake-up.
//!
//! **How.** [`BatchedWrites`] accepts every write into its buffer at once
//! and defers the first flush that finds bytes waiting: it wakes its own
//! task and answers `Pending`, so the tasks already runnable (the other
//! frames' producers, the event loop answering a batch of puts) queue
//! theirs before the connection task runs again and flushes them all in
//! one write. A flush is deferred once, never twice in a row, so bytes
//! wait at most one pass of the scheduler; the buffer is written through
//! once it holds [`HIGH_WATER`] bytes, so memory stays bounded when the
//! peer reads slowly (the socket's backpressure then reaches HTTP/2 as
//! before).
//!
//! Reads pass straight through.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes buffered before a write goes through to the socket without
/// waiting for a flush.
pub const HIGH_WATER: usize = 256 * 1024;

/// `inner` with its writes gathered (see the module's doc).
#[derive(Debug)]
pub struct BatchedWrites<T> {
    inner: T,
    /// Bytes accepted and not yet written: `buffer[written..]`.
    buffer: Vec<u8>,
    written: usize,
    /// The last flush that found bytes waiting was deferred: the next one
    /// writes them.
    deferred: bool,
}

impl<T> BatchedWrites<T> {
    pub fn new(inner: T) -> Self {
        BatchedWrites {
            inner,
            buffer: Vec::new(),
            written: 0,
            deferred: false,
        }
    }

    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// Bytes accepted and not yet handed to `inner`.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.written
    }
}

impl<T: AsyncWrite + Unpin> BatchedWrites<T> {
    /// Writes out everything buffered.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buffer.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buffer[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        assert_eq!(self.written, self.buffer.len());
        self.buffer.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Room for more: below the high-water mark, or written out.
    fn poll_room(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.buffered() >= HIGH_WATER {
            ready!(self.poll_drain(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for BatchedWrites<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for BatchedWrites<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        this.buffer.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_room(cx))?;
        let mut accepted = 0;
        for slice in slices {
            this.buffer.extend_from_slice(slice);
            accepted += slice.len();
        }
        Poll::Ready(Ok(accepted))
    }

    fn is_write_vectored(&self) -> bool {
        // Slices are copied into the buffer: as cheap as one slice.
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buffered() > 0 {
            if !this.deferred {
                // Let the tasks that are ready queue their frames first.
                this.deferred = true;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            ready!(this.poll_drain(cx))?;
        }
        this.deferred = false;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The server sees the connection's peer address as before.
impl<T: tonic::transport::server::Connected> tonic::transport::server::Connected
    for BatchedWrites<T>
{
    type ConnectInfo = T::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// A connector for [`tonic::transport::Endpoint::connect_with_connector_lazy`]:
/// a TCP connection (no Nagle: replies are small and wait on nothing) with
/// its writes batched. TLS, when the endpoint has it, wraps this.
#[derive(Clone, Copy, Debug, Default)]
pub struct Connector;

impl tonic::codegen::Service<tonic::codegen::http::Uri> for Connector {
    type Response = hyper_util::rt::TokioIo<BatchedWrites<tokio::net::TcpStream>>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: tonic::codegen::http::Uri) -> Self::Future {
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidInput, format!("no host in {uri}"))
                })?
                // An IPv6 literal comes bracketed.
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            let stream = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            stream.set_nodelay(true)?;
            Ok(hyper_util::rt::TokioIo::new(BatchedWrites::new(stream)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A sink that counts its write calls.
    #[derive(Default)]
    struct Counting {
        bytes: Vec<u8>,
        writes: usize,
    }

    impl AsyncWrite for Counting {
        fn poll_write(
            self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            let this = self.get_mut();
            this.writes += 1;
            this.bytes.extend_from_slice(data);
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn writes_between_flushes_leave_in_one_write() {
        let mut io = BatchedWrites::new(Counting::default());
        io.write_all(b"headers").await.unwrap();
        io.write_all(b"data").await.unwrap();
        assert_eq!(io.get_ref().writes, 0, "nothing leaves before a flush");
        // The first flush yields once, then writes both.
        io.flush().await.unwrap();
        assert_eq!(io.get_ref().writes, 1);
        assert_eq!(io.get_ref().bytes, b"headersdata");
        assert_eq!(io.buffered(), 0);
        // A flush with nothing waiting is not deferred.
        io.flush().await.unwrap();
        assert_eq!(io.get_ref().writes, 1);
    }

    #[test]
    fn the_first_flush_with_bytes_waiting_is_deferred_once() {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut io = BatchedWrites::new(Counting::default());
        let mut pinned = Pin::new(&mut io);
        assert!(pinned.as_mut().poll_write(&mut cx, b"a").is_ready());
        assert!(pinned.as_mut().poll_flush(&mut cx).is_pending());
        assert!(pinned.as_mut().poll_write(&mut cx, b"b").is_ready());
        assert!(matches!(
            pinned.as_mut().poll_flush(&mut cx),
            Poll::Ready(Ok(()))
        ));
        assert_eq!(io.get_ref().writes, 1);
        assert_eq!(io.get_ref().bytes, b"ab");
    }

    #[tokio::test]
    async fn past_the_high_water_mark_writes_go_through() {
        let mut io = BatchedWrites::new(Counting::default());
        let chunk = vec![7u8; HIGH_WATER];
        io.write_all(&chunk).await.unwrap();
        assert_eq!(io.get_ref().writes, 0);
        io.write_all(b"more").await.unwrap();
        assert_eq!(io.get_ref().writes, 1, "the full buffer went out first");
        assert_eq!(io.buffered(), 4);
        io.shutdown().await.unwrap();
        assert_eq!(io.get_ref().bytes.len(), HIGH_WATER + 4);
    }

    #[tokio::test]
    async fn bytes_arrive_whole_and_in_order_over_tcp() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut all = Vec::new();
            stream.read_to_end(&mut all).await.unwrap();
            all
        });
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        let mut io = BatchedWrites::new(stream);
        let mut sent = Vec::new();
        for i in 0..1000u32 {
            let piece = vec![(i % 251) as u8; (i as usize * 37) % 3000];
            io.write_all(&piece).await.unwrap();
            sent.extend_from_slice(&piece);
            if i % 7 == 0 {
                io.flush().await.unwrap();
            }
        }
        io.shutdown().await.unwrap();
        drop(io);
        assert_eq!(reader.await.unwrap(), sent);
    }
}

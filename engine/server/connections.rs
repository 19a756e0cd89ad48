//! The accept loop of `certmill serve`: HTTP/1.1 connections with timeouts and a cap.
//!
//! `axum::serve` sets no timer, so hyper's header read timeout never fires and a client that
//! sends one header byte a minute (slowloris), or opens sockets and sends nothing, holds them
//! for ever. This loop serves each connection with hyper's HTTP/1 builder and a tokio timer:
//!
//! - a client has [`ConnectionLimits::header`] to send complete request headers, counted from
//!   the connection's start or from the end of its previous answer, so the same limit closes
//!   idle keep-alive connections;
//! - a request body that goes [`ConnectionLimits::body`] without a byte fails
//!   ([`body_timeout`]); the request is answered 408 and the connection closed, and an
//!   upload's spool file is removed as its handler returns;
//! - at most [`ConnectionLimits::max_connections`] connections are open at once; past that
//!   the loop stops accepting and clients wait in the kernel's listen backlog, so a flood of
//!   idle sockets cannot exhaust the process's file descriptors.
//!
//! It does not limit request rates or body sizes (`limit_body` does), nor total request time:
//! a large upload that keeps sending is served however long it takes.

use super::{ApiError, Shared};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};

/// Connections open at once by default: each holds one file descriptor, and 512 leaves room
/// under the common soft limit of 1024 for the store, spooled uploads and batch ZIPs.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// How long `certmill serve` waits on a client, and how many clients it serves at once.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// Time to send complete request headers, from the connection's start or the end of the
    /// previous answer (`CERTMILL_HEADER_TIMEOUT_SECS`, default 10 s).
    pub header: Duration,
    /// Longest wait for the next bytes of a request body (`CERTMILL_BODY_TIMEOUT_SECS`,
    /// default 30 s).
    pub body: Duration,
    /// Most connections open at once (`CERTMILL_MAX_CONNECTIONS`, default
    /// [`DEFAULT_MAX_CONNECTIONS`]).
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header: Duration::from_secs(10),
            body: Duration::from_secs(30),
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets every open connection
/// finish its current request (idle ones close at once) before returning.
pub(super) async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    // Connections watch `closing` for the shutdown, and each holds an `open` sender: once the
    // last is dropped, `all_closed` yields None.
    let (closing, _) = watch::channel(());
    let (open, mut all_closed) = mpsc::channel::<()>(1);
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                // The semaphore is never closed.
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(&e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let mut closed = closing.subscribe();
        let open = open.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut request: Request<_>| {
                request.extensions_mut().insert(ConnectInfo(remote));
                // A Router is always ready: no poll_ready before the call.
                tower_service::Service::call(&mut app.clone(), request)
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            let mut shutting_down = false;
            loop {
                tokio::select! {
                    // Errors are the client's: a timeout, a reset, a malformed request.
                    _ = connection.as_mut() => break,
                    _ = closed.changed(), if !shutting_down => {
                        shutting_down = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
            drop(slot);
            drop(open);
        });
    }
    drop(listener);
    // Dropping the sender tells every connection; then wait until the last one is done.
    drop(closing);
    drop(open);
    let _ = all_closed.recv().await;
}

/// After a failed accept: a connection that died in the backlog is skipped; anything else (out
/// of file descriptors, most likely) is logged and the loop pauses before trying again.
async fn accept_failed(e: &std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionAborted | ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
    ) {
        return;
    }
    eprintln!("certmill serve: accept: {e}");
    tokio::time::sleep(Duration::from_millis(250)).await;
}

/// Fails a request body that goes [`ConnectionLimits::body`] without a byte, and answers such a
/// request 408 with `Connection: close`, whatever the handler made of the failed read.
pub(super) async fn body_timeout(
    State(state): State<Shared>,
    request: Request,
    next: Next,
) -> Response {
    let stalled = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(StallTimeout {
        inner: body,
        timeout: state.connections.body,
        sleep: None,
        stalled: stalled.clone(),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if !stalled.load(Ordering::Acquire) {
        return response;
    }
    let mut response = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body sent nothing for {} s",
            state.connections.body.as_secs()
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A body whose read fails once the client has sent nothing for `timeout`. The clock runs only
/// while a reader waits on the client, not while the handler works between two reads.
struct StallTimeout {
    inner: Body,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: Arc<AtomicBool>,
}

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {} s", .0.as_secs())]
struct BodyStalled(Duration);

impl http_body::Body for StallTimeout {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            this.sleep = None;
            return Poll::Ready(frame.map(|result| result.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            this.stalled.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(BodyStalled(timeout).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Bytes;
    use http_body_util::BodyExt as _;

    /// One chunk, then silence: a client that stops sending.
    struct OneThenSilence(Option<Bytes>);

    impl http_body::Body for OneThenSilence {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            match self.0.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Poll::Pending,
            }
        }
    }

    #[tokio::test]
    async fn a_body_that_stops_sending_fails_after_the_timeout() {
        let stalled = Arc::new(AtomicBool::new(false));
        let mut body = StallTimeout {
            inner: Body::new(OneThenSilence(Some(Bytes::from_static(b"first")))),
            timeout: Duration::from_millis(50),
            sleep: None,
            stalled: stalled.clone(),
        };
        let first = body.frame().await.expect("a frame").expect("data");
        assert_eq!(first.into_data().expect("data"), "first");
        assert!(!stalled.load(Ordering::Acquire));
        let error = body.frame().await.expect("an error").expect_err("stalled");
        assert!(error.to_string().contains("sent nothing"), "{error}");
        assert!(stalled.load(Ordering::Acquire));
    }
}

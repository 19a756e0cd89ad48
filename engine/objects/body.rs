//! The stream of bytes a range read gives: an `http_body::Body`, so that an axum handler can
//! answer with it (`axum::body::Body::new(body)`), and that a plain thread can drain with
//! [`super::BlockingObjects::read_range_to`].

use super::ObjectError;
use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

/// Bytes read from a local file at a time.
const FILE_CHUNK: u64 = 64 * 1024;

/// A byte range of an object, as a stream of chunks. It yields exactly the length asked for,
/// or ends with an [`ObjectError::Truncated`] error if the backend gave fewer or more bytes.
pub struct ObjectBody {
    source: Source,
    key: String,
    expected: u64,
    remaining: u64,
}

enum Source {
    /// A local file, positioned at the range's start.
    File(tokio::fs::File),
    /// An HTTP response's body.
    Http(hyper::body::Incoming),
    /// Nothing to read (an empty range).
    Empty,
}

impl std::fmt::Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("key", &self.key)
            .field("expected", &self.expected)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl ObjectBody {
    pub(super) fn empty(key: &str) -> ObjectBody {
        ObjectBody {
            source: Source::Empty,
            key: key.to_owned(),
            expected: 0,
            remaining: 0,
        }
    }

    /// `len` bytes of `file` from where it is positioned.
    pub(super) fn file(key: &str, file: tokio::fs::File, len: u64) -> ObjectBody {
        ObjectBody {
            source: Source::File(file),
            key: key.to_owned(),
            expected: len,
            remaining: len,
        }
    }

    pub(super) fn http(key: &str, body: hyper::body::Incoming, len: u64) -> ObjectBody {
        ObjectBody {
            source: Source::Http(body),
            key: key.to_owned(),
            expected: len,
            remaining: len,
        }
    }

    /// The number of bytes the stream yields in all.
    pub fn len(&self) -> u64 {
        self.expected
    }

    /// Whether the stream yields no byte at all.
    pub fn is_empty(&self) -> bool {
        self.expected == 0
    }

    fn truncated(&self, longer: bool) -> ObjectError {
        ObjectError::Truncated {
            key: self.key.clone(),
            expected: self.expected,
            received: self.expected - self.remaining,
            longer,
        }
    }
}

impl http_body::Body for ObjectBody {
    type Data = Bytes;
    type Error = ObjectError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ObjectError>>> {
        let this = self.get_mut();
        match &mut this.source {
            Source::Empty => Poll::Ready(None),
            Source::File(file) => {
                if this.remaining == 0 {
                    return Poll::Ready(None);
                }
                // At most FILE_CHUNK, which fits a usize.
                let want = usize::try_from(this.remaining.min(FILE_CHUNK)).unwrap_or(64 * 1024);
                let mut buffer = BytesMut::with_capacity(want);
                let read = ready!(tokio_util::io::poll_read_buf(
                    Pin::new(file),
                    cx,
                    &mut buffer
                ));
                match read {
                    Ok(0) => Poll::Ready(Some(Err(this.truncated(false)))),
                    Ok(_) => {
                        buffer.truncate(want);
                        this.remaining -= buffer.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(buffer.freeze()))))
                    }
                    Err(source) => Poll::Ready(Some(Err(ObjectError::Io {
                        key: this.key.clone(),
                        source,
                    }))),
                }
            }
            Source::Http(body) => match ready!(Pin::new(body).poll_frame(cx)) {
                None if this.remaining == 0 => Poll::Ready(None),
                None => Poll::Ready(Some(Err(this.truncated(false)))),
                Some(Err(source)) => Poll::Ready(Some(Err(ObjectError::Http {
                    key: this.key.clone(),
                    source: Box::new(source),
                }))),
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.len() as u64 > this.remaining => {
                        Poll::Ready(Some(Err(this.truncated(true))))
                    }
                    Ok(data) => {
                        this.remaining -= data.len() as u64;
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    // Trailers: nothing the caller needs; poll on.
                    Err(_) => {
                        cx.waker().wake_by_ref();
                        Poll::Pending
                    }
                },
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0 && !matches!(self.source, Source::Http(_))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

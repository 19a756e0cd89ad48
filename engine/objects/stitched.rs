//! Serving a byte range of a stitched archive ([`Stitched`]) from the store: the head's bytes,
//! then the parts' and the tail's bytes, read one segment after the other.

use super::zipparts::{Segment, Stitched};
use super::{BlockingObjects, ObjectError, ObjectStore};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use std::io::Write;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

/// Chunks a download's reading task may run ahead of the client.
const READ_AHEAD: usize = 4;

/// A byte range of a stitched archive, as a stream (an `http_body::Body`, so an axum handler
/// answers with `axum::body::Body::new(body)`). A task on the store's runtime reads the segments
/// in order, one request at a time, and stops when the body is dropped.
pub struct StitchedBody {
    chunks: tokio::sync::mpsc::Receiver<Result<Bytes, ObjectError>>,
    expected: u64,
    remaining: u64,
}

impl std::fmt::Debug for StitchedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StitchedBody")
            .field("expected", &self.expected)
            .field("remaining", &self.remaining)
            .finish_non_exhaustive()
    }
}

impl ObjectStore {
    /// Bytes `range` of the stitched archive (`start..end`, end excluded), read from this store.
    /// A range outside the archive is refused here, before anything is read.
    pub fn stitched_range(
        &self,
        stitched: Arc<Stitched>,
        range: Range<u64>,
    ) -> Result<StitchedBody, ObjectError> {
        stitched
            .segments(range.clone())
            .map_err(ObjectError::Archive)?;
        let (sender, chunks) = tokio::sync::mpsc::channel(READ_AHEAD);
        let store = self.clone();
        let expected = range.end - range.start;
        self.runtime.spawn(async move {
            // Checked above; the layout is immutable.
            let segments = match stitched.segments(range) {
                Ok(segments) => segments,
                Err(error) => {
                    let _ = sender.send(Err(ObjectError::Archive(error))).await;
                    return;
                }
            };
            for segment in segments {
                let mut body = match segment {
                    Segment::Bytes(bytes) => {
                        if sender.send(Ok(bytes)).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Segment::Object { key, offset, len } => {
                        match store.get_range(key, offset..offset + len).await {
                            Ok(body) => body,
                            Err(error) => {
                                let _ = sender.send(Err(error)).await;
                                return;
                            }
                        }
                    }
                };
                while let Some(frame) = body.frame().await {
                    let chunk = match frame {
                        Ok(frame) => match frame.into_data() {
                            Ok(data) => Ok(data),
                            Err(_) => continue,
                        },
                        Err(error) => Err(error),
                    };
                    let failed = chunk.is_err();
                    // The client went away: stop reading.
                    if sender.send(chunk).await.is_err() || failed {
                        return;
                    }
                }
            }
        });
        Ok(StitchedBody {
            chunks,
            expected,
            remaining: expected,
        })
    }
}

impl BlockingObjects<'_> {
    /// Copies bytes `range` of the stitched archive into `out`, segment by segment; returns the
    /// number of bytes copied.
    pub fn write_stitched_range(
        &self,
        stitched: &Stitched,
        range: Range<u64>,
        out: &mut impl Write,
    ) -> Result<u64, ObjectError> {
        let mut copied = 0;
        for segment in stitched.segments(range).map_err(ObjectError::Archive)? {
            match segment {
                Segment::Bytes(bytes) => {
                    out.write_all(&bytes).map_err(|source| ObjectError::Io {
                        key: "stitched archive head".to_owned(),
                        source,
                    })?;
                    copied += bytes.len() as u64;
                }
                Segment::Object { key, offset, len } => {
                    copied += self.read_range_to(key, offset..offset + len, out)?;
                }
            }
        }
        Ok(copied)
    }
}

impl http_body::Body for StitchedBody {
    type Data = Bytes;
    type Error = ObjectError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ObjectError>>> {
        let this = self.get_mut();
        match ready!(this.chunks.poll_recv(cx)) {
            Some(Ok(bytes)) => {
                this.remaining = this.remaining.saturating_sub(bytes.len() as u64);
                Poll::Ready(Some(Ok(Frame::data(bytes))))
            }
            Some(Err(error)) => Poll::Ready(Some(Err(error))),
            None if this.remaining == 0 => Poll::Ready(None),
            // Each segment's body checks its own length, so this is a task that stopped early.
            None => Poll::Ready(Some(Err(ObjectError::Truncated {
                key: "stitched archive".to_owned(),
                expected: this.expected,
                received: this.expected - this.remaining,
                longer: false,
            }))),
        }
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

//! The `s3://` backend: path-style requests to an S3-compatible endpoint, presigned by
//! `rusty-s3` (AWS Signature V4 in the query string, payload unsigned, so a file is streamed
//! as it is read) and sent by hyper's pooled HTTP/1 client, over rustls for `https` endpoints.

use super::{ObjectBody, ObjectError, S3Credentials};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rusty_s3::actions::{ListObjectsV2, S3Action};
use rusty_s3::{Bucket, Credentials, UrlStyle};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

/// How long a presigned request stays valid: it is signed just before it is sent, and S3 checks
/// the signature when the request starts, so a long upload is not cut by it.
const PRESIGN_FOR: Duration = Duration::from_secs(15 * 60);
/// Connection timeout to the endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest single PUT S3 accepts (5 GiB); larger objects need a multipart upload.
pub(super) const MAX_SINGLE_PUT: u64 = 5 << 30;
/// Largest error or listing body read into memory.
const MAX_RESPONSE_BODY: usize = 16 << 20;

type RequestBody = UnsyncBoxBody<Bytes, ObjectError>;

/// The HTTP client, plain or with TLS, chosen by the endpoint's scheme.
#[derive(Clone)]
enum HttpClient {
    Plain(Client<HttpConnector, RequestBody>),
    Tls(Client<HttpsConnector<HttpConnector>, RequestBody>),
}

/// One bucket (and key prefix) of an S3-compatible service.
pub(super) struct S3Backend {
    bucket: Bucket,
    /// Prepended to every key: empty, or ending with `/`.
    prefix: String,
    credentials: Credentials,
    client: HttpClient,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("endpoint", &self.bucket.base_url().as_str())
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// A backend for `bucket` at `endpoint` (http or https, no user info: checked by the caller).
    pub(super) fn new(
        endpoint: url::Url,
        bucket: &str,
        region: &str,
        prefix: &str,
        credentials: &S3Credentials,
    ) -> Result<S3Backend, ObjectError> {
        let https = endpoint.scheme() == "https";
        let bucket = Bucket::new(
            endpoint,
            UrlStyle::Path,
            bucket.to_owned(),
            region.to_owned(),
        )
        .map_err(|e| ObjectError::BadUrl {
            reason: format!("bucket {bucket:?}: {e}"),
        })?;
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        let builder = Client::builder(TokioExecutor::new());
        let client = if https {
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_native_roots()
                .map_err(|source| ObjectError::TlsRoots { source })?
                .https_only()
                .enable_http1()
                .wrap_connector(http);
            HttpClient::Tls(builder.build(connector))
        } else {
            HttpClient::Plain(builder.build(http))
        };
        let credentials = match &credentials.session_token {
            Some(token) => Credentials::new_with_token(
                &credentials.access_key_id,
                credentials.secret_access_key(),
                token.as_str(),
            ),
            None => Credentials::new(&credentials.access_key_id, credentials.secret_access_key()),
        };
        Ok(S3Backend {
            bucket,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            },
            credentials,
            client,
        })
    }

    /// Where the objects are, without credentials: `s3://bucket/prefix at endpoint`.
    pub(super) fn describe(&self) -> String {
        format!(
            "s3://{}/{} at {}",
            self.bucket.name(),
            self.prefix.trim_end_matches('/'),
            self.bucket.base_url().origin().ascii_serialization()
        )
    }

    fn object(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn send(
        &self,
        key: &str,
        method: Method,
        url: url::Url,
        headers: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Response<hyper::body::Incoming>, ObjectError> {
        let mut request = Request::builder().method(method).uri(url.as_str());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let request = request.body(body).map_err(|e| ObjectError::Http {
            key: key.to_owned(),
            source: Box::new(e),
        })?;
        let response = match &self.client {
            HttpClient::Plain(client) => client.request(request).await,
            HttpClient::Tls(client) => client.request(request).await,
        };
        response.map_err(|e| ObjectError::Http {
            key: key.to_owned(),
            source: Box::new(e),
        })
    }

    /// Turns a response that is not `expected` into an error naming the key, the status and
    /// the S3 error code and message of its XML body.
    async fn check(
        &self,
        key: &str,
        operation: &'static str,
        response: Response<hyper::body::Incoming>,
        expected: &[StatusCode],
    ) -> Result<Response<hyper::body::Incoming>, ObjectError> {
        let status = response.status();
        if expected.contains(&status) {
            return Ok(response);
        }
        let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
            .collect()
            .await
            .map(|collected| collected.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let code = xml_element(&text, "Code");
        if status == StatusCode::NOT_FOUND && matches!(code.as_deref(), None | Some("NoSuchKey")) {
            return Err(ObjectError::NotFound {
                key: key.to_owned(),
            });
        }
        Err(ObjectError::Status {
            key: key.to_owned(),
            operation,
            status: status.as_u16(),
            code,
            message: xml_element(&text, "Message"),
        })
    }

    pub(super) async fn put_file(&self, key: &str, path: &Path) -> Result<u64, ObjectError> {
        let source = |source| ObjectError::Source {
            key: key.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(source)?;
        let len = file.metadata().await.map_err(source)?.len();
        if len > MAX_SINGLE_PUT {
            return Err(ObjectError::TooLarge {
                key: key.to_owned(),
                size: len,
            });
        }
        let body = ObjectBody::file(key, file, len);
        self.put(key, len, UnsyncBoxBody::new(body)).await?;
        Ok(len)
    }

    pub(super) async fn put_bytes(&self, key: &str, data: Bytes) -> Result<(), ObjectError> {
        let len = data.len() as u64;
        if len > MAX_SINGLE_PUT {
            return Err(ObjectError::TooLarge {
                key: key.to_owned(),
                size: len,
            });
        }
        let body = Full::new(data).map_err(|never| match never {});
        self.put(key, len, UnsyncBoxBody::new(body)).await
    }

    async fn put(&self, key: &str, len: u64, body: RequestBody) -> Result<(), ObjectError> {
        let object = self.object(key);
        let url = self
            .bucket
            .put_object(Some(&self.credentials), &object)
            .sign(PRESIGN_FOR);
        let response = self
            .send(
                key,
                Method::PUT,
                url,
                &[("content-length", len.to_string())],
                body,
            )
            .await?;
        self.check(key, "PUT", response, &[StatusCode::OK]).await?;
        Ok(())
    }

    pub(super) async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
    ) -> Result<ObjectBody, ObjectError> {
        let object = self.object(key);
        let url = self
            .bucket
            .get_object(Some(&self.credentials), &object)
            .sign(PRESIGN_FOR);
        let len = range.end - range.start;
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let response = self
            .send(key, Method::GET, url, &[("range", header)], empty())
            .await?;
        if response.status() == StatusCode::RANGE_NOT_SATISFIABLE {
            return Err(ObjectError::Range {
                key: key.to_owned(),
                start: range.start,
                end: range.end,
                size: None,
            });
        }
        let response = self
            .check(
                key,
                "GET",
                response,
                &[StatusCode::PARTIAL_CONTENT, StatusCode::OK],
            )
            .await?;
        // A 200 is the whole object: right only when the range is all of it.
        let whole = response.status() == StatusCode::OK;
        let content_length = content_length(&response);
        if (whole && range.start != 0) || content_length.is_some_and(|n| n != len) {
            return Err(ObjectError::Range {
                key: key.to_owned(),
                start: range.start,
                end: range.end,
                size: if whole { content_length } else { None },
            });
        }
        Ok(ObjectBody::http(key, response.into_body(), len))
    }

    pub(super) async fn size(&self, key: &str) -> Result<u64, ObjectError> {
        let object = self.object(key);
        let url = self
            .bucket
            .head_object(Some(&self.credentials), &object)
            .sign(PRESIGN_FOR);
        let response = self.send(key, Method::HEAD, url, &[], empty()).await?;
        let response = self.check(key, "HEAD", response, &[StatusCode::OK]).await?;
        content_length(&response).ok_or_else(|| ObjectError::Status {
            key: key.to_owned(),
            operation: "HEAD",
            status: response.status().as_u16(),
            code: None,
            message: Some("no Content-Length in the response".to_owned()),
        })
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), ObjectError> {
        let object = self.object(key);
        let url = self
            .bucket
            .delete_object(Some(&self.credentials), &object)
            .sign(PRESIGN_FOR);
        let response = self.send(key, Method::DELETE, url, &[], empty()).await?;
        self.check(
            key,
            "DELETE",
            response,
            &[StatusCode::NO_CONTENT, StatusCode::OK],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<Vec<String>, ObjectError> {
        let full_prefix = self.object(prefix);
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut action = ListObjectsV2::new(&self.bucket, Some(&self.credentials));
            action.with_prefix(full_prefix.as_str());
            if let Some(token) = &token {
                action.with_continuation_token(token.as_str());
            }
            let url = action.sign(PRESIGN_FOR);
            let response = self.send(prefix, Method::GET, url, &[], empty()).await?;
            let response = self
                .check(prefix, "LIST", response, &[StatusCode::OK])
                .await?;
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BODY)
                .collect()
                .await
                .map_err(|source| ObjectError::Http {
                    key: prefix.to_owned(),
                    source,
                })?
                .to_bytes();
            let text = String::from_utf8_lossy(&body);
            let page =
                ListObjectsV2::parse_response(&text).map_err(|e| ObjectError::ListResponse {
                    prefix: prefix.to_owned(),
                    reason: e.to_string(),
                })?;
            for content in page.contents {
                if let Some(key) = content.key.strip_prefix(&self.prefix) {
                    keys.push(key.to_owned());
                }
            }
            match page.next_continuation_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        keys.sort();
        Ok(keys)
    }

    /// Creates the bucket (for tests against a fresh server).
    #[cfg(test)]
    pub(super) async fn create_bucket(&self) -> Result<(), ObjectError> {
        let url = self
            .bucket
            .create_bucket(&self.credentials)
            .sign(PRESIGN_FOR);
        let response = self
            .send(
                self.bucket.name(),
                Method::PUT,
                url,
                &[("content-length", "0".to_owned())],
                empty(),
            )
            .await?;
        self.check(
            self.bucket.name(),
            "CREATE BUCKET",
            response,
            &[StatusCode::OK],
        )
        .await?;
        Ok(())
    }
}

fn empty() -> RequestBody {
    UnsyncBoxBody::new(http_body_util::Empty::new().map_err(|never| match never {}))
}

fn content_length<B>(response: &Response<B>) -> Option<u64> {
    response
        .headers()
        .get(hyper::header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// The text of the first `<name>…</name>` element of an S3 XML error body, unescaped for the
/// five XML entities.
fn xml_element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::xml_element;

    #[test]
    fn error_code_and_message_come_out_of_the_xml() {
        let xml = "<?xml version=\"1.0\"?><Error><Code>NoSuchBucket</Code>\
                   <Message>The bucket &amp; its &lt;name&gt;</Message></Error>";
        assert_eq!(xml_element(xml, "Code").as_deref(), Some("NoSuchBucket"));
        assert_eq!(
            xml_element(xml, "Message").as_deref(),
            Some("The bucket & its <name>")
        );
        assert_eq!(xml_element(xml, "Resource"), None);
    }
}

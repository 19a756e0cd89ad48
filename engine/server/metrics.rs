//! `GET /metrics` (Prometheus text format 0.0.4) and `GET /healthz`.
//!
//! Request counts and latencies are kept per route template (`/api/v1/batches/{batchId}`, not
//! the concrete path, so ids do not multiply the series). Batches by status and issued devices
//! are read from the store at scrape time; the issuance rate is that of the batches this
//! process finished.

use super::{ApiError, Shared};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Upper bounds of the latency histogram buckets, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
struct Inner {
    /// (method, route, status) → count.
    requests: BTreeMap<(String, String, u16), u64>,
    /// (method, route) → histogram.
    latency: BTreeMap<(String, String), Latency>,
    /// Devices issued by batches this process finished, and the time they took.
    issued: u64,
    issuing_time: Duration,
}

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        *inner
            .requests
            .entry((method.to_owned(), route.to_owned(), status))
            .or_default() += 1;
        let latency = inner
            .latency
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        let seconds = elapsed.as_secs_f64();
        for (bucket, bound) in latency.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= bound {
                *bucket += 1;
            }
        }
        latency.count += 1;
        latency.sum += seconds;
    }

    /// Counts a finished batch's devices and issuing time.
    pub fn batch_finished(&self, devices: u64, elapsed: Duration) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.issued += devices;
            inner.issuing_time += elapsed;
        }
    }
}

/// Middleware: counts every request and its latency under its route template.
pub async fn track(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /healthz`: `ok` when the store opens and answers.
pub async fn healthz(State(state): State<Shared>) -> Result<&'static str, ApiError> {
    state.store(|store| Ok(store.format_version()?)).await?;
    Ok("ok\n")
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<Shared>) -> Result<Response, ApiError> {
    let batches = state.store(|store| Ok(store.batches()?)).await?;
    let mut out = String::new();
    let mut by_status: BTreeMap<&str, u64> = crate::store::BatchStatus::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    let mut issued_total = 0u64;
    for batch in &batches {
        *by_status.entry(batch.status.as_str()).or_default() += 1;
        issued_total += batch.issued;
    }
    let _ = writeln!(
        out,
        "# HELP certmill_batches Batches in the store by status."
    );
    let _ = writeln!(out, "# TYPE certmill_batches gauge");
    for (status, count) in &by_status {
        let _ = writeln!(
            out,
            "certmill_batches{{status=\"{}\"}} {count}",
            escape(status)
        );
    }
    let _ = writeln!(
        out,
        "# HELP certmill_devices_issued_total Certificates issued, all batches in the store."
    );
    let _ = writeln!(out, "# TYPE certmill_devices_issued_total counter");
    let _ = writeln!(out, "certmill_devices_issued_total {issued_total}");
    let Ok(inner) = state.metrics.inner.lock() else {
        return Err(ApiError::internal("metrics lock poisoned"));
    };
    let rate = if inner.issuing_time.is_zero() {
        0.0
    } else {
        inner.issued as f64 / inner.issuing_time.as_secs_f64()
    };
    let _ = writeln!(out, "# HELP certmill_issuance_rate_devices_per_second Devices per second of the batches this process finished (issuing time only).");
    let _ = writeln!(
        out,
        "# TYPE certmill_issuance_rate_devices_per_second gauge"
    );
    let _ = writeln!(out, "certmill_issuance_rate_devices_per_second {rate:.1}");
    let _ = writeln!(
        out,
        "# HELP certmill_http_requests_total HTTP requests by method, route and status."
    );
    let _ = writeln!(out, "# TYPE certmill_http_requests_total counter");
    for ((method, route, status), count) in &inner.requests {
        let _ = writeln!(
            out,
            "certmill_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
            escape(route)
        );
    }
    let _ = writeln!(
        out,
        "# HELP certmill_http_request_duration_seconds HTTP request latency by method and route."
    );
    let _ = writeln!(
        out,
        "# TYPE certmill_http_request_duration_seconds histogram"
    );
    for ((method, route), latency) in &inner.latency {
        let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
        for (bound, count) in BUCKETS.iter().zip(latency.buckets) {
            let _ = writeln!(
                out,
                "certmill_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "certmill_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            latency.count
        );
        let _ = writeln!(
            out,
            "certmill_http_request_duration_seconds_sum{{{labels}}} {}",
            latency.sum
        );
        let _ = writeln!(
            out,
            "certmill_http_request_duration_seconds_count{{{labels}}} {}",
            latency.count
        );
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_every_bucket_at_or_above_it() {
        let metrics = Metrics::default();
        metrics.record("GET", "/x", 200, Duration::from_millis(20));
        let inner = metrics.inner.lock().unwrap();
        let latency = &inner.latency[&("GET".to_owned(), "/x".to_owned())];
        assert_eq!(latency.buckets, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]);
        assert_eq!(inner.requests[&("GET".to_owned(), "/x".to_owned(), 200)], 1);
    }
}

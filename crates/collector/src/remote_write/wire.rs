//! Prometheus remote_write 1.0 on the wire: the `WriteRequest` protobuf
//! (prost derives of the spec's four messages), snappy's block format, the
//! spec's headers, and what each answer means (2xx sent; 5xx and 429 retry;
//! any other status drops the request, counted).

use std::sync::Arc;
use std::time::Duration;

use crate::journal::follow::Series;

/// `prometheus.WriteRequest` (fields 1 only: no metadata).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series and their samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Sorted by name, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// In time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prometheus.Sample`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// The labels a series goes out with: its own, `__name__`, and the
/// destination's extra labels where the series has none of that name;
/// sorted by name as the spec requires.
pub fn labels_of(series: &Series, extra: &[(String, String)]) -> Vec<Label> {
    let mut out: Vec<Label> = Vec::with_capacity(series.labels.len() + 1 + extra.len());
    out.push(Label {
        name: "__name__".into(),
        value: series.metric.clone(),
    });
    for (k, v) in &series.labels {
        out.push(Label {
            name: k.clone(),
            value: v.clone(),
        });
    }
    for (k, v) in extra {
        if !series.labels.iter().any(|(n, _)| n == k) {
            out.push(Label {
                name: k.clone(),
                value: v.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One request's body: samples grouped per series, each series' samples
/// in the order given (time order), the labels from `labels`.
pub fn request(
    samples: &[(Arc<Series>, i64, f64)],
    labels: &mut dyn FnMut(&Series) -> Vec<Label>,
) -> WriteRequest {
    let mut at: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut timeseries: Vec<TimeSeries> = Vec::new();
    for (s, ts, v) in samples {
        let i = *at.entry(s.id).or_insert_with(|| {
            timeseries.push(TimeSeries {
                labels: labels(s),
                samples: Vec::new(),
            });
            timeseries.len() - 1
        });
        timeseries[i].samples.push(Sample {
            value: *v,
            timestamp: *ts,
        });
    }
    WriteRequest { timeseries }
}

/// The request's bytes on the wire: protobuf, then snappy's block format.
pub fn encode(req: &WriteRequest) -> Result<Vec<u8>, String> {
    let raw = prost::Message::encode_to_vec(req);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        .map_err(|e| format!("snappy: {e}"))
}

/// Reads a request's bytes back (snappy block, then protobuf): for tests,
/// the benchmark and anyone checking what a receiver got.
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("snappy: {e}"))?;
    prost::Message::decode(raw.as_slice()).map_err(|e| format!("protobuf: {e}"))
}

/// How the receiver wants to be told who we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// None.
    None,
    /// `Authorization: Bearer`.
    Bearer(String),
    /// `Authorization: Basic`.
    Basic {
        /// User.
        username: String,
        /// Password.
        password: String,
    },
}

/// What one attempt came to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted.
    Sent,
    /// Try again after at least this long (5xx, 429, no answer).
    Retry(Option<Duration>, String),
    /// Refused for good (any other 4xx): the samples are dropped.
    Drop(String),
}

/// Posts one encoded request.
pub async fn post(http: &reqwest::Client, url: &str, auth: &Auth, body: Vec<u8>) -> Outcome {
    let mut req = http
        .post(url)
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body);
    req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::Basic { username, password } => req.basic_auth(username, Some(password)),
    };
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Retry(None, format!("{url}: {e}")),
    };
    let status = resp.status();
    if status.is_success() {
        return Outcome::Sent;
    }
    let after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let text = resp.text().await.unwrap_or_default();
    let said: String = text.trim().chars().take(300).collect();
    let why = format!("{url}: HTTP {status}: {said}");
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        Outcome::Retry(after, why)
    } else {
        Outcome::Drop(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(id: u32, metric: &str, labels: &[(&str, &str)]) -> Arc<Series> {
        Arc::new(Series {
            id,
            metric: metric.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    #[test]
    fn labels_sorted_extra_labels_do_not_override() {
        let s = series(1, "host_load1", &[("Zone", "a"), ("host", "web1")]);
        let extra = vec![("host".into(), "x".into()), ("dc".into(), "north".into())];
        let names: Vec<(String, String)> = labels_of(&s, &extra)
            .into_iter()
            .map(|l| (l.name, l.value))
            .collect();
        assert_eq!(
            names,
            [
                ("Zone", "a"),
                ("__name__", "host_load1"),
                ("dc", "north"),
                ("host", "web1")
            ]
            .map(|(a, b)| (a.to_string(), b.to_string()))
        );
    }

    #[test]
    fn a_request_groups_per_series_in_order_and_round_trips() {
        let a = series(1, "m", &[("host", "a")]);
        let b = series(2, "m", &[("host", "b")]);
        let samples = vec![
            (a.clone(), 1_000, 1.0),
            (b.clone(), 1_000, f64::NAN),
            (a.clone(), 2_000, 2.0),
        ];
        let req = request(&samples, &mut |s| labels_of(s, &[]));
        assert_eq!(req.timeseries.len(), 2);
        assert_eq!(
            req.timeseries[0].samples,
            vec![
                Sample {
                    value: 1.0,
                    timestamp: 1_000
                },
                Sample {
                    value: 2.0,
                    timestamp: 2_000
                }
            ]
        );
        let back = decode(&encode(&req).expect("encodes")).expect("decodes");
        assert_eq!(back.timeseries[1].labels[1].value, "b");
        assert!(back.timeseries[1].samples[0].value.is_nan());
    }
}

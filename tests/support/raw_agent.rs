//! An agent over the raw protocol: it sends exactly the messages a test or
//! a benchmark gives it and shows every message the collector answers
//! with, so the protocol can be driven where the real agent would not go
//! (duplicates, spoofed hosts, malformed input, load).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use watchpost_proto::v1::{
    AgentMessage, CollectorMessage, Hello, PROTOCOL_VERSION, agent_message, collector_message,
    ingest_client::IngestClient,
};

/// An agent message with `body`.
pub fn agent_message(body: agent_message::Body) -> AgentMessage {
    AgentMessage { body: Some(body) }
}

/// A hello from agent `id` (hostname `id`, no credential).
pub fn hello(id: &str, version: &str, heartbeat_ms: u32) -> AgentMessage {
    agent_message(agent_message::Body::Hello(Hello {
        agent_id: id.into(),
        hostname: id.into(),
        version: version.into(),
        labels: Default::default(),
        auth_token: String::new(),
        protocol_version: PROTOCOL_VERSION,
        heartbeat_interval_ms: heartbeat_ms,
        enroll_token: String::new(),
        sent_at_ms: 0,
    }))
}

/// One stream to a collector.
pub struct RawAgent {
    /// What goes to the collector.
    pub tx: mpsc::Sender<AgentMessage>,
    /// What comes back.
    pub rx: tonic::Streaming<CollectorMessage>,
}

impl RawAgent {
    /// Opens a stream to `url` (`http://` or `https://`, trusting `ca_pem`)
    /// whose first message is `first`.
    pub async fn open(url: &str, ca_pem: Option<&[u8]>, first: AgentMessage) -> Result<RawAgent, String> {
        let mut endpoint =
            tonic::transport::Endpoint::from_shared(url.to_string()).map_err(|e| e.to_string())?;
        if let Some(ca) = ca_pem {
            endpoint = endpoint
                .tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(ca)),
                )
                .map_err(|e| e.to_string())?;
        }
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("connect {url}: {e}"))?;
        let mut client = IngestClient::new(channel);
        let (tx, rx) = mpsc::channel(64);
        tx.send(first).await.map_err(|e| e.to_string())?;
        let rx = client
            .stream(ReceiverStream::new(rx))
            .await
            .map_err(|e| format!("stream: {e}"))?
            .into_inner();
        Ok(RawAgent { tx, rx })
    }

    /// The next message that is not a heartbeat; `None` when the stream
    /// ends. Panics if nothing comes within 10 s.
    pub async fn next(&mut self) -> Option<collector_message::Body> {
        loop {
            let m = tokio::time::timeout(Duration::from_secs(10), self.rx.message())
                .await
                .expect("collector answers");
            match m.ok().flatten()?.body {
                Some(collector_message::Body::Heartbeat(_)) => continue,
                other => return other,
            }
        }
    }

    /// Sends `body`; panics if the stream is closed.
    pub async fn send(&self, body: agent_message::Body) {
        self.tx.send(agent_message(body)).await.expect("send");
    }
}

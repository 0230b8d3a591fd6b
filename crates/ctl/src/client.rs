//! The API client: the collector's address, TLS roots, credentials, and
//! JSON requests whose errors name the API's error code and message.

use anyhow::{Context, bail};
use serde::de::DeserializeOwned;
use watchpost_model::api::ErrorBody;

use crate::args::Args;

enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

pub struct Client {
    base: String,
    http: reqwest::Client,
    auth: Auth,
}

impl Client {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base.trim_end_matches('/'), path)
    }

    fn signed(&self, r: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => r,
            Auth::Bearer(t) => r.bearer_auth(t),
            Auth::Basic(u, p) => r.basic_auth(u, Some(p)),
        }
    }

    pub async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
    ) -> anyhow::Result<T> {
        let url = self.url(path);
        self.answer(self.http.get(&url).query(query), &url).await
    }

    /// A GET whose answer is a file: its bytes, or the API's error.
    pub async fn get_bytes(&self, path: &str, query: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
        let url = self.url(path);
        let resp = self
            .signed(self.http.get(&url).query(query))
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the collector at {} (is it running? see --server)",
                    self.base
                )
            })?;
        checked(resp).await
    }

    /// A POST whose answer has no body (204).
    pub async fn post_empty<B: serde::Serialize>(&self, path: &str, body: &B) -> anyhow::Result<()> {
        let url = self.url(path);
        let _: serde_json::Value = self.answer(self.http.post(&url).json(body), &url).await?;
        Ok(())
    }

    pub async fn post<T: DeserializeOwned, B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<T> {
        let url = self.url(path);
        self.answer(self.http.post(&url).json(body), &url).await
    }

    /// A POST of a text body (a CSV), with query parameters.
    pub async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(String, String)],
        body: String,
        content_type: &str,
    ) -> anyhow::Result<T> {
        let url = self.url(path);
        let request = self
            .http
            .post(&url)
            .query(query)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        self.answer(request, &url).await
    }

    /// Sends a request and reads its JSON answer, or the API's error.
    async fn answer<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> anyhow::Result<T> {
        let resp = self.signed(request).send().await.with_context(|| {
            format!(
                "cannot reach the collector at {} (is it running? see --server)",
                self.base
            )
        })?;
        let body = checked(resp).await?;
        let body: &[u8] = if body.is_empty() { b"null" } else { &body };
        serde_json::from_slice(body).with_context(|| format!("unexpected answer from {url}"))
    }
}

/// The answer's body, or the API's error (its code and message) when the
/// status is not a success.
async fn checked(resp: reqwest::Response) -> anyhow::Result<Vec<u8>> {
    let status = resp.status();
    let body = resp.bytes().await.context("reading the collector's answer")?;
    if !status.is_success() {
        match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(e) => bail!("{} ({}): {}", status, e.error.code, e.error.message),
            Err(_) => bail!("{}: {}", status, String::from_utf8_lossy(&body)),
        }
    }
    Ok(body.to_vec())
}

impl Client {
    /// The client `args` ask for: `--server`, `--ca-file`, and a token or a login.
    pub fn from_args(args: &Args) -> anyhow::Result<Client> {
        let mut builder = reqwest::Client::builder();
        if let Some(path) = &args.ca_file {
            let pem =
                std::fs::read(path).with_context(|| format!("cannot read --ca-file {}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .with_context(|| format!("--ca-file {} holds no PEM certificate", path.display()))?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let auth = match (&args.token, &args.login) {
            (Some(t), _) => Auth::Bearer(t.clone()),
            (None, Some(user)) => {
                let password = std::env::var("WATCHPOST_PASSWORD")
                    .context("--login needs the password in WATCHPOST_PASSWORD")?;
                Auth::Basic(user.clone(), password)
            }
            (None, None) => Auth::None,
        };
        Ok(Client {
            base: args.server.clone(),
            http: builder.build().context("cannot build the HTTP client")?,
            auth,
        })
    }
}

/// Percent-encodes one path segment (an agent id or user name).
pub fn path_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

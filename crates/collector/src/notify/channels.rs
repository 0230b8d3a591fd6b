//! The wire format of each channel, and sending.
//!
//! - **webhook**: `POST` of a JSON body (below) with headers
//!   `X-Watchpost-Delivery` (the message id: the same id on a retry, so a
//!   receiver can drop a repeat), `X-Watchpost-Timestamp` (Unix seconds) and,
//!   when the channel has a `secret`, `X-Watchpost-Signature:
//!   sha256=<hex HMAC-SHA256 of "{timestamp}.{body}" keyed by the secret>`.
//!   Any 2xx is delivered.
//!
//!   ```json
//!   { "version": 1, "message_id": "wp-12-14-3", "channel": "ops-hook", "language": "zh",
//!     "recipient": { "name": "li", "phone": "...", "email": "..." },
//!     "subject": "...", "text": "...", "held": null,   // or { "since_ms": ..., "limit": "20/min" }
//!     "notifications": [ { "id": 12, "kind": "opened", "fault": { ...as GET /api/v1/faults/{id}..., "link": "..." } } ] }
//!   ```
//! - **dingtalk**: the robot's `markdown` message; with a secret, the URL
//!   gets `timestamp` (ms) and `sign` = Base64(HMAC-SHA256(secret,
//!   "{timestamp}\n{secret}")); the person is @-mentioned by phone
//!   (`atMobiles`) or DingTalk user id (`atUserIds`). `errcode` ≠ 0 fails.
//! - **wecom**: the robot's `text` message with `mentioned_list` (WeCom user
//!   id) or `mentioned_mobile_list`; the key in the URL is the credential.
//!   `errcode` ≠ 0 fails.
//! - **feishu**: the robot's `text` message; with a secret, body fields
//!   `timestamp` (s) and `sign` = Base64(HMAC-SHA256 keyed by
//!   "{timestamp}\n{secret}" over nothing); the person is mentioned with
//!   `<at user_id="…">`. `code` ≠ 0 fails.
//! - **email**: SMTP with STARTTLS (default), TLS or none, optional AUTH;
//!   plain-text UTF-8 mail to the person's `email`, `Message-ID` from the
//!   message id.

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde_json::{Value, json};
use sha2::Sha256;

use super::render::{Message, Rendered, fault_link};
use super::{Channel, ChannelKind, Language, NotifyConfig, SmtpTls};

/// Longest text sent to a robot (bytes): WeCom's text limit is 2048.
const ROBOT_TEXT_LIMIT: usize = 2000;

/// HMAC-SHA256.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The webhook's signature header value.
pub fn webhook_signature(secret: &str, timestamp_s: i64, body: &[u8]) -> String {
    let mut signed = format!("{timestamp_s}.").into_bytes();
    signed.extend_from_slice(body);
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), &signed)))
}

/// DingTalk's `sign` (before URL encoding).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    b64(&hmac_sha256(
        secret.as_bytes(),
        format!("{timestamp_ms}\n{secret}").as_bytes(),
    ))
}

/// Feishu's `sign`.
pub fn feishu_sign(secret: &str, timestamp_s: i64) -> String {
    b64(&hmac_sha256(format!("{timestamp_s}\n{secret}").as_bytes(), b""))
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// An HTTP request to send.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Full URL.
    pub url: String,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// JSON body.
    pub body: Vec<u8>,
}

/// Builds the request for an HTTP channel.
pub fn http_request(
    channel: &Channel,
    message: &Message,
    rendered: &Rendered,
    config: &NotifyConfig,
    now_ms: i64,
) -> Result<HttpRequest, String> {
    let person = &message.person;
    let now_s = now_ms.div_euclid(1000);
    let mut url = reqwest::Url::parse(&channel.url).map_err(|e| e.to_string())?;
    let mut headers = Vec::new();
    let body: Value = match channel.kind {
        ChannelKind::Webhook => {
            let items: Vec<Value> = message
                .items
                .iter()
                .map(|i| {
                    let mut fault = serde_json::to_value(&i.fault).unwrap_or(Value::Null);
                    if let Value::Object(m) = &mut fault {
                        m.remove("timeline");
                        m.insert("link".into(), json!(fault_link(config, i.fault.id)));
                    }
                    json!({ "id": i.notification_id, "kind": i.kind.as_str(), "fault": fault })
                })
                .collect();
            json!({
                "version": 1,
                "message_id": message.id,
                "channel": channel.name,
                "language": match config.language { Language::Zh => "zh", Language::En => "en" },
                "recipient": person,
                "subject": rendered.subject,
                "text": rendered.text,
                "held": message.held.as_ref().map(|h| json!({ "since_ms": h.since_ms, "limit": h.limit })),
                "notifications": items,
            })
        }
        ChannelKind::Dingtalk => {
            if let Some(secret) = &channel.secret {
                url.query_pairs_mut()
                    .append_pair("timestamp", &now_ms.to_string())
                    .append_pair("sign", &dingtalk_sign(secret, now_ms));
            }
            let mut text = format!(
                "### {}\n\n{}",
                rendered.subject,
                rendered.text.replace('\n', "  \n")
            );
            let mut mobiles = Vec::new();
            let mut users = Vec::new();
            if let Some(id) = &person.dingtalk {
                text.push_str(&format!("\n\n@{id}"));
                users.push(id.clone());
            } else if let Some(phone) = &person.phone {
                text.push_str(&format!("\n\n@{phone}"));
                mobiles.push(phone.clone());
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": truncate(&rendered.subject, 100), "text": truncate(&text, 18_000) },
                "at": { "atMobiles": mobiles, "atUserIds": users, "isAtAll": false },
            })
        }
        ChannelKind::Wecom => {
            let text = format!("{}\n\n{}", rendered.subject, rendered.text);
            json!({
                "msgtype": "text",
                "text": {
                    "content": truncate(&text, ROBOT_TEXT_LIMIT),
                    "mentioned_list": person.wecom.iter().collect::<Vec<_>>(),
                    "mentioned_mobile_list": if person.wecom.is_none() { person.phone.iter().collect::<Vec<_>>() } else { Vec::new() },
                },
            })
        }
        ChannelKind::Feishu => {
            let mut text = format!("{}\n\n{}", rendered.subject, rendered.text);
            if let Some(id) = &person.feishu {
                text.push_str(&format!("\n<at user_id=\"{id}\">{}</at>", person.name));
            }
            let mut body = json!({
                "msg_type": "text",
                "content": { "text": truncate(&text, 18_000) },
            });
            if let (Some(secret), Value::Object(m)) = (&channel.secret, &mut body) {
                m.insert("timestamp".into(), json!(now_s.to_string()));
                m.insert("sign".into(), json!(feishu_sign(secret, now_s)));
            }
            body
        }
        ChannelKind::Email => return Err("e-mail is not an HTTP channel".into()),
    };
    let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
    if channel.kind == ChannelKind::Webhook {
        headers.push(("X-Watchpost-Delivery", message.id.clone()));
        headers.push(("X-Watchpost-Timestamp", now_s.to_string()));
        if let Some(secret) = &channel.secret {
            headers.push(("X-Watchpost-Signature", webhook_signature(secret, now_s, &body)));
        }
    }
    Ok(HttpRequest {
        url: url.to_string(),
        headers,
        body,
    })
}

/// Reads a robot's JSON answer: DingTalk and WeCom say `errcode`, Feishu `code`
/// (older Feishu hooks `StatusCode`); anything else than 0 is a failure.
pub fn check_robot_answer(kind: ChannelKind, body: &str) -> Result<(), String> {
    if kind == ChannelKind::Webhook {
        return Ok(());
    }
    let v: Value = serde_json::from_str(body)
        .map_err(|_| format!("the robot's answer is not JSON: {}", truncate(body, 200)))?;
    let code = ["errcode", "code", "StatusCode"]
        .iter()
        .find_map(|k| v.get(*k).and_then(Value::as_i64));
    match code {
        Some(0) => Ok(()),
        Some(c) => {
            let msg = ["errmsg", "msg", "StatusMessage"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str))
                .unwrap_or("");
            Err(format!("the robot refused the message: code {c}: {msg}"))
        }
        None => Err(format!(
            "the robot's answer has no result code: {}",
            truncate(body, 200)
        )),
    }
}

/// Sends messages on every kind of channel.
pub struct Sender {
    http: reqwest::Client,
    mailers: HashMap<String, AsyncSmtpTransport<Tokio1Executor>>,
}

impl Sender {
    /// Prepares clients for the configured channels.
    pub fn new(config: &NotifyConfig) -> Result<Sender, String> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("watchpost/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let mut mailers = HashMap::new();
        for c in config.channels.iter().filter(|c| c.kind == ChannelKind::Email) {
            mailers.insert(
                c.name.clone(),
                mailer(c).map_err(|e| format!("channel {:?}: {e}", c.name))?,
            );
        }
        Ok(Sender { http, mailers })
    }

    /// Sends one message; `Err` says why it failed.
    pub async fn send(
        &self,
        channel: &Channel,
        message: &Message,
        rendered: &Rendered,
        config: &NotifyConfig,
        now_ms: i64,
    ) -> Result<(), String> {
        self.send_with(channel, message, rendered, config, now_ms, None)
            .await
    }

    /// Sends one message, by e-mail with `attachment` (file name, MIME
    /// type, bytes) attached; robots and webhooks get the text alone.
    pub async fn send_with(
        &self,
        channel: &Channel,
        message: &Message,
        rendered: &Rendered,
        config: &NotifyConfig,
        now_ms: i64,
        attachment: Option<(&str, &str, &[u8])>,
    ) -> Result<(), String> {
        if channel.kind == ChannelKind::Email {
            return self.send_mail(channel, message, rendered, attachment).await;
        }
        let req = http_request(channel, message, rendered, config, now_ms)?;
        let mut builder = self
            .http
            .post(&req.url)
            .timeout(channel.timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(req.body);
        for (k, v) in req.headers {
            builder = builder.header(k, v);
        }
        let resp = builder.send().await.map_err(|e| {
            // reqwest's Display hides the cause (refused, timed out...).
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(cause) = src {
                s.push_str(": ");
                s.push_str(&cause.to_string());
                src = cause.source();
            }
            s
        })?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", truncate(&text, 200)));
        }
        check_robot_answer(channel.kind, &text)
    }

    async fn send_mail(
        &self,
        channel: &Channel,
        message: &Message,
        rendered: &Rendered,
        attachment: Option<(&str, &str, &[u8])>,
    ) -> Result<(), String> {
        let to = message
            .person
            .email
            .as_deref()
            .ok_or_else(|| format!("{} has no e-mail address in the roster", message.person.name))?;
        let mailer = self
            .mailers
            .get(&channel.name)
            .ok_or_else(|| format!("no mailer for channel {:?}", channel.name))?;
        let to_box = format!("{} <{to}>", message.person.name)
            .parse::<lettre::message::Mailbox>()
            .map_err(|e| format!("bad address {to:?} of {}: {e}", message.person.name))?;
        let domain = channel
            .from
            .rsplit('@')
            .next()
            .unwrap_or("watchpost")
            .trim_end_matches('>');
        let builder = lettre::Message::builder()
            .from(channel.from.parse().map_err(|e| format!("from: {e}"))?)
            .to(to_box)
            .subject(&rendered.subject)
            .message_id(Some(format!("<{}@{domain}>", message.id)));
        let email = match attachment {
            None => builder
                .header(lettre::message::header::ContentType::TEXT_PLAIN)
                .body(rendered.text.clone()),
            Some((name, mime, bytes)) => {
                use lettre::message::{Attachment, MultiPart, SinglePart, header::ContentType};
                let mime = ContentType::parse(mime).map_err(|e| format!("attachment type {mime:?}: {e}"))?;
                builder.multipart(
                    MultiPart::mixed()
                        .singlepart(SinglePart::plain(rendered.text.clone()))
                        .singlepart(Attachment::new(name.to_string()).body(bytes.to_vec(), mime)),
                )
            }
        }
        .map_err(|e| format!("cannot build the mail: {e}"))?;
        mailer
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("SMTP {}: {e}", channel.smtp))
    }
}

fn mailer(c: &Channel) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let (host, port) = c
        .smtp
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| format!("smtp {:?} must be host:port", c.smtp))?;
    let tls = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(host.clone());
        if let Some(pem) = &c.ca_pem {
            b = b.add_root_certificate(Certificate::from_pem(pem).map_err(|e| format!("ca_file: {e}"))?);
        }
        b.build_rustls().map_err(|e| e.to_string())
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
        .port(port)
        .timeout(Some(c.timeout));
    builder = match c.tls {
        SmtpTls::Starttls => builder.tls(Tls::Required(tls()?)),
        SmtpTls::Tls => builder.tls(Tls::Wrapper(tls()?)),
        SmtpTls::None => builder.tls(Tls::None),
    };
    if let (Some(u), Some(p)) = (&c.username, &c.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_each_services_algorithm() {
        // RFC 4231 test case 2.
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Expected values computed with Python's hmac module from each
        // service's documented string to sign.
        assert_eq!(
            dingtalk_sign("SEC000", 1_700_000_000_000),
            "ltBBey5eZrWKh1cPzFIdz3v3xpkc4Tjx4lLsPSHqdtA="
        );
        assert_eq!(
            feishu_sign("abc", 1_700_000_000),
            "VIS10b0EBvzzSdFnuk4tznEmK5wHaruvf/WnViv2yR4="
        );
        assert_eq!(
            webhook_signature("k", 1, b"{}"),
            "sha256=3dd49b2593d0f9a349e9e71c4bde3e2b862c2be4003fe9b4ba81332029310158"
        );
    }

    #[test]
    fn robot_answers() {
        assert!(check_robot_answer(ChannelKind::Dingtalk, r#"{"errcode":0,"errmsg":"ok"}"#).is_ok());
        let e = check_robot_answer(
            ChannelKind::Dingtalk,
            r#"{"errcode":310000,"errmsg":"sign not match"}"#,
        )
        .expect_err("refused");
        assert!(e.contains("310000") && e.contains("sign not match"), "{e}");
        assert!(check_robot_answer(ChannelKind::Feishu, r#"{"code":0,"msg":"success"}"#).is_ok());
        assert!(check_robot_answer(ChannelKind::Feishu, r#"{"StatusCode":0}"#).is_ok());
        assert!(check_robot_answer(ChannelKind::Wecom, "<html>").is_err());
        assert_eq!(truncate("故障故障", 7), "故…");
    }
}

//! Our own view of SNMP: a [`Session`] to poll a device and a
//! [`TrapReceiver`] to take its traps. The rest of the agent speaks only
//! these types; [`AsyncSnmp`] and [`AsyncSnmpTraps`] map them onto the
//! `async-snmp` crate (pinned to one version: it makes breaking changes in
//! minor releases), so replacing the library touches this file only.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

/// A log filter directive that silences the SNMP library's own log lines
/// (it logs every unanswered request; our pollers report those as values).
pub const LIBRARY_LOG_OFF: &str = "async_snmp=off";

/// An object identifier as its arcs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Oid(pub Vec<u32>);

impl Oid {
    /// Parses `1.3.6.1...` (a leading dot is accepted).
    pub fn parse(s: &str) -> Result<Oid, String> {
        let t = s.trim().trim_start_matches('.');
        let arcs: Result<Vec<u32>, _> = t.split('.').map(str::parse::<u32>).collect();
        match arcs {
            Ok(a) if a.len() >= 2 => Ok(Oid(a)),
            _ => Err(format!(
                "{s:?} is not a numeric OID such as \"1.3.6.1.2.1.1.3.0\""
            )),
        }
    }

    /// This OID followed by `arcs`.
    pub fn child(&self, arcs: &[u32]) -> Oid {
        let mut v = self.0.clone();
        v.extend_from_slice(arcs);
        Oid(v)
    }

    /// The arcs after `prefix`, when this OID lies under it.
    pub fn suffix_after(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

/// A value as the pollers need it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// INTEGER.
    Int(i64),
    /// Counter32: wraps at 2^32.
    Counter32(u32),
    /// Counter64.
    Counter64(u64),
    /// Gauge32 / Unsigned32.
    Gauge(u32),
    /// TimeTicks (hundredths of a second).
    Ticks(u32),
    /// OCTET STRING.
    Bytes(Vec<u8>),
    /// An OBJECT IDENTIFIER.
    Oid(Oid),
    /// noSuchObject / noSuchInstance / endOfMibView, or a type we do not use.
    Missing,
}

impl Value {
    /// A number, where the value is one (a numeric string counts: some
    /// vendors report gauges as text).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(v) => Some(*v as f64),
            Value::Counter32(v) | Value::Gauge(v) | Value::Ticks(v) => Some(f64::from(*v)),
            Value::Counter64(v) => Some(*v as f64),
            Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse::<f64>().ok(),
            Value::Oid(_) | Value::Missing => None,
        }
    }

    /// Text for a label (lossy for non-UTF-8 bytes, trailing NULs dropped).
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::Bytes(b) => Some(
                String::from_utf8_lossy(b)
                    .trim_end_matches('\0')
                    .trim()
                    .to_string(),
            ),
            Value::Oid(o) => Some(o.to_string()),
            Value::Missing => None,
            other => other.as_f64().map(|v| v.to_string()),
        }
    }
}

/// One binding.
pub type Binding = (Oid, Value);

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnmpError {
    /// No answer within the timeout, after the retries.
    Timeout,
    /// Credentials were refused (v3 report, wrong community is a timeout).
    Auth(String),
    /// Anything else (network, malformed answer, error status).
    Other(String),
}

impl fmt::Display for SnmpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnmpError::Timeout => f.write_str("no answer (timeout)"),
            SnmpError::Auth(m) => write!(f, "authentication failed: {m}"),
            SnmpError::Other(m) => f.write_str(m),
        }
    }
}

/// What a poller needs from a session.
pub trait Session: Send + Sync {
    /// GET of several scalars; missing ones come back as [`Value::Missing`].
    fn get(&self, oids: &[Oid]) -> impl Future<Output = Result<Vec<Binding>, SnmpError>> + Send;
    /// Walks a subtree (GETBULK on v2c/v3).
    fn walk(&self, root: &Oid) -> impl Future<Output = Result<Vec<Binding>, SnmpError>> + Send;
}

/// A notification (trap or inform) as received.
#[derive(Debug, Clone, PartialEq)]
pub struct Trap {
    /// Who sent it.
    pub source: SocketAddr,
    /// `snmpTrapOID.0`: what it says happened.
    pub oid: Oid,
    /// Its variable bindings.
    pub bindings: Vec<Binding>,
}

/// What the trap listener needs from a receiver.
pub trait TrapReceiver: Send + Sync {
    /// The address it listens on.
    fn local_addr(&self) -> SocketAddr;
    /// The next notification; `Ok(None)` for one without a trap OID.
    fn recv(&self) -> impl Future<Output = Result<Option<Trap>, SnmpError>> + Send;
}

/// How to reach and authenticate to a device.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// SNMPv2c community.
    V2c {
        /// The community string.
        community: String,
    },
    /// SNMPv3 USM.
    V3 {
        /// User name.
        user: String,
        /// Authentication protocol and password (authNoPriv or authPriv).
        auth: Option<(AuthProtocol, String)>,
        /// Privacy protocol and password (authPriv).
        privacy: Option<(PrivProtocol, String)>,
    },
}

/// SNMPv3 authentication protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthProtocol {
    /// HMAC-MD5-96 (legacy devices only).
    Md5,
    /// HMAC-SHA-96.
    Sha,
    /// HMAC-SHA-224.
    Sha224,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

/// SNMPv3 privacy protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PrivProtocol {
    /// DES (legacy devices only).
    Des,
    /// AES-128-CFB.
    Aes128,
    /// AES-192 with the Blumenthal key extension (net-snmp's "AES192").
    Aes192,
    /// AES-256 with the Blumenthal key extension (net-snmp's "AES256").
    Aes256,
    /// AES-192 with the Reeder key extension (Cisco; net-snmp's "AES192C").
    Aes192c,
    /// AES-256 with the Reeder key extension (Cisco; net-snmp's "AES256C").
    Aes256c,
}

/// Session settings.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Host and port.
    pub address: String,
    /// Version and credentials.
    pub credentials: Credentials,
    /// Per request.
    pub timeout: Duration,
    /// Retries after a timeout.
    pub retries: u32,
    /// GETBULK max-repetitions.
    pub max_repetitions: u32,
}

/// A session on the `async-snmp` crate.
pub struct AsyncSnmp {
    client: async_snmp::Client<async_snmp::UdpHandle>,
}

impl AsyncSnmp {
    /// Opens a UDP session (no packet is sent yet).
    pub async fn open(config: &SessionConfig) -> Result<AsyncSnmp, SnmpError> {
        let auth: async_snmp::Auth = match &config.credentials {
            Credentials::V2c { community } => async_snmp::Auth::v2c(community.as_str()),
            Credentials::V3 { user, auth, privacy } => {
                let usm = async_snmp::UsmConfig::new(user.clone().into_bytes());
                let usm = match (auth, privacy) {
                    (Some((a, ap)), Some((p, pp))) => {
                        usm.auth_priv(auth_protocol(*a), ap, priv_protocol(*p), pp)
                    }
                    (Some((a, ap)), None) => usm.auth(auth_protocol(*a), ap),
                    (None, _) => Ok(usm),
                }
                .map_err(|e| SnmpError::Other(format!("SNMPv3 credentials: {e}")))?;
                usm.into()
            }
        };
        let retry = async_snmp::Retry::fixed(config.retries, Duration::ZERO)
            .map_err(|e| SnmpError::Other(format!("retries: {e}")))?;
        let options = async_snmp::WalkOptions {
            max_repetitions: config.max_repetitions,
            ..Default::default()
        };
        let client = async_snmp::Client::builder(config.address.as_str(), auth)
            .request_timeout(config.timeout)
            .retry(retry)
            .walk_options(options)
            .connect()
            .await
            .map_err(|e| convert_error(&e))?;
        Ok(AsyncSnmp { client })
    }
}

fn auth_protocol(a: AuthProtocol) -> async_snmp::AuthProtocol {
    match a {
        AuthProtocol::Md5 => async_snmp::AuthProtocol::Md5,
        AuthProtocol::Sha => async_snmp::AuthProtocol::Sha1,
        AuthProtocol::Sha224 => async_snmp::AuthProtocol::Sha224,
        AuthProtocol::Sha256 => async_snmp::AuthProtocol::Sha256,
        AuthProtocol::Sha384 => async_snmp::AuthProtocol::Sha384,
        AuthProtocol::Sha512 => async_snmp::AuthProtocol::Sha512,
    }
}

fn priv_protocol(p: PrivProtocol) -> async_snmp::PrivProtocol {
    match p {
        PrivProtocol::Des => async_snmp::PrivProtocol::Des,
        PrivProtocol::Aes128 => async_snmp::PrivProtocol::Aes128,
        PrivProtocol::Aes192 => async_snmp::PrivProtocol::Aes192Blumenthal,
        PrivProtocol::Aes256 => async_snmp::PrivProtocol::Aes256Blumenthal,
        PrivProtocol::Aes192c => async_snmp::PrivProtocol::Aes192Reeder,
        PrivProtocol::Aes256c => async_snmp::PrivProtocol::Aes256Reeder,
    }
}

fn convert_error(e: &async_snmp::Error) -> SnmpError {
    match e {
        async_snmp::Error::Timeout { .. } => SnmpError::Timeout,
        async_snmp::Error::Auth { .. } | async_snmp::Error::Report { .. } => SnmpError::Auth(e.to_string()),
        _ => SnmpError::Other(e.to_string()),
    }
}

fn to_oid(o: &Oid) -> async_snmp::Oid {
    async_snmp::Oid::from_slice(&o.0)
}

/// Converts one of the library's values.
fn value_of(v: &async_snmp::Value) -> Value {
    use async_snmp::Value as V;
    match v {
        V::Integer(i) => Value::Int(i64::from(*i)),
        V::Counter32(c) => Value::Counter32(*c),
        V::Counter64(c) => Value::Counter64(*c),
        V::Gauge32(g) => Value::Gauge(*g),
        V::TimeTicks(t) => Value::Ticks(*t),
        V::OctetString(b) => Value::Bytes(b.to_vec()),
        V::ObjectIdentifier(o) => Value::Oid(Oid(o.arcs().to_vec())),
        other => match other.as_u32() {
            Some(u) => Value::Gauge(u),
            None => Value::Missing,
        },
    }
}

fn binding_of(vb: &async_snmp::VarBind) -> Binding {
    (Oid(vb.oid.arcs().to_vec()), value_of(&vb.value))
}

impl Session for AsyncSnmp {
    async fn get(&self, oids: &[Oid]) -> Result<Vec<Binding>, SnmpError> {
        let oids: Vec<async_snmp::Oid> = oids.iter().map(to_oid).collect();
        let response = self.client.get_many(&oids).await.map_err(|e| convert_error(&e))?;
        Ok(response.varbinds.iter().map(binding_of).collect())
    }

    async fn walk(&self, root: &Oid) -> Result<Vec<Binding>, SnmpError> {
        let stream = self.client.walk(to_oid(root)).map_err(|e| convert_error(&e))?;
        let varbinds = stream.collect().await.map_err(|e| convert_error(&e))?;
        Ok(varbinds.iter().map(binding_of).collect())
    }
}

/// A trap receiver on the `async-snmp` crate.
pub struct AsyncSnmpTraps {
    receiver: async_snmp::notification::NotificationReceiver,
}

impl AsyncSnmpTraps {
    /// Listens on `listen` (UDP) for notifications with one of `communities`.
    pub async fn bind(listen: &str, communities: &[String]) -> Result<AsyncSnmpTraps, SnmpError> {
        let receiver = async_snmp::notification::NotificationReceiver::builder()
            .bind(listen.to_string())
            .communities(communities.iter().map(String::as_str))
            .build()
            .await
            .map_err(|e| SnmpError::Other(e.to_string()))?;
        Ok(AsyncSnmpTraps { receiver })
    }
}

impl TrapReceiver for AsyncSnmpTraps {
    fn local_addr(&self) -> SocketAddr {
        self.receiver.local_addr()
    }

    async fn recv(&self) -> Result<Option<Trap>, SnmpError> {
        let received = self
            .receiver
            .recv()
            .await
            .map_err(|e| SnmpError::Other(e.to_string()))?;
        let Ok(oid) = received.notification.trap_oid() else {
            return Ok(None);
        };
        Ok(Some(Trap {
            source: received.source,
            oid: Oid(oid.arcs().to_vec()),
            bindings: received.notification.varbinds().iter().map(binding_of).collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_parse_and_print() {
        let o = Oid::parse(".1.3.6.1.2.1.1.3.0").expect("valid");
        assert_eq!(o.to_string(), "1.3.6.1.2.1.1.3.0");
        assert_eq!(
            o.suffix_after(&Oid::parse("1.3.6.1.2.1").expect("valid")),
            Some(&[1, 3, 0][..])
        );
        assert!(Oid::parse("1.3.x").is_err());
        assert!(Oid::parse("sysUpTime").is_err());
        assert_eq!(Value::Bytes(b" 42 ".to_vec()).as_f64(), Some(42.0));
        assert_eq!(
            Value::Bytes(b"eth0\0".to_vec()).as_text().as_deref(),
            Some("eth0")
        );
    }
}

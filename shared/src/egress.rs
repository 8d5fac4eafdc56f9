//! SSRF-safe outbound HTTP: the worker's webhook deliveries and the API's Agent Card fetches.
//!
//! Endpoint and card URLs come from agents, so a request must never reach loopback, private,
//! link-local, cloud-metadata or other non-public addresses. Two checks together cover every way
//! reqwest picks an address:
//!
//! - **Hostnames** go through the client's own DNS resolver, which drops every resolved address
//!   the policy refuses. reqwest connects only to what the resolver returns, so the addresses
//!   checked are the addresses connected to: no DNS-rebinding gap between check and connect.
//! - **IP-literal URLs** never reach a resolver, so [`EgressPolicy::check_url`] refuses them (and
//!   the metadata hostnames and non-http(s) schemes) before the request is sent.
//!
//! [`EgressClient::send`] runs both, which is why it is the only way to send: the services must call
//! it for every request to an agent's URL and must not build their own `reqwest::Client`. Redirects are never
//! followed (a redirect target would skip `check_url`, and Standard Webhooks says not to follow
//! them) and proxies from the environment are ignored (through a proxy the resolver would only
//! see the proxy's name).
//!
//! For local development an explicit allow-list ([`EgressPolicy`] parsed from a setting such as
//! `"127.0.0.0/8,::1/128"`) admits ranges that would otherwise be refused.

use std::error::Error as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a delivery attempt failed before a response arrived. Messages never contain the URL (it
/// may carry a secret in its query), so they are safe to store in a delivery-attempt record.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The destination is not allowed (SSRF protection); retrying cannot help.
    #[error("refused: {0}")]
    Refused(String),
    /// The request did not complete within the client's timeout.
    #[error("timed out")]
    Timeout,
    /// Connecting, TLS, or the HTTP exchange failed; the message is the error chain.
    #[error("{0}")]
    Transport(String),
}

/// An allow-list entry that is not a valid CIDR range.
#[derive(Debug, thiserror::Error)]
#[error("invalid egress allow-list entry {entry:?}: {reason}")]
pub struct PolicyParseError {
    entry: String,
    reason: &'static str,
}

/// Which destinations may be contacted: every public address, plus the ranges in the allow-list.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    allowed: Vec<Cidr>,
}

impl FromStr for EgressPolicy {
    type Err = PolicyParseError;

    /// Parses comma-separated CIDR ranges (`"127.0.0.0/8, ::1/128"`); a bare address means that
    /// one host, and an empty string allows nothing beyond public addresses.
    fn from_str(setting: &str) -> Result<Self, Self::Err> {
        let allowed = setting.split(',').map(str::trim).filter(|e| !e.is_empty()).map(Cidr::parse);
        Ok(Self { allowed: allowed.collect::<Result<_, _>>()? })
    }
}

impl EgressPolicy {
    /// Whether connecting to `ip` is allowed.
    pub fn permits(&self, ip: IpAddr) -> bool {
        // Canonical form so that an allowed 127.0.0.0/8 also admits ::ffff:127.0.0.1.
        let canonical = ip.to_canonical();
        is_public(ip) || self.allowed.iter().any(|range| range.contains(canonical))
    }

    /// Refuses non-http(s) schemes, the metadata hostnames, and IP-literal hosts the policy
    /// refuses. Hostnames are otherwise accepted here: their addresses are checked at resolution.
    pub fn check_url(&self, url: &Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Refused(format!("scheme {:?} is not http or https", url.scheme())));
        }
        // The url crate has already normalised IP hosts (`0x7f.1`, `2130706433`, `[::FFFF:7f00:1]`)
        // into `Host::Ipv4`/`Host::Ipv6`, so every spelling of an address lands in those arms.
        match url.host() {
            None => Err(EgressError::Refused("URL has no host".into())),
            Some(Host::Domain(name)) => check_host_name(name).map_err(EgressError::Refused),
            Some(Host::Ipv4(ip)) => self.check_ip(ip.into()),
            Some(Host::Ipv6(ip)) => self.check_ip(ip.into()),
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), EgressError> {
        if self.permits(ip) { Ok(()) } else { Err(EgressError::Refused(format!("{ip} is not a public address"))) }
    }

    /// Whether a webhook target given at registration (an agent's endpoint,
    /// a job's callback) can be delivered to, as early as it can be told:
    /// an IP literal only when the allow-list names it (a public address
    /// too: a target is named by its host name), a metadata host never, and
    /// a name not when it resolves only to addresses the policy refuses.
    /// The lookup waits at most [`REGISTRATION_LOOKUP_TIMEOUT`]; a name that
    /// does not resolve now (no such name, DNS failing or slow) is accepted,
    /// as every delivery resolves it again and is refused then. `Err` is a
    /// sentence to put after the field's name.
    pub async fn check_target(&self, url: &Url) -> Result<(), String> {
        let literal = |ip: IpAddr| {
            let canonical = ip.to_canonical();
            if self.allowed.iter().any(|range| range.contains(canonical)) {
                Ok(())
            } else {
                Err(format!("must name its host, not an IP address ({ip})"))
            }
        };
        match url.host() {
            None => Err("must name a host".into()),
            Some(Host::Ipv4(ip)) => literal(ip.into()),
            Some(Host::Ipv6(ip)) => literal(ip.into()),
            Some(Host::Domain(name)) => {
                check_host_name(name).map_err(|_| format!("must not name a metadata server ({name})"))?;
                let lookup = tokio::net::lookup_host((name, url.port_or_known_default().unwrap_or(443)));
                match tokio::time::timeout(REGISTRATION_LOOKUP_TIMEOUT, lookup).await {
                    Ok(Ok(addresses)) => {
                        let addresses: Vec<SocketAddr> = addresses.collect();
                        if addresses.is_empty() || addresses.iter().any(|address| self.permits(address.ip())) {
                            Ok(())
                        } else {
                            Err(format!("must be reachable: {name} resolves only to non-public addresses"))
                        }
                    }
                    Ok(Err(error)) => {
                        tracing::info!(host = name, %error, "target not resolvable at registration; accepted");
                        Ok(())
                    }
                    Err(_) => {
                        tracing::warn!(host = name, "DNS lookup of a target timed out at registration; accepted");
                        Ok(())
                    }
                }
            }
        }
    }
}

/// The longest a registration waits for the DNS answer about a target's host.
pub const REGISTRATION_LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// Whether `ip` is a globally routable unicast address. Addresses that embed an IPv4 address
/// (IPv4-mapped, IPv4-compatible, NAT64) are judged by the embedded address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

/// IPv4 special-purpose ranges (IANA registry) that a webhook must never reach.
const REFUSED_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", incl. 0.0.0.0
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // carrier-grade NAT
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, incl. the metadata server 169.254.169.254
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, incl. broadcast 255.255.255.255
];

/// Special-purpose ranges inside IPv6 global unicast (2000::/3); everything outside it is refused.
const REFUSED_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, incl. Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4, can tunnel to any IPv4 address
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
];

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !REFUSED_V4.iter().any(|&(net, prefix)| prefix_matches(ip.to_bits().into(), net.to_bits().into(), 32, prefix))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let bits = ip.to_bits();
    let embedded_v4 = Ipv4Addr::from_bits(bits as u32); // the low 32 bits
    match bits >> 32 {
        // IPv4-mapped ::ffff:a.b.c.d, or IPv4-compatible ::a.b.c.d (this also covers :: and ::1,
        // which embed 0.0.0.0 and 0.0.0.1).
        0xffff | 0 => is_public_v4(embedded_v4),
        // NAT64 well-known prefix 64:ff9b::/96: the gateway connects to the embedded address.
        0x0064_ff9b_0000_0000_0000_0000 => is_public_v4(embedded_v4),
        _ => {
            prefix_matches(bits, 0x2000 << 112, 128, 3)
                && !REFUSED_V6.iter().any(|&(net, prefix)| prefix_matches(bits, net.to_bits(), 128, prefix))
        }
    }
}

/// Whether the first `prefix` of `width` bits of `a` and `b` agree.
fn prefix_matches(a: u128, b: u128, width: u8, prefix: u8) -> bool {
    // checked_shr: a /0 prefix shifts by the full width, which plain `>>` rejects.
    (a ^ b).checked_shr(u32::from(width - prefix)).unwrap_or(0) == 0
}

/// One allow-list range.
#[derive(Debug, Clone, Copy)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(entry: &str) -> Result<Self, PolicyParseError> {
        let error = |reason| PolicyParseError { entry: entry.to_owned(), reason };
        let (addr, prefix) = entry.split_once('/').map_or((entry, None), |(a, p)| (a, Some(p)));
        let net: IpAddr = addr.trim().parse().map_err(|_| error("not an IP address"))?;
        let (bits, width) = bits_and_width(net);
        let prefix = match prefix {
            None => width,
            Some(p) => p.trim().parse().ok().filter(|&p| p <= width).ok_or_else(|| error("bad prefix length"))?,
        };
        // A set host bit usually means a typo (10.0.0.1/8); refuse it rather than guess.
        if bits.checked_shl(u32::from(128 - width + prefix)).unwrap_or(0) != 0 {
            return Err(error("host bits set after the prefix"));
        }
        Ok(Self { net, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        let ((net, width), (ip, ip_width)) = (bits_and_width(self.net), bits_and_width(ip));
        width == ip_width && prefix_matches(ip, net, width, self.prefix)
    }
}

/// The address as an integer, and its width in bits.
fn bits_and_width(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (v4.to_bits().into(), 32),
        IpAddr::V6(v6) => (v6.to_bits(), 128),
    }
}

/// Refuses the cloud metadata server by name, whatever it resolves to; the error is the reason.
fn check_host_name(name: &str) -> Result<(), String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.eq_ignore_ascii_case("metadata.google.internal") || name.eq_ignore_ascii_case("metadata") {
        return Err(format!("{name} is a metadata server"));
    }
    Ok(())
}

/// Resolves with the system resolver and keeps only the addresses the policy permits.
#[derive(Debug)]
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
}

/// The resolver's refusal; found again in reqwest's error chain to report it as
/// [`EgressError::Refused`] rather than as a transport failure.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0}")]
struct ResolveRefused(String);

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        Box::pin(async move {
            let host = name.as_str();
            check_host_name(host).map_err(ResolveRefused)?;
            let (permitted, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
                tokio::net::lookup_host((host, 0)).await?.partition(|addr| policy.permits(addr.ip()));
            if permitted.is_empty() {
                return Err(ResolveRefused(format!("{host} resolves only to non-public addresses")).into());
            }
            if !refused.is_empty() {
                // Mixed answers are how DNS rebinding attacks look; worth seeing in the logs.
                tracing::warn!(host, ?refused, "dropped non-public addresses from DNS answer");
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client that only reaches destinations its [`EgressPolicy`] permits.
#[derive(Debug, Clone)]
pub struct EgressClient {
    http: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl EgressClient {
    /// A client with the given total request timeout and `User-Agent`, no redirects, no proxy.
    /// Fails only if the TLS backend cannot be initialised.
    pub fn new(policy: EgressPolicy, timeout: Duration, user_agent: &str) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(user_agent)
            .no_proxy()
            .dns_resolver(Arc::new(PolicyResolver { policy: Arc::clone(&policy) }))
            .build()?;
        Ok(Self { http, policy })
    }

    /// Checks the request's URL, then sends it. Any response, including 3xx and 5xx, is `Ok`.
    pub async fn send(&self, request: reqwest::Request) -> Result<reqwest::Response, EgressError> {
        self.policy.check_url(request.url())?;
        Ok(self.http.execute(request).await?)
    }
}

/// Also for errors while reading a response body, so they get the same URL-free messages.
impl From<reqwest::Error> for EgressError {
    fn from(error: reqwest::Error) -> Self {
        let error = error.without_url();
        if error.is_timeout() {
            return Self::Timeout;
        }
        let mut source = error.source();
        while let Some(err) = source {
            if let Some(refused) = err.downcast_ref::<ResolveRefused>() {
                return Self::Refused(refused.0.clone());
            }
            source = err.source();
        }
        Self::Transport(crate::error_chain::render(&error))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use reqwest::{Method, Request};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// One address per refused class, as IP literals (bracketed for IPv6 in URLs).
    const REFUSED: &[&str] = &[
        "127.0.0.1",
        "127.255.255.254",
        "10.1.2.3",
        "172.16.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "224.0.0.1",
        "0.0.0.0",
        "0.1.2.3",
        "255.255.255.255",
        "192.0.0.8",
        "192.0.2.1",
        "192.88.99.1",
        "198.18.0.1",
        "198.19.255.255",
        "198.51.100.7",
        "203.0.113.9",
        "240.0.0.1",
        "::",
        "::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fec0::1",
        "ff02::1",
        "2001:db8::1",
        "2001::1",
        "2002:7f00:1::1",
        "3fff::1",
        "64:ff9b::a00:1",
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::1",
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        "::ffff:10.0.0.1",
        "::127.0.0.1",
        "::ffff:0:7f00:1",
        "100::1",
    ];

    const PUBLIC: &[&str] = &[
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "198.20.0.1",
        "2606:4700::1111",
        "2a00:1450:4001::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
    ];

    fn url_for(addr: &str, port: u16) -> Url {
        match ip(addr) {
            IpAddr::V4(v4) => url(&format!("http://{v4}:{port}/")),
            IpAddr::V6(v6) => url(&format!("http://[{v6}]:{port}/")),
        }
    }

    #[test]
    fn refuses_non_public_addresses() {
        for addr in REFUSED {
            assert!(!is_public(ip(addr)), "{addr} should be refused");
        }
    }

    #[test]
    fn permits_public_addresses() {
        for addr in PUBLIC {
            assert!(is_public(ip(addr)), "{addr} should be public");
        }
    }

    #[test]
    fn parses_allow_list() {
        let policy: EgressPolicy = " 127.0.0.0/8 , ::1/128,,192.168.1.5 ".parse().unwrap();
        assert!(policy.permits(ip("127.0.0.1")));
        assert!(policy.permits(ip("::ffff:127.0.0.1")));
        assert!(policy.permits(ip("::1")));
        assert!(policy.permits(ip("192.168.1.5")));
        assert!(!policy.permits(ip("192.168.1.6")));
        assert!(!policy.permits(ip("10.0.0.1")));
        assert!(policy.permits(ip("8.8.8.8")));

        let everything: EgressPolicy = "0.0.0.0/0,::/0".parse().unwrap();
        assert!(REFUSED.iter().all(|a| everything.permits(ip(a))));

        let empty: EgressPolicy = "".parse().unwrap();
        assert!(REFUSED.iter().all(|a| !empty.permits(ip(a))));
    }

    #[test]
    fn rejects_bad_allow_list_entries() {
        for bad in ["nonsense", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.1/8", "fe80::1/10"] {
            let err = format!("127.0.0.0/8,{bad}").parse::<EgressPolicy>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn check_url_refuses_literals_names_and_schemes() {
        let policy = EgressPolicy::default();
        for addr in REFUSED {
            assert!(matches!(policy.check_url(&url_for(addr, 80)), Err(EgressError::Refused(_))), "{addr}");
        }
        for refused in [
            "http://0x7f.1/",
            "http://2130706433/",
            "http://[::FFFF:7F00:1]/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA.Google.Internal./",
            "http://metadata/",
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
        ] {
            assert!(matches!(policy.check_url(&url(refused)), Err(EgressError::Refused(_))), "{refused}");
        }
        for permitted in ["https://example.com/hook", "http://8.8.8.8/", "https://[2606:4700::1111]:8443/"] {
            assert!(policy.check_url(&url(permitted)).is_ok(), "{permitted}");
        }
    }

    /// A local server that counts connections and answers each request with `response`, or never
    /// answers if it is `None`.
    async fn serve(response: Option<&'static str>) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0; 1024];
                    while !request.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    match response {
                        Some(response) => stream.write_all(response.as_bytes()).await.unwrap(),
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (port, connections)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

    fn client(allow: &str, timeout: Duration) -> EgressClient {
        EgressClient::new(allow.parse().unwrap(), timeout, "agent-registry-test").unwrap()
    }

    fn get(url: Url) -> Request {
        Request::new(Method::GET, url)
    }

    #[tokio::test]
    async fn refused_literals_never_connect() {
        let (port, connections) = serve(Some(OK)).await;
        let client = client("", Duration::from_secs(5));
        for addr in REFUSED {
            let result = client.send(get(url_for(addr, port))).await;
            assert!(matches!(result, Err(EgressError::Refused(_))), "{addr}: {result:?}");
        }
        let result = client.send(get(url(&format!("http://0x7f.1:{port}/")))).await;
        assert!(matches!(result, Err(EgressError::Refused(_))), "{result:?}");
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn resolver_refuses_names_of_non_public_addresses() {
        let (port, connections) = serve(Some(OK)).await;
        let result = client("", Duration::from_secs(5)).send(get(url(&format!("http://localhost:{port}/")))).await;
        match result {
            Err(EgressError::Refused(message)) => {
                assert_eq!(message, "localhost resolves only to non-public addresses")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(connections.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn allow_list_admits_local_server() {
        let (port, connections) = serve(Some(OK)).await;
        let client = client("127.0.0.0/8,::1/128", Duration::from_secs(5));
        for target in [format!("http://localhost:{port}/"), format!("http://127.0.0.1:{port}/")] {
            let response = client.send(get(url(&target))).await.unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "ok");
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (port, connections) = serve(Some(
            "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:1/elsewhere\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        ))
        .await;
        let client = client("127.0.0.0/8", Duration::from_secs(5));
        let response = client.send(get(url(&format!("http://127.0.0.1:{port}/")))).await.unwrap();
        assert_eq!(response.status(), 302);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn timeout_applies() {
        let (port, _) = serve(None).await;
        let client = client("127.0.0.0/8", Duration::from_millis(200));
        let started = std::time::Instant::now();
        let result = client.send(get(url(&format!("http://127.0.0.1:{port}/")))).await;
        assert!(matches!(result, Err(EgressError::Timeout)), "{result:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn transport_errors_omit_the_url() {
        // Bind then drop a listener to get a port that refuses connections.
        let port = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
        let client = client("127.0.0.0/8", Duration::from_secs(5));
        let result = client.send(get(url(&format!("http://127.0.0.1:{port}/hook?token=secret")))).await;
        match result {
            Err(EgressError::Transport(message)) => assert!(!message.contains("secret"), "{message}"),
            other => panic!("expected a transport error, got {other:?}"),
        }
    }
}

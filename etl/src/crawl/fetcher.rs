//! One HTTP client for the whole crawl (reqwest + rustls) and the rules every fetch obeys:
//!
//! - connect, read and total timeouts;
//! - a maximum body size on the wire and a separate limit on the decompressed size (gzip is
//!   decoded here, not by reqwest, so both limits can be enforced);
//! - at most `max_redirects` redirects, and only to hosts the crawl was seeded with;
//! - loopback, private and link-local addresses refused unless `--allow-private`, checked on the
//!   URL's literal IP and on every DNS answer (so a hostname cannot smuggle one in);
//! - retries of timeouts, broken connections, 429 and 5xx with jittered exponential backoff,
//!   waiting at least what `Retry-After` asks (capped).
//!
//! Every failure is a [`FetchError`] with a short [`FetchError::reason`] that the crawl counts.

use std::collections::HashSet;
use std::io::Read;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::redirect;
use url::Url;

use crate::sources::Page;

/// Whether private, loopback and link-local addresses may be fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivateAddresses {
    /// Refuse them (the default: a crawler must not reach into the local network).
    Refuse,
    /// Allow them (the fixture server on 127.0.0.1 needs it).
    Allow,
}

/// Limits and manners of every fetch.
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// The User-Agent header: names negopt and a contact URL.
    pub user_agent: String,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes.
    pub read_timeout: Duration,
    /// Longest whole request.
    pub total_timeout: Duration,
    /// Most body bytes read from the wire.
    pub max_body: usize,
    /// Most bytes a compressed body may decode to.
    pub max_decompressed: usize,
    /// Most redirects followed.
    pub max_redirects: usize,
    /// Retries after the first attempt.
    pub retries: u32,
    /// First backoff; doubles each retry, jittered to 50–100 %.
    pub backoff_base: Duration,
    /// Longest single wait (also caps Retry-After).
    pub backoff_max: Duration,
    /// Private addresses refused or allowed.
    pub private: PrivateAddresses,
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            user_agent: default_user_agent("https://example.invalid/negopt"),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(120),
            max_body: 2 << 20,
            max_decompressed: 16 << 20,
            max_redirects: 5,
            retries: 4,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            private: PrivateAddresses::Refuse,
        }
    }
}

/// `negopt-crawler/VERSION (+CONTACT)`.
pub fn default_user_agent(contact: &str) -> String {
    format!("negopt-crawler/{} (+{contact})", env!("CARGO_PKG_VERSION"))
}

/// Why a fetch gave up.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse or has no host.
    #[error("bad URL {url}: {message}")]
    BadUrl {
        /// The URL.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The address is private/loopback and `--allow-private` is off.
    #[error("refused {url}: private or loopback address (help: --allow-private)")]
    PrivateAddress {
        /// The URL.
        url: String,
    },
    /// A redirect broke the policy.
    #[error("refused redirect from {url}: {reason}")]
    Redirect {
        /// The URL first requested.
        url: String,
        /// What the redirect did wrong.
        reason: RedirectRefusal,
    },
    /// The answer's status is an error (after retries for 429/5xx).
    #[error("{url} answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body is longer than `max_body`.
    #[error("{url}: body larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The body decompresses past `max_decompressed`.
    #[error("{url}: body decompresses past {limit} bytes")]
    DecompressedTooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// The compressed body is broken.
    #[error("{url}: broken gzip body: {message}")]
    BadEncoding {
        /// The URL.
        url: String,
        /// The decoder's message.
        message: String,
    },
    /// No answer in time (after retries).
    #[error("{url}: timed out")]
    Timeout {
        /// The URL.
        url: String,
    },
    /// Connection failed or broke mid-body (after retries).
    #[error("{url}: {message}")]
    Network {
        /// The URL.
        url: String,
        /// reqwest's error chain.
        message: String,
    },
}

impl FetchError {
    /// The short reason the crawl counts this failure under.
    pub fn reason(&self) -> String {
        match self {
            FetchError::BadUrl { .. } => "bad url".into(),
            FetchError::PrivateAddress { .. } => "private address refused".into(),
            FetchError::Redirect { reason, .. } => reason.to_string(),
            FetchError::Status { status, .. } => format!("http {status}"),
            FetchError::TooLarge { .. } => "body too large".into(),
            FetchError::DecompressedTooLarge { .. } => "decompressed body too large".into(),
            FetchError::BadEncoding { .. } => "broken gzip body".into(),
            FetchError::Timeout { .. } => "timeout".into(),
            FetchError::Network { .. } => "network error".into(),
        }
    }

    /// Whether another attempt may succeed.
    fn retryable(&self) -> bool {
        match self {
            FetchError::Status { status, .. } => *status == 429 || *status >= 500,
            FetchError::Timeout { .. } | FetchError::Network { .. } => true,
            _ => false,
        }
    }
}

/// What a redirect did that the policy refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RedirectRefusal {
    /// More than `max_redirects` in a row.
    #[error("too many redirects")]
    TooMany,
    /// To a host the crawl was not seeded with.
    #[error("redirect to another host")]
    OtherHost,
    /// To a private address.
    #[error("redirect to a private address")]
    PrivateAddress,
}

/// Whether an address is loopback, private, link-local, unspecified or otherwise not public.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64 // 100.64/10 CGNAT
        }
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xfe00) == 0xfc00 // unique local
                || (v6.segments()[0] & 0xffc0) == 0xfe80 // link local
                || v6.to_ipv4_mapped().is_some_and(|v4| is_private(IpAddr::V4(v4)))
        }
    }
}

/// `host:port` of a URL: the unit of politeness and of redirect permission.
pub fn authority(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or(""),
        url.port_or_known_default().unwrap_or(0)
    )
}

/// DNS through tokio, dropping private answers when they are refused.
struct GuardedResolver;

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !is_private(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves only to private addresses").into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The crawl's HTTP client.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: Arc<FetchConfig>,
}

/// A successful fetch and how many retries it took.
#[derive(Debug)]
pub struct Fetched {
    /// The answer.
    pub page: Page,
    /// Retries before it.
    pub retries: u32,
}

impl Fetcher {
    /// A client obeying `config`, following redirects only to `allowed_hosts` (authorities).
    pub fn new(
        config: FetchConfig,
        allowed_hosts: HashSet<String>,
    ) -> Result<Fetcher, reqwest::Error> {
        let max = config.max_redirects;
        let private = config.private;
        let policy = redirect::Policy::custom(move |attempt| {
            let refusal = if attempt.previous().len() > max {
                Some(RedirectRefusal::TooMany)
            } else if !allowed_hosts.contains(&authority(attempt.url())) {
                Some(RedirectRefusal::OtherHost)
            } else if private == PrivateAddresses::Refuse
                && literal_ip(attempt.url()).is_some_and(is_private)
            {
                Some(RedirectRefusal::PrivateAddress)
            } else {
                None
            };
            match refusal {
                Some(r) => attempt.error(r),
                None => attempt.follow(),
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .timeout(config.total_timeout)
            .redirect(policy)
            .no_gzip();
        if config.private == PrivateAddresses::Refuse {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        Ok(Fetcher {
            client: builder.build()?,
            config: Arc::new(config),
        })
    }

    /// The limits in force.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Fetches `url`, retrying what may succeed later.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, FetchError> {
        let mut retries = 0;
        loop {
            match self.fetch_once(url).await {
                Ok(page) => return Ok(Fetched { page, retries }),
                Err((err, retry_after)) => {
                    if !err.retryable() || retries >= self.config.retries {
                        return Err(err);
                    }
                    let wait = self.backoff(retries).max(retry_after.unwrap_or_default());
                    tracing::debug!(%url, reason = %err.reason(), ?wait, "retrying");
                    tokio::time::sleep(wait.min(self.config.backoff_max)).await;
                    retries += 1;
                }
            }
        }
    }

    /// Refuses a URL whose host is a private or loopback IP literal (or `localhost`) unless
    /// private addresses are allowed; hostnames are checked again at DNS resolution.
    pub fn check_address(&self, url: &Url) -> Result<(), FetchError> {
        if self.config.private == PrivateAddresses::Refuse
            && literal_ip(url).is_some_and(is_private)
        {
            return Err(FetchError::PrivateAddress {
                url: url.to_string(),
            });
        }
        Ok(())
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exp = self
            .config
            .backoff_base
            .saturating_mul(1u32 << retry.min(16));
        exp.mul_f64(rand::random_range(0.5..=1.0))
    }

    async fn fetch_once(&self, url: &str) -> Result<Page, (FetchError, Option<Duration>)> {
        let fail = |e| (e, None);
        let parsed = Url::parse(url).map_err(|e| {
            fail(FetchError::BadUrl {
                url: url.into(),
                message: e.to_string(),
            })
        })?;
        self.check_address(&parsed).map_err(fail)?;
        let response = self
            .client
            .get(parsed)
            .header(ACCEPT_ENCODING, "gzip")
            .send()
            .await
            .map_err(|e| fail(self.classify(url, e)))?;
        let status = response.status().as_u16();
        if status >= 400 {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            return Err((
                FetchError::Status {
                    url: url.into(),
                    status,
                },
                retry_after,
            ));
        }
        let header = |name| {
            response
                .headers()
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(CONTENT_TYPE);
        let gzip = header(CONTENT_ENCODING).is_some_and(|e| e.eq_ignore_ascii_case("gzip"));
        let final_url = response.url().to_string();
        let limit = self.config.max_body;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(fail(FetchError::TooLarge {
                url: url.into(),
                limit,
            }));
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| fail(self.classify(url, e)))?
        {
            if body.len() + chunk.len() > limit {
                return Err(fail(FetchError::TooLarge {
                    url: url.into(),
                    limit,
                }));
            }
            body.extend_from_slice(&chunk);
        }
        let body = if gzip {
            self.gunzip(url, &body).map_err(fail)?
        } else {
            Bytes::from(body)
        };
        Ok(Page {
            url: final_url,
            status,
            content_type,
            body,
        })
    }

    fn gunzip(&self, url: &str, body: &[u8]) -> Result<Bytes, FetchError> {
        let limit = self.config.max_decompressed;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| FetchError::BadEncoding {
                url: url.into(),
                message: e.to_string(),
            })?;
        if out.len() > limit {
            return Err(FetchError::DecompressedTooLarge {
                url: url.into(),
                limit,
            });
        }
        Ok(Bytes::from(out))
    }

    fn classify(&self, url: &str, err: reqwest::Error) -> FetchError {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
        while let Some(e) = source {
            if let Some(r) = e.downcast_ref::<RedirectRefusal>() {
                return FetchError::Redirect {
                    url: url.into(),
                    reason: r.clone(),
                };
            }
            if e.to_string().contains("resolves only to private addresses") {
                return FetchError::PrivateAddress { url: url.into() };
            }
            source = e.source();
        }
        if err.is_timeout() {
            return FetchError::Timeout { url: url.into() };
        }
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(e) = source {
            message.push_str(": ");
            message.push_str(&e.to_string());
            source = e.source();
        }
        FetchError::Network {
            url: url.into(),
            message,
        }
    }
}

fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    }
}

/// `Retry-After`: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = when.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetcher_private_address_rules() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_private(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "172.32.0.1"] {
            assert!(!is_private(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            literal_ip(&Url::parse("http://localhost:8/").unwrap()),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(
            literal_ip(&Url::parse("http://example.org/").unwrap()),
            None
        );
        assert_eq!(
            authority(&Url::parse("https://a.org/x").unwrap()),
            "a.org:443"
        );
    }

    #[test]
    fn fetcher_retry_after_forms() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Mon, 01 Jan 2001 00:00:00 +0000"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn fetcher_backoff_doubles_with_jitter() {
        let f = Fetcher::new(FetchConfig::default(), HashSet::new()).unwrap();
        for retry in 0..4 {
            let full = Duration::from_millis(500) * (1 << retry);
            let b = f.backoff(retry);
            assert!(b >= full / 2 && b <= full, "retry {retry}: {b:?}");
        }
    }
}

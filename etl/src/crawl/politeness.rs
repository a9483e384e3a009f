//! Per-host manners: robots.txt (`texting_robots`) and a rate limit (`governor`).
//!
//! robots.txt is fetched once per host (`host:port`) before its first request, with the
//! fetcher's retries (so a 429 backs off and tries again). Then, as RFC 9309 says:
//! - 2xx: its rules apply, and its `Crawl-delay` slows the host's rate limit further;
//! - 4xx: no rules, everything is allowed;
//! - 5xx or unreachable (after retries): the host is skipped entirely.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use texting_robots::Robot;
use tokio::sync::OnceCell;
use url::Url;

use super::fetcher::{FetchError, Fetcher, authority};

/// What robots.txt says about a host.
enum HostRules {
    /// No robots.txt (4xx) or one that does not parse: everything allowed.
    AllowAll,
    /// The parsed rules.
    Rules(Box<Robot>),
    /// robots.txt failed with 5xx or not at all: skip the host.
    Skip(String),
    /// The host resolves only to private addresses, which are refused.
    Private,
}

struct Host {
    rules: HostRules,
    limiter: DefaultDirectRateLimiter,
}

/// Why politeness refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// robots.txt disallows the path.
    #[error("disallowed by robots.txt")]
    Disallowed,
    /// The host's robots.txt failed, so the host is skipped.
    #[error("host skipped: {0}")]
    HostSkipped(String),
    /// The host resolves only to private addresses and `--allow-private` is off.
    #[error("host resolves only to private addresses")]
    PrivateHost,
}

impl Refusal {
    /// The short reason the crawl counts.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::Disallowed => "robots.txt disallowed",
            Refusal::HostSkipped(_) => "host skipped (robots.txt unavailable)",
            Refusal::PrivateHost => "private address refused",
        }
    }
}

/// Robots rules and rate limits of every host met.
pub struct Politeness {
    /// Requests per second per host before any Crawl-delay.
    rate: NonZeroU32,
    /// The product token matched against robots.txt `User-agent` lines.
    agent: String,
    hosts: Mutex<HashMap<String, Arc<OnceCell<Host>>>>,
}

impl Politeness {
    /// At most `rate` requests per second per host; robots.txt groups matched by `agent`.
    pub fn new(rate: NonZeroU32, agent: &str) -> Politeness {
        Politeness {
            rate,
            agent: agent.to_string(),
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// Waits until `url` may be fetched, or says why it may not.
    pub async fn admit(&self, fetcher: &Fetcher, url: &Url) -> Result<(), Refusal> {
        let key = authority(url);
        let cell = {
            let mut hosts = self.hosts.lock().expect("politeness lock");
            hosts.entry(key).or_default().clone()
        };
        let host = cell.get_or_init(|| self.load_host(fetcher, url)).await;
        match &host.rules {
            HostRules::Skip(why) => return Err(Refusal::HostSkipped(why.clone())),
            HostRules::Private => return Err(Refusal::PrivateHost),
            HostRules::Rules(robot) if !robot.allowed(url.as_str()) => {
                return Err(Refusal::Disallowed);
            }
            _ => {}
        }
        host.limiter.until_ready().await;
        Ok(())
    }

    async fn load_host(&self, fetcher: &Fetcher, url: &Url) -> Host {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        let rules = match fetcher.fetch(robots_url.as_str()).await {
            Ok(f) => match Robot::new(&self.agent, &f.page.body) {
                Ok(robot) => HostRules::Rules(Box::new(robot)),
                Err(_) => HostRules::AllowAll,
            },
            Err(FetchError::Status { status, .. }) if (400..500).contains(&status) => {
                HostRules::AllowAll
            }
            Err(FetchError::PrivateAddress { .. }) => HostRules::Private,
            Err(e) => {
                tracing::warn!(url = %robots_url, error = %e, "robots.txt unavailable: skipping host");
                HostRules::Skip(e.to_string())
            }
        };
        let delay = match &rules {
            HostRules::Rules(robot) => robot.delay.map(|d| Duration::from_secs_f32(d.max(0.0))),
            _ => None,
        };
        let per_request = Duration::from_secs(1) / self.rate.get();
        let period = delay.map_or(per_request, |d| d.max(per_request));
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .expect("a positive period")
            .allow_burst(NonZeroU32::MIN);
        Host {
            rules,
            limiter: RateLimiter::direct(quota),
        }
    }
}

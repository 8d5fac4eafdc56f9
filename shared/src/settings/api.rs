//! What only the API reads: its signing keys, fees, reputation, job windows,
//! signed requests, rate limits and read cache.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::declare::{Refusal, Setting, default, from_str, in_range, optional_from_str, positive, seconds, variables};
use super::source::{SettingsError, SettingsSource};
use crate::domain::Price;
use crate::platform_key::PlatformSigningKey;

/// The longest accept window, whether set here or asked by a request: a week.
pub const MAX_JOB_ACCEPT_TIMEOUT_SECONDS: u32 = 604_800;

/// How far in the future a signature's `created` may be: clocks drift.
pub const MAX_CLOCK_SKEW_SECONDS: u64 = 5;

variables! {
    /// The platform's Ed25519 private key, base64 of a 32-byte seed (`openssl rand -base64 32`): signs
    /// Agent Cards and job receipts; its public key is in /.well-known/jwks.json. Required by the API.
    PLATFORM_SIGNING_KEY: Option<PlatformSigningKey> = default("").secret().parse(optional_from_str);
    /// During a rotation, the replaced PLATFORM_SIGNING_KEY: it signs nothing, but its public key stays
    /// in /.well-known/jwks.json so what it signed still verifies; empty: none.
    PLATFORM_SIGNING_KEY_PREVIOUS: Option<PlatformSigningKey> = default("").secret().parse(optional_from_str);
    /// Accept http:// endpoint URLs (local development only); otherwise https is required.
    ALLOW_HTTP_ENDPOINTS: bool = default("false").local("true").parse(from_str);
    /// Platform fee as a fraction of the job price (0.025 = 2.5%).
    PLATFORM_FEE_PERCENT: Fraction = default("0.025").parse(from_str);
    /// How many ratings the prior counts as in the reputation score discovery sorts by,
    /// (weight × mean + Σ scores) / (weight + n): above 0, at most 1000; a change rescores every agent.
    RATING_PRIOR_WEIGHT: Decimal = default("10").parse(prior_weight);
    /// The score, 1 to 5, an agent's reputation starts from and is pulled toward while it has few
    /// ratings.
    RATING_PRIOR_MEAN: Decimal = default("3").parse(|raw| in_range(raw, Decimal::ONE, Decimal::from(5)));
    /// The lowest job price whose rating counts toward an agent's reputation score; ratings of cheaper
    /// jobs are kept and listed as uncounted. A change applies to ratings given after it.
    RATING_MIN_PRICE: Price = default("1.00").parse(from_str);
    /// How long an agent has to accept a job whose request sets no `accept_within_seconds` (1 to
    /// 604800); then the job expires.
    JOB_ACCEPT_TIMEOUT_SECONDS: Duration = default("86400")
        .parse(|raw| in_range(raw, 1, MAX_JOB_ACCEPT_TIMEOUT_SECONDS).map(|seconds| Duration::from_secs(seconds.into())));
    /// Discovery token bucket size.
    RATE_LIMIT_DISCOVERY_CAPACITY: u32 = default("60").parse(positive);
    /// Discovery tokens added per minute.
    RATE_LIMIT_DISCOVERY_REFILL_PER_MIN: u32 = default("20").parse(positive);
    /// Read token bucket size.
    RATE_LIMIT_READ_CAPACITY: u32 = default("120").parse(positive);
    /// Read tokens added per minute.
    RATE_LIMIT_READ_REFILL_PER_MIN: u32 = default("60").parse(positive);
    /// Write token bucket size.
    RATE_LIMIT_WRITE_CAPACITY: u32 = default("30").parse(positive);
    /// Write tokens added per minute.
    RATE_LIMIT_WRITE_REFILL_PER_MIN: u32 = default("10").parse(positive);
    /// Token bucket size of writes per client IP (IPv6: per /64), spent before the signature is checked.
    RATE_LIMIT_WRITE_IP_CAPACITY: u32 = default("120").parse(positive);
    /// Per-IP write tokens added per minute.
    RATE_LIMIT_WRITE_IP_REFILL_PER_MIN: u32 = default("60").parse(positive);
    /// How long an instance serves a discovery page or an agent (GET /v1/agents/{id}) from memory before
    /// asking Postgres again: the most another instance's answer can be stale; 0: no cache.
    PUBLIC_READ_CACHE_MS: Duration = default("1000").parse(|raw| from_str(raw).map(Duration::from_millis));
    /// The most memory, in bytes, an instance spends on those pages (each weighed by its size); 0: no cache.
    PUBLIC_READ_CACHE_MAX_BYTES: u64 = default("33554432").parse(from_str);
    /// Oldest accepted `created` time of a request signature.
    SIGNATURE_MAX_AGE_SECONDS: Duration = default("30").parse(seconds);
    /// How long a signature nonce is remembered to refuse replays.
    NONCE_TTL_SECONDS: Duration = default("60").parse(seconds);
}

fn prior_weight(raw: &str) -> Result<Decimal, Refusal> {
    let weight: Decimal = from_str(raw)?;
    if weight <= Decimal::ZERO || weight > Decimal::ONE_THOUSAND {
        return Err(Refusal::Invalid(format!("must be above 0 and at most 1000, got {weight}")));
    }
    Ok(weight)
}

/// The replaced key, which must not be the current one.
pub(super) fn previous_platform_key(source: &SettingsSource) -> Result<Option<PlatformSigningKey>, SettingsError> {
    let previous = PLATFORM_SIGNING_KEY_PREVIOUS.read(source)?;
    if previous.is_some() && previous == PLATFORM_SIGNING_KEY.read(source)? {
        let reason =
            "is the same key as PLATFORM_SIGNING_KEY; set it to the key being replaced, or leave it empty".into();
        return Err(SettingsError::Malformed { name: PLATFORM_SIGNING_KEY_PREVIOUS.variable.name, reason });
    }
    Ok(previous)
}

/// A nonce must be remembered as long as its signature is accepted (its age
/// plus the allowed clock skew), or a replay could slip through.
pub(super) fn nonce_ttl(source: &SettingsSource) -> Result<Duration, SettingsError> {
    let ttl = NONCE_TTL_SECONDS.read(source)?;
    let least = SIGNATURE_MAX_AGE_SECONDS.read(source)? + Duration::from_secs(MAX_CLOCK_SKEW_SECONDS);
    if ttl < least {
        return Err(SettingsError::Malformed {
            name: NONCE_TTL_SECONDS.variable.name,
            reason: format!(
                "must be at least SIGNATURE_MAX_AGE_SECONDS + {MAX_CLOCK_SKEW_SECONDS} ({}), got {}",
                least.as_secs(),
                ttl.as_secs()
            ),
        });
    }
    Ok(ttl)
}

/// A fraction in `[0, 1)`, such as a platform fee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fraction(Decimal);

impl Fraction {
    pub fn value(self) -> Decimal {
        self.0
    }
}

impl FromStr for Fraction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let value = Decimal::from_str_exact(s).map_err(|e| format!("not a decimal number: {e}"))?;
        if value.is_sign_negative() || value >= Decimal::ONE {
            return Err(format!("must be at least 0 and below 1, got {value}"));
        }
        Ok(Self(value))
    }
}

/// The prior of the reputation score: it counts as `weight` ratings of
/// `mean`, so an agent's score moves from `mean` toward its own average as
/// ratings accumulate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReputationPrior {
    pub weight: Decimal,
    pub mean: Decimal,
}

pub(super) fn reputation_prior(source: &SettingsSource) -> Result<ReputationPrior, SettingsError> {
    Ok(ReputationPrior { weight: RATING_PRIOR_WEIGHT.read(source)?, mean: RATING_PRIOR_MEAN.read(source)? })
}

/// A token bucket: `capacity` tokens, refilled at `refill_per_min`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSettings {
    pub capacity: u32,
    pub refill_per_min: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitSettings {
    pub discovery: BucketSettings,
    pub read: BucketSettings,
    pub write: BucketSettings,
    /// Writes per client address, before their signature is checked.
    pub write_ip: BucketSettings,
}

pub(super) fn rate_limits(source: &SettingsSource) -> Result<RateLimitSettings, SettingsError> {
    let bucket = |capacity: &Setting<u32>, refill: &Setting<u32>| {
        Ok::<_, SettingsError>(BucketSettings {
            capacity: capacity.read(source)?,
            refill_per_min: refill.read(source)?,
        })
    };
    Ok(RateLimitSettings {
        discovery: bucket(&RATE_LIMIT_DISCOVERY_CAPACITY, &RATE_LIMIT_DISCOVERY_REFILL_PER_MIN)?,
        read: bucket(&RATE_LIMIT_READ_CAPACITY, &RATE_LIMIT_READ_REFILL_PER_MIN)?,
        write: bucket(&RATE_LIMIT_WRITE_CAPACITY, &RATE_LIMIT_WRITE_REFILL_PER_MIN)?,
        write_ip: bucket(&RATE_LIMIT_WRITE_IP_CAPACITY, &RATE_LIMIT_WRITE_IP_REFILL_PER_MIN)?,
    })
}

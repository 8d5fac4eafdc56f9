//! Send slots shared by every worker instance through Redis: at most
//! `WEBHOOK_ENDPOINT_CONCURRENCY` webhooks in flight to one host, so no
//! receiver is flooded by our concurrency, and at most
//! `WEBHOOK_RECIPIENT_CONCURRENCY` to one recipient (an agent's endpoint, or
//! a client's job callbacks on however many hosts), so one tenant's slow or
//! hanging receivers cannot take every sender. A push holds one slot of
//! each. A slot is a member of a sorted set scored by when it lapses, so a
//! worker that dies holding one frees it after the lease time. Redis away:
//! sends go on unlimited (logged); the limits protect receivers and tenants
//! from each other, and stopping deliveries would hurt more. (How long a push
//! finding no slot waits is `policy`'s decision.)

use std::sync::LazyLock;
use std::time::Duration;

use fred::interfaces::SortedSetsInterface;
use fred::prelude::Pool;
use fred::types::scripts::Script;
use uuid::Uuid;

/// KEYS[1]: the slots of one host or recipient. ARGV: limit, holder token,
/// lease (ms). Returns 1 when a slot was taken.
static TAKE_SLOT: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return 1
"#,
    )
});

pub struct Slots {
    redis: Pool,
    prefix: String,
    per_host: u32,
    per_recipient: u32,
    lease: Duration,
}

/// Whose slots: a target host's, or a recipient's (its prefixed id).
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Host(&'a str),
    Recipient(&'a str),
}

/// The outcome of asking for a slot.
pub enum Slot {
    Taken(SlotHeld),
    /// All of the host's (or the recipient's) slots are in use.
    Busy,
}

/// A slot to give back once the send is over.
pub struct SlotHeld {
    key: Option<String>,
    token: String,
}

impl Slots {
    pub fn new(redis: Pool, prefix: &str, per_host: u32, per_recipient: u32, lease: Duration) -> Self {
        Self { redis, prefix: prefix.to_owned(), per_host, per_recipient, lease }
    }

    pub async fn take(&self, holder: Holder<'_>) -> Slot {
        let (key, limit) = match holder {
            Holder::Host(host) => (format!("{}slots:{host}", self.prefix), self.per_host),
            Holder::Recipient(recipient) => (format!("{}recipient-slots:{recipient}", self.prefix), self.per_recipient),
        };
        let token = Uuid::new_v4().simple().to_string();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let args = vec![limit.to_string(), token.clone(), lease_ms.to_string()];
        match TAKE_SLOT.evalsha_with_reload::<i64, _, _>(self.redis.next(), vec![key.clone()], args).await {
            Ok(1) => Slot::Taken(SlotHeld { key: Some(key), token }),
            Ok(_) => Slot::Busy,
            Err(error) => {
                tracing::warn!(%error, ?holder, "redis unavailable; send concurrency not limited");
                Slot::Taken(SlotHeld { key: None, token })
            }
        }
    }

    pub async fn give_back(&self, held: SlotHeld) {
        if let Some(key) = held.key {
            // Lost: the slot lapses by itself after the lease.
            let _ = self.redis.zrem::<i64, _, _>(key, held.token).await;
        }
    }
}

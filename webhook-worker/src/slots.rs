//! Send slots shared by every worker instance through Redis: at most
//! `WEBHOOK_ENDPOINT_CONCURRENCY` webhooks in flight to one host, so no
//! receiver is flooded by our concurrency, and at most
//! `WEBHOOK_RECIPIENT_CONCURRENCY` to one recipient (an agent's endpoint, or
//! a client's job callbacks on however many hosts), so one tenant's slow or
//! hanging receivers cannot take every sender. A push holds one slot of
//! each, taken together and given back together: one round trip each way,
//! and a push that finds either side full holds neither. A slot is a member
//! of a sorted set scored by when it lapses, so a worker that dies holding
//! one frees it after the lease time. Redis away: sends go on unlimited
//! (logged); the limits protect receivers and tenants from each other, and
//! stopping deliveries would hurt more. (How long a push finding no slot
//! waits is `policy`'s decision.) Both scripts name two keys, so they need
//! one Redis node (Memorystore basic or standard, as `infra` makes it): on
//! a Redis Cluster they would fail with CROSSSLOT and lift the limits.

use std::sync::LazyLock;
use std::time::Duration;

use fred::prelude::Pool;
use fred::types::scripts::Script;
use uuid::Uuid;

/// KEYS: the recipient's slots, then the host's (absent when the target has
/// no host). ARGV: the recipient's limit, the host's limit, holder token,
/// lease (ms). Takes a slot in every key, or in none when any is full;
/// returns 1 when taken.
static TAKE_SLOTS: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  if redis.call('ZCARD', key) >= tonumber(ARGV[i]) then
    return 0
  end
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now + tonumber(ARGV[4]), ARGV[3])
  redis.call('PEXPIRE', key, tonumber(ARGV[4]))
end
return 1
"#,
    )
});

/// KEYS: the slots a push holds. ARGV: its token.
static GIVE_BACK_SLOTS: LazyLock<Script> = LazyLock::new(|| {
    Script::from_lua(
        r#"
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
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

/// The outcome of asking for slots.
pub enum Slot {
    Taken(SlotsHeld),
    /// All of the recipient's (or the host's) slots are in use.
    Busy,
}

/// Slots to give back once the send is over.
pub struct SlotsHeld {
    /// Empty when Redis was away and nothing was taken.
    keys: Vec<String>,
    token: String,
}

impl Slots {
    pub fn new(redis: Pool, prefix: &str, per_host: u32, per_recipient: u32, lease: Duration) -> Self {
        Self { redis, prefix: prefix.to_owned(), per_host, per_recipient, lease }
    }

    /// A slot of the recipient (its prefixed id) and, when the target has
    /// one, of its host.
    pub async fn take(&self, recipient: &str, host: Option<&str>) -> Slot {
        let mut keys = vec![format!("{}recipient-slots:{recipient}", self.prefix)];
        keys.extend(host.map(|host| format!("{}slots:{host}", self.prefix)));
        let token = Uuid::new_v4().simple().to_string();
        let lease_ms = u64::try_from(self.lease.as_millis()).unwrap_or(u64::MAX);
        let args = vec![self.per_recipient.to_string(), self.per_host.to_string(), token.clone(), lease_ms.to_string()];
        match TAKE_SLOTS.evalsha_with_reload::<i64, _, _>(self.redis.next(), keys.clone(), args).await {
            Ok(1) => Slot::Taken(SlotsHeld { keys, token }),
            Ok(_) => Slot::Busy,
            Err(error) => {
                tracing::warn!(%error, recipient, host, "redis unavailable; send concurrency not limited");
                Slot::Taken(SlotsHeld { keys: Vec::new(), token })
            }
        }
    }

    pub async fn give_back(&self, held: SlotsHeld) {
        if held.keys.is_empty() {
            return;
        }
        // Lost: the slots lapse by themselves after the lease.
        let _ = GIVE_BACK_SLOTS.evalsha_with_reload::<i64, _, _>(self.redis.next(), held.keys, vec![held.token]).await;
    }
}

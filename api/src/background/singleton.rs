//! One holder across API instances for a background task that must not run
//! twice at once (the publisher: order; maintenance and expiry: no duplicated
//! sweeps or pruning), without holding a connection: whoever holds the unexpired row
//! of `publisher_lease` under the task's name does the work, renewing it
//! each round. (The table is named for its first user.)

use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

pub struct Singleton {
    name: &'static str,
    /// This process, as the lease knows it.
    holder: Uuid,
    /// How long the lease outlives a holder that stopped renewing it.
    lasts: Duration,
}

impl Singleton {
    pub fn new(name: &'static str, lasts: Duration) -> Self {
        Self { name, holder: Uuid::new_v4(), lasts }
    }

    /// Takes the lease when it is free or expired, or renews ours; whether
    /// this process holds it now.
    pub async fn hold(&self, db: &PgPool) -> sqlx::Result<bool> {
        let held = sqlx::query_scalar!(
            "INSERT INTO publisher_lease (name, holder, until) VALUES ($1, $2, now() + make_interval(secs => $3))
             ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
             WHERE publisher_lease.holder = EXCLUDED.holder OR publisher_lease.until < now()
             RETURNING holder",
            self.name,
            self.holder,
            self.lasts.as_secs_f64(),
        )
        .fetch_optional(db)
        .await?;
        Ok(held.is_some())
    }

    /// Hands the lease back (when stopping), so another instance need not
    /// wait for it to expire.
    pub async fn release(&self, db: &PgPool) {
        let release =
            sqlx::query!("DELETE FROM publisher_lease WHERE name = $1 AND holder = $2", self.name, self.holder);
        let _ = release.execute(db).await;
    }
}

//! Migrations against the release still serving: a deploy migrates while the
//! previous revisions serve (docs/OPERATIONS.md), so a migration must not
//! break what they have prepared on their connections.

use sqlx::{Connection, PgConnection};
use tests::TestDatabase;
use uuid::Uuid;

/// `20261207000003` moved the hot tables' closed sets of values into domains
/// without changing any column's type. A connection of the previous release,
/// holding prepared statements that return those columns and write one, goes
/// on after the migration (a changed result type would fail each read with
/// "cached plan must not change result type" until the connection closed),
/// and the rule still holds for its writes.
#[tokio::test]
async fn the_previous_releases_prepared_statements_survive_the_closed_values_migration() {
    let database = TestDatabase::create_migrated_through(20261207000002).await;
    let mut previous_release = PgConnection::connect(&database.url).await.unwrap();
    let reads = [
        "SELECT status, expired_because, idempotency_key FROM jobs",
        "SELECT aggregate_type FROM events",
        "SELECT status, last_outcome FROM webhook_deliveries",
        "SELECT outcome FROM delivery_attempts",
    ];
    let write = "INSERT INTO delivery_attempts (delivery_id, attempt, started_at, latency_ms, outcome)
                 VALUES ($1, 1, now(), 1, $2)";
    for read in reads {
        sqlx::query(read).fetch_all(&mut previous_release).await.unwrap();
    }
    sqlx::query(write).bind(Uuid::new_v4()).bind("delivered").execute(&mut previous_release).await.unwrap();

    let mut migrate = PgConnection::connect(&database.url).await.unwrap();
    shared::db::MIGRATOR.run(&mut migrate).await.unwrap();

    for read in reads {
        let rows = sqlx::query(read).fetch_all(&mut previous_release).await;
        assert!(rows.is_ok(), "{read}: {rows:?}");
    }
    let written = sqlx::query(write).bind(Uuid::new_v4()).bind("retry").execute(&mut previous_release).await;
    assert!(written.is_ok(), "{written:?}");
    let refused =
        sqlx::query(write).bind(Uuid::new_v4()).bind("lost").execute(&mut previous_release).await.unwrap_err();
    let constraint = refused.as_database_error().and_then(|error| error.constraint());
    assert_eq!(constraint, Some("attempt_outcome_check"), "{refused}");
}

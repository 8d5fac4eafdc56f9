//! The pools' patched release (vendor/README.md): a connection that ended
//! its exchange cleanly goes back without a ping; one that did not (a
//! statement cancelled mid-flight, a dropped transaction, a connection the
//! server killed) is still settled before anyone else gets it, and one left
//! inside a transaction block is closed. Each test uses a pool of one
//! connection, so the next statement gets the same one.

use std::time::Duration;

use secrecy::SecretString;
use shared::db::{Plans, Server, lazy_pool_to};
use sqlx::{Connection, PgConnection, PgPool};
use tests::TestDatabase;

fn one_connection(database: &TestDatabase) -> PgPool {
    lazy_pool_to(Server::Primary, &SecretString::from(database.url.clone()), 1, Plans::Chosen).unwrap()
}

async fn backend_pid(pool: &PgPool) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(pool).await.unwrap()
}

/// On this (single-threaded) runtime no spawned task runs until the test
/// yields: the connection is idle right after the statement only if it went
/// back without the round trip of a ping.
#[tokio::test]
async fn a_connection_that_ended_cleanly_is_back_in_the_pool_at_once() {
    let database = TestDatabase::create().await;
    let pool = one_connection(&database);
    let pid = backend_pid(&pool).await;
    assert_eq!(pool.num_idle(), 1, "the connection is back without a ping");
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(pool.num_idle(), 1, "and so after a committed transaction");
    assert_eq!(backend_pid(&pool).await, pid, "it is the same connection");
}

#[tokio::test]
async fn a_statement_cancelled_mid_flight_leaves_no_answer_behind() {
    let database = TestDatabase::create().await;
    let pool = one_connection(&database);
    let pid = backend_pid(&pool).await;
    let slow = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.3)").fetch_one(&pool);
    assert!(tokio::time::timeout(Duration::from_millis(50), slow).await.is_err(), "cancelled while waiting");
    assert_eq!(pool.num_idle(), 0, "not back before its answer is drained");

    let next: i32 = sqlx::query_scalar("SELECT 2").fetch_one(&pool).await.unwrap();
    assert_eq!(next, 2, "the next statement reads its own answer, not the cancelled one's");
    assert_eq!(backend_pid(&pool).await, pid, "the connection was settled and kept");
}

#[tokio::test]
async fn a_dropped_transaction_is_rolled_back_without_waiting_for_the_next_statement() {
    let database = TestDatabase::create().await;
    let pool = one_connection(&database);
    sqlx::query("CREATE TABLE held (id int PRIMARY KEY)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO held VALUES (1)").execute(&pool).await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM held WHERE id = 1 FOR UPDATE").execute(&mut *tx).await.unwrap();
    drop(tx);

    // Nothing more runs on the pool: only its release can send the ROLLBACK.
    let other = PgPool::connect(&database.url).await.unwrap();
    let unlocked = tests::eventually(5, || async {
        sqlx::query("SELECT id FROM held WHERE id = 1 FOR UPDATE NOWAIT").execute(&other).await.is_ok()
    })
    .await;
    assert!(unlocked, "the dropped transaction's row lock was released");
}

#[tokio::test]
async fn a_connection_the_server_killed_mid_statement_is_not_handed_out_again() {
    let database = TestDatabase::create().await;
    let pool = one_connection(&database);
    let pid = backend_pid(&pool).await;
    let mut admin = PgConnection::connect(&database.url).await.unwrap();
    let slow = sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(2)").fetch_one(&pool);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        sqlx::query("SELECT pg_terminate_backend($1)").bind(pid).execute(&mut admin).await.unwrap();
    };
    let (slow, ()) = tokio::join!(slow, kill);
    assert!(slow.is_err(), "the killed statement fails");

    // Within a second, so the idle-time ping before use does not run.
    let next: i32 = sqlx::query_scalar("SELECT 2").fetch_one(&pool).await.unwrap();
    assert_eq!(next, 2, "the next statement runs on a new connection");
    assert_ne!(backend_pid(&pool).await, pid);
}

/// A `BEGIN` run as a plain statement leaves the connection inside a
/// transaction block with no `ROLLBACK` queued (as a `begin()` cancelled
/// before its answer does): it must not be handed to the next user, whose
/// statements would join that transaction and never commit.
#[tokio::test]
async fn a_connection_left_inside_a_transaction_block_is_closed_not_reused() {
    let database = TestDatabase::create().await;
    let pool = one_connection(&database);
    sqlx::query("CREATE TABLE written (id int PRIMARY KEY)").execute(&pool).await.unwrap();
    let pid = backend_pid(&pool).await;
    sqlx::query("BEGIN").execute(&pool).await.unwrap();

    sqlx::query("INSERT INTO written VALUES (1)").execute(&pool).await.unwrap();
    let mut other = PgConnection::connect(&database.url).await.unwrap();
    let committed: i64 = sqlx::query_scalar("SELECT count(*) FROM written").fetch_one(&mut other).await.unwrap();
    assert_eq!(committed, 1, "the next statement ran outside that transaction and committed");
    assert_ne!(backend_pid(&pool).await, pid, "the connection left in the transaction block was closed");
}

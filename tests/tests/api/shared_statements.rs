//! The worker takes the leases and writes the successes of concurrent
//! pushes in shared statements (`shared::batches`): each push
//! still goes on with its own lease only, is answered only once its own
//! record committed, each record is written once, and a record a constraint
//! refuses fails only its own push.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::future::join_all;
use sqlx::PgPool;
use sqlx::postgres::PgConnection;
use tests::pipeline::{Pipeline, PipelineOptions, spawn_pipeline_with};
use uuid::Uuid;

/// Pushes at once: under the per-recipient send slots (20).
const PUSHES: usize = 16;

/// A pipeline whose relay cannot reach Cloud Tasks, so only the test's own
/// pushes send; and `PUSHES` pending deliveries to one agent.
async fn pending_deliveries() -> (Pipeline, Vec<String>) {
    let pipeline = spawn_pipeline_with(PipelineOptions { endpoint_concurrency: 100, ..Default::default() }).await;
    pipeline.standin.set_available(false);
    let agent = pipeline.agent().await;
    let (client, _) = pipeline.client().await;
    let mut deliveries = Vec::new();
    for _ in 0..PUSHES {
        let job = pipeline.create_job(&client, &agent).await;
        deliveries.push(pipeline.deliveries(&agent.signer, &job).await[0]["id"].as_str().unwrap().to_owned());
    }
    (pipeline, deliveries)
}

fn uuid_of(id: &str) -> Uuid {
    Uuid::parse_str(id.split_once('_').unwrap().1).unwrap()
}

/// Holds every write to `delivery_attempts` back until the returned
/// transaction ends, so records queue in the worker meanwhile.
async fn hold_records(db: &PgPool) -> sqlx::Transaction<'static, sqlx::Postgres> {
    let mut hold = db.begin().await.unwrap();
    sqlx::query("LOCK TABLE delivery_attempts IN SHARE MODE").execute(&mut *hold).await.unwrap();
    hold
}

/// Waits until every push sent and at least one record waits on the lock,
/// then a moment for the other records to queue behind it.
async fn records_waiting(pipeline: &Pipeline, sent: usize) {
    assert!(pipeline.receiver.wait_for(sent, 20).await, "every push sends its webhook");
    let waiting = tests::a_lock_is_awaited(&pipeline.app.db, Some("delivery_attempts")).await;
    assert!(waiting, "a record waits for the held table");
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// (status, attempts, attempt rows) of the deliveries `ids`, in id order.
async fn recorded(db: &mut PgConnection, ids: &[Uuid]) -> Vec<(String, i32, i64)> {
    sqlx::query_as(
        "SELECT d.status, d.attempts, (SELECT count(*) FROM delivery_attempts a WHERE a.delivery_id = d.id)
         FROM webhook_deliveries d WHERE d.id = ANY($1) ORDER BY d.id",
    )
    .bind(ids)
    .fetch_all(db)
    .await
    .unwrap()
}

/// How many transactions wrote the attempt rows of `ids`.
async fn writing_transactions(db: &PgPool, ids: &[Uuid]) -> i64 {
    sqlx::query_scalar("SELECT count(DISTINCT xmin::text) FROM delivery_attempts WHERE delivery_id = ANY($1)")
        .bind(ids)
        .fetch_one(db)
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_successes_share_statements_and_each_push_waits_for_its_own_record() {
    let (pipeline, deliveries) = pending_deliveries().await;
    let ids: Vec<Uuid> = deliveries.iter().map(|id| uuid_of(id)).collect();

    let answered = AtomicUsize::new(0);
    let hold = hold_records(&pipeline.app.db).await;
    let pushes = deliveries.iter().map(|id| async {
        let status = pipeline.push(id, 1).await.status().as_u16();
        answered.fetch_add(1, Ordering::SeqCst);
        status
    });
    let (statuses, ()) = tokio::join!(join_all(pushes), async {
        records_waiting(&pipeline, PUSHES).await;
        assert_eq!(answered.load(Ordering::SeqCst), 0, "no push is answered before its record commits");
        let mut reader = pipeline.app.db.acquire().await.unwrap();
        let unrecorded = recorded(&mut reader, &ids).await;
        assert!(unrecorded.iter().all(|(_, attempts, rows)| *attempts == 0 && *rows == 0), "{unrecorded:?}");
        hold.commit().await.unwrap();
    });
    assert_eq!(statuses, vec![200; PUSHES]);
    let mut reader = pipeline.app.db.acquire().await.unwrap();
    let after = recorded(&mut reader, &ids).await;
    assert_eq!(after, vec![("delivered".to_owned(), 1, 1); PUSHES], "each recorded once, as its push was answered");
    let transactions = writing_transactions(&pipeline.app.db, &ids).await;
    assert!(
        transactions < PUSHES as i64 / 2,
        "{PUSHES} records queued behind the held table are written in a few statements, not one each: {transactions}"
    );
    assert_eq!(pipeline.receiver.received().len(), PUSHES, "each sent once");
}

#[tokio::test]
async fn a_record_postgres_refuses_fails_only_its_own_push() {
    let (pipeline, deliveries) = pending_deliveries().await;
    let ids: Vec<Uuid> = deliveries.iter().map(|id| uuid_of(id)).collect();
    let refused = ids[PUSHES / 2];
    sqlx::raw_sql(
        "CREATE TABLE refused_attempts (delivery_id uuid PRIMARY KEY);
         CREATE FUNCTION refuse_attempt() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
             IF EXISTS (SELECT FROM refused_attempts WHERE delivery_id = NEW.delivery_id) THEN
                 RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_attempt BEFORE INSERT ON delivery_attempts
             FOR EACH ROW EXECUTE FUNCTION refuse_attempt();",
    )
    .execute(&pipeline.app.db)
    .await
    .unwrap();
    sqlx::query("INSERT INTO refused_attempts VALUES ($1)").bind(refused).execute(&pipeline.app.db).await.unwrap();

    let hold = hold_records(&pipeline.app.db).await;
    let pushes: Vec<_> = deliveries.iter().map(|id| pipeline.push(id, 1)).collect();
    let (answers, ()) = tokio::join!(join_all(pushes), async {
        records_waiting(&pipeline, PUSHES).await;
        hold.commit().await.unwrap();
    });
    for (id, answer) in ids.iter().zip(&answers) {
        let expected = if *id == refused { 500 } else { 200 };
        assert_eq!(answer.status().as_u16(), expected, "the push of {id}");
    }
    let mut reader = pipeline.app.db.acquire().await.unwrap();
    let mut in_id_order = ids.clone();
    in_id_order.sort();
    for (id, (status, attempts, rows)) in in_id_order.iter().zip(recorded(&mut reader, &ids).await) {
        if *id == refused {
            assert_eq!((status.as_str(), attempts, rows), ("pending", 0, 0), "the refused record is not written");
        } else {
            assert_eq!((status.as_str(), attempts, rows), ("delivered", 1, 1), "{id} is recorded");
        }
    }

    // Cloud Tasks pushes the failed one again; once Postgres takes it, it is recorded.
    sqlx::raw_sql("DROP TRIGGER refuse_attempt ON delivery_attempts").execute(&pipeline.app.db).await.unwrap();
    let refused_id = &deliveries[PUSHES / 2];
    assert_eq!(pipeline.push(refused_id, 1).await.status(), 200);
    let again = recorded(&mut reader, &[refused]).await;
    assert_eq!(again, vec![("delivered".to_owned(), 1, 1)]);
    assert_eq!(
        pipeline.receiver.received().len(),
        PUSHES + 1,
        "the refused one was sent again, as at-least-once allows"
    );
}

#[tokio::test]
async fn pushes_waiting_on_locked_rows_each_send_once_with_a_lease_of_their_own() {
    let (pipeline, deliveries) = pending_deliveries().await;
    let ids: Vec<Uuid> = deliveries.iter().map(|id| uuid_of(id)).collect();

    // The rows locked, as the relay holds them while it creates their tasks;
    // and every delivery pushed twice at once, as Cloud Tasks may.
    let mut relay = pipeline.app.db.begin().await.unwrap();
    sqlx::query("SELECT id FROM webhook_deliveries WHERE id = ANY($1) FOR UPDATE")
        .bind(&ids)
        .fetch_all(&mut *relay)
        .await
        .unwrap();
    let pushes = deliveries.iter().chain(&deliveries).map(|id| pipeline.push(id, 1));
    let (answers, ()) = tokio::join!(join_all(pushes), async {
        let waiting = tests::a_lock_is_awaited(&pipeline.app.db, None).await;
        assert!(waiting, "the leases wait for the locked rows");
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(pipeline.receiver.received().is_empty(), "nothing is sent while its row is locked");
        relay.commit().await.unwrap();
    });

    let statuses: Vec<u16> = answers.iter().map(|answer| answer.status().as_u16()).collect();
    assert!(statuses.iter().all(|status| [200, 409].contains(status)), "{statuses:?}");
    let mut sent: Vec<String> = pipeline
        .receiver
        .received()
        .iter()
        .map(|webhook| webhook.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    sent.sort();
    let mut expected = deliveries.clone();
    expected.sort();
    assert_eq!(sent, expected, "each delivery sent once, by whichever push took its lease");
    let mut reader = pipeline.app.db.acquire().await.unwrap();
    assert_eq!(recorded(&mut reader, &ids).await, vec![("delivered".to_owned(), 1, 1); PUSHES]);
}

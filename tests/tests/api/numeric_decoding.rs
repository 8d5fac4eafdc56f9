//! The patched `NUMERIC` → `Decimal` decoding (vendor/README.md): a value
//! that fits one integer mantissa is built without `Decimal` arithmetic,
//! any other goes through sqlx's own loop. Both must read what Postgres
//! holds, to the digit and the scale: prices, ratings and scores are shown
//! as decoded.

use rust_decimal::Decimal;
use tests::TestDatabase;

/// Postgres's own text of each value against the decoded `Decimal`'s.
async fn decoded_against_text(database: &TestDatabase, values: &str) -> usize {
    let db = sqlx::PgPool::connect(&database.url).await.unwrap();
    let statement = format!("SELECT n::text, n FROM ({values}) AS v(n)");
    let rows: Vec<(String, Decimal)> = sqlx::query_as(sqlx::AssertSqlSafe(statement)).fetch_all(&db).await.unwrap();
    for (text, decoded) in &rows {
        if text.chars().all(|c| matches!(c, '0' | '.' | '-')) {
            // Postgres sends a zero without digits, and sqlx reads every
            // zero as a plain 0 (a rating shows two decimals by rescaling).
            assert!(decoded.is_zero(), "decoded {text} as {decoded}");
        } else {
            assert_eq!(&decoded.to_string(), text, "decoded {text} as {decoded}");
        }
    }
    rows.len()
}

#[tokio::test]
async fn numerics_decode_to_the_digit_and_the_scale() {
    let database = TestDatabase::create().await;
    let edges = "VALUES (0::numeric), (0.00), (4.75), (44.020000), (-1.50), (1000000000000), (0.000001),
                        (-0.000001), (10000), (99990000), (1.000000000), (100000000.00000001),
                        (79228162514264337593543950335), (-79228162514264337593543950335),
                        (0.1234567890123456789012345678), (7922816251426433759354395033.5),
                        (12345678901234567890.123456789), (5.00), (3.181818), (1e20), (1e-20)";
    assert_eq!(decoded_against_text(&database, edges).await, 21);
    // Every magnitude from 10^-12 to 10^16 at every scale up to 12, both signs.
    let spread = "SELECT round(((random() - 0.5) * 10 ^ e)::numeric, s)
                  FROM generate_series(-12, 16) AS e,
                       generate_series(0, 12) AS s, generate_series(1, 8) AS repeat";
    assert_eq!(decoded_against_text(&database, spread).await, 29 * 13 * 8);
}

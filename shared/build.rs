//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds
//! `migrations/` (the `MIGRATOR` in `db.rs`) but tells Cargo only of the
//! files it read, so a new file would otherwise leave a stale binary.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

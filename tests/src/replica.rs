//! The replica tests' cluster: a throwaway primary and its streaming replica
//! ([`pg_cluster::Cluster`]), with the test's database migrated on the
//! primary before the base backup, so the replica starts with the schema.

use pg_cluster::{Cluster, Server};

use crate::{TestDatabase, settings_for};

/// A primary with a migrated database named `database`, and its replica, both
/// running; stopped and removed when the cluster is dropped.
pub async fn start_cluster(database: &str) -> (Cluster, TestDatabase) {
    let cluster = Cluster::start_primary().expect("a throwaway primary starts");
    let url = cluster.url(Server::Primary, database);
    let settings = settings_for(&url, database, &crate::redis_url(), |_| {});
    shared::db::migrate(&settings).await.expect("the primary's database is created and migrated");
    cluster.start_replica_from_backup().expect("a streaming replica of the primary starts");
    (cluster, TestDatabase { name: database.to_owned(), url })
}

//! Integration tests of the storage crate against database servers of their own (`jobs_storage::testing::servers`).

mod database_tls;

//! [`CounterStore`] for [`PostgresStore`] on the `counters` table: a hit is one upsert
//! statement, atomic across every instance sharing the database.

use async_trait::async_trait;
use swivel_provision::counter::check_counter_key;
use swivel_provision::{CounterStore, StoreError, Window};
use time::OffsetDateTime;

use crate::error::PostgresError;
use crate::store::PostgresStore;

const HIT: &str =
    "INSERT INTO counters (key, window_start, window_end, hits) VALUES ($1, $2, $3, 1)
     ON CONFLICT (key, window_start) DO UPDATE SET hits = counters.hits + 1
     RETURNING hits";
const PURGE: &str = "DELETE FROM counters WHERE window_end <= $1";

#[async_trait]
impl CounterStore for PostgresStore {
    async fn hit(&self, key: &str, window: Window) -> Result<u64, StoreError> {
        check_counter_key(key)?;
        let rows = self
            .rows(HIT, &[&key, &window.start(), &window.end()])
            .await?;
        let row = rows
            .first()
            .ok_or(PostgresError::OutOfRange("counter hit"))?;
        let hits: i64 = row.try_get(0).map_err(PostgresError::query)?;
        Ok(u64::try_from(hits).map_err(|_| PostgresError::OutOfRange("counter hits"))?)
    }

    async fn purge_counters(&self, t: OffsetDateTime) -> Result<u64, StoreError> {
        Ok(self.exec(PURGE, &[&t]).await?)
    }
}

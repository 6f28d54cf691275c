//! Shared pieces of the fuzz targets.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

#[cfg(feature = "server-config")]
pub mod host;

/// Runs one input through `check`; when `SWIVEL_FUZZ_MAX_MS` is set (a long run by hand, not
/// CI, whose time limit is libFuzzer's `-timeout`), an input that takes longer than that many
/// milliseconds panics, so that libFuzzer keeps it as a crash for a look.
pub fn within_budget<R>(check: impl FnOnce() -> R) -> R {
    static BUDGET: OnceLock<Option<Duration>> = OnceLock::new();
    let budget = *BUDGET.get_or_init(|| {
        std::env::var("SWIVEL_FUZZ_MAX_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_millis)
    });
    let start = Instant::now();
    let result = check();
    if let Some(limit) = budget {
        let took = start.elapsed();
        assert!(took <= limit, "an input took {took:?}, over {limit:?}");
    }
    result
}

//! Durations on the command line and latency percentiles.

use std::time::Duration;

use crate::error::BenchError;

/// Parses `20s`, `500ms`, `2m` or a bare number of seconds (`20`).
pub fn parse_duration(raw: &str) -> Result<Duration, BenchError> {
    let raw = raw.trim();
    let bad = || {
        BenchError::Invalid(format!(
            "{raw:?} is not a duration (examples: 20s, 500ms, 2m)"
        ))
    };
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err(bad());
    }
    Ok(d)
}

/// Percentiles of a set of latencies (nearest rank).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatencySummary {
    /// How many latencies.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
}

impl LatencySummary {
    /// Summarises latencies given in microseconds (sorts them). `None` when empty.
    pub fn from_micros(mut micros: Vec<u64>) -> Option<LatencySummary> {
        if micros.is_empty() {
            return None;
        }
        micros.sort_unstable();
        let rank = |p: f64| {
            let r = ((p / 100.0) * micros.len() as f64).ceil() as usize;
            Duration::from_micros(micros[r.clamp(1, micros.len()) - 1])
        };
        Some(LatencySummary {
            count: micros.len(),
            p50: rank(50.0),
            p99: rank(99.0),
            max: Duration::from_micros(*micros.last().expect("not empty")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        for bad in ["", "s", "0s", "1h", "-1s", "1.5s", "ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles() {
        assert!(LatencySummary::from_micros(vec![]).is_none());
        let s = LatencySummary::from_micros((1..=100).rev().collect()).unwrap();
        assert_eq!(s.count, 100);
        assert_eq!(s.p50, Duration::from_micros(50));
        assert_eq!(s.p99, Duration::from_micros(99));
        assert_eq!(s.max, Duration::from_micros(100));
        let one = LatencySummary::from_micros(vec![7]).unwrap();
        assert_eq!(
            (one.p50, one.p99, one.max),
            (
                Duration::from_micros(7),
                Duration::from_micros(7),
                Duration::from_micros(7)
            )
        );
    }
}

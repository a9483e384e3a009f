//! Stage 5: train / val / test by a hash of the cluster id, so every member of a near-duplicate
//! cluster lands in the same split and the same cluster lands there on every run.
//!
//! `u = xxh3(cluster_id, seed) / 2^64` in [0, 1); train when `u < train`, val when
//! `u < train + val`, else test.

use twox_hash::XxHash3_64;

use super::config::SplitConfig;

/// The split a cluster belongs to.
pub fn split_of(cluster_id: i64, config: &SplitConfig) -> &'static str {
    let h = XxHash3_64::oneshot_with_seed(config.seed, &cluster_id.to_le_bytes());
    // The top 53 bits as a uniform f64 in [0, 1).
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    if u < config.train {
        "train"
    } else if u < config.train + config.val {
        "val"
    } else {
        "test"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_met_on_many_clusters() {
        let config = SplitConfig::default();
        let n = 100_000;
        let mut counts = [0usize; 3];
        for id in 0..n {
            counts[["train", "val", "test"]
                .iter()
                .position(|s| *s == split_of(id, &config))
                .unwrap()] += 1;
        }
        // Binomial standard deviation for 5% of 100k is 69 rows; allow ~5 of them.
        assert!((counts[0] as i64 - 90_000).abs() < 500, "{counts:?}");
        assert!((counts[1] as i64 - 5_000).abs() < 350, "{counts:?}");
        assert!((counts[2] as i64 - 5_000).abs() < 350, "{counts:?}");
    }

    #[test]
    fn same_cluster_same_split_and_seed_matters() {
        let a = SplitConfig::default();
        let b = SplitConfig {
            seed: 9,
            ..SplitConfig::default()
        };
        assert!((0..1000).all(|id| split_of(id, &a) == split_of(id, &a)));
        assert!((0..1000).any(|id| split_of(id, &a) != split_of(id, &b)));
    }

    #[test]
    fn degenerate_ratios() {
        let all_test = SplitConfig {
            train: 0.0,
            val: 0.0,
            test: 1.0,
            seed: 0,
        };
        assert!((0..1000).all(|id| split_of(id, &all_test) == "test"));
        let all_train = SplitConfig {
            train: 1.0,
            val: 0.0,
            test: 0.0,
            seed: 0,
        };
        assert!((0..1000).all(|id| split_of(id, &all_train) == "train"));
    }
}

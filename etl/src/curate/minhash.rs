//! Stage 4 candidates and their verification: MinHash signatures of both tag sets, LSH band keys,
//! and the exact similarity of two rows on their tag hashes.
//!
//! Two rows are near duplicates when `min(J(prompt tags), J(negative tags)) ≥ t`, so both fields
//! must agree. Each band therefore takes `r` MinHash values of the prompt tags *and* `r` of the
//! negative tags: two rows share a band key with probability `jp^r · jn^r`, and with `b` bands they
//! become candidates with probability `1 − (1 − jp^r·jn^r)^b`. At the defaults (b = 24, r = 4) a
//! pair at jp = jn = 0.8 becomes a candidate with probability 0.988 (at jp = 0.8, jn = 1 with
//! 1 − 3·10⁻⁶), while an unrelated pair with jp·jn = x does with about b·x⁴. Common tags
//! ("masterpiece", a pasted boilerplate negative) make x large for many unrelated pairs: on the
//! benchmark's synthetic rows, r = 4 and 24 bands give 6.6× fewer candidates than r = 2 and 12
//! bands (79,451 against 528,735 at 100,000 rows; 10,657 verified pairs against 10,658, the one
//! missed pair changing no cluster). Rows sharing only a long boilerplate negative (jp ≈ 0) almost
//! never become candidates, which keeps buckets small.
//!
//! ```text
//! tag ──xxh3(seed)──► h            (the row's tag hashes, sorted: computed once in stage 1)
//! h ──(a_i·h + b_i) >> 32, i < b·r──► min over the field's hashes = sig_i
//! band j key = xxh3(j, prompt sig[j·r .. j·r+r], negative sig[j·r .. j·r+r])
//! ```
//! An empty tag set hashes as one sentinel tag, so two empty fields agree (J(∅, ∅) = 1) and
//! short prompts get signatures like any other.
//!
//! Candidates are verified by the exact rule of [`crate::canon::pair_similarity`], computed on the
//! sorted 64-bit tag hashes ([`hashed_similarity`]) rather than the strings: the same value unless
//! two different tags of the pair collide in 64 bits (odds about 10⁻¹⁷ for a pair of 20-tag rows).

use twox_hash::XxHash3_64;

/// The tag an empty field is hashed as.
const EMPTY_FIELD: &[u8] = b"\x00empty";

/// MinHash permutations and LSH banding for one configuration.
#[derive(Debug, Clone)]
pub struct Lsh {
    seed: u64,
    bands: usize,
    rows_per_band: usize,
    /// Odd multipliers and offsets of the `bands · rows_per_band` hash functions.
    perms: Vec<(u64, u64)>,
}

/// splitmix64: a fixed, well-mixed sequence from a seed (the MinHash permutation parameters).
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The sorted, unique 64-bit hashes of a field's tags (as `i64`, the type SQL stores), seeded
/// with `seed`; what signatures and the verification work on.
pub fn tag_hashes<S: AsRef<str>>(seed: u64, tags: &[S]) -> Vec<i64> {
    let mut hashes: Vec<i64> = tags
        .iter()
        .map(|t| XxHash3_64::oneshot_with_seed(seed, t.as_ref().as_bytes()) as i64)
        .collect();
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

impl Lsh {
    /// `bands` bands of `rows_per_band` values per field, permutations drawn from `seed`.
    pub fn new(bands: usize, rows_per_band: usize, seed: u64) -> Self {
        let mut state = seed;
        let perms = (0..bands * rows_per_band)
            .map(|_| (splitmix64(&mut state) | 1, splitmix64(&mut state)))
            .collect();
        Self {
            seed,
            bands,
            rows_per_band,
            perms,
        }
    }

    /// The seed tag hashes must be taken with ([`tag_hashes`]) for this configuration.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The MinHash signature of one tag set: `bands · rows_per_band` values.
    pub fn signature<S: AsRef<str>>(&self, tags: &[S]) -> Vec<u32> {
        self.signature_of_hashes(&tag_hashes(self.seed, tags))
    }

    /// The MinHash signature of one field from its [`tag_hashes`].
    pub fn signature_of_hashes(&self, hashes: &[i64]) -> Vec<u32> {
        let mut sig = vec![u32::MAX; self.perms.len()];
        let mut add = |h: u64| {
            for (slot, &(a, b)) in sig.iter_mut().zip(&self.perms) {
                let v = (a.wrapping_mul(h).wrapping_add(b) >> 32) as u32;
                *slot = (*slot).min(v);
            }
        };
        if hashes.is_empty() {
            add(XxHash3_64::oneshot_with_seed(self.seed, EMPTY_FIELD));
        }
        for &h in hashes {
            add(h as u64);
        }
        sig
    }

    /// The LSH band keys of a row, one per band, the band index mixed in.
    pub fn band_keys<S: AsRef<str>>(&self, prompt_tags: &[S], negative_tags: &[S]) -> Vec<i64> {
        self.band_keys_of_hashes(
            &tag_hashes(self.seed, prompt_tags),
            &tag_hashes(self.seed, negative_tags),
        )
    }

    /// The LSH band keys of a row from the [`tag_hashes`] of its two fields.
    pub fn band_keys_of_hashes(&self, prompt: &[i64], negative: &[i64]) -> Vec<i64> {
        let (p, n) = (
            self.signature_of_hashes(prompt),
            self.signature_of_hashes(negative),
        );
        let r = self.rows_per_band;
        let mut bytes = Vec::with_capacity(8 + 8 * r);
        (0..self.bands)
            .map(|j| {
                bytes.clear();
                bytes.extend_from_slice(&(j as u64).to_le_bytes());
                for v in p[j * r..(j + 1) * r].iter().chain(&n[j * r..(j + 1) * r]) {
                    bytes.extend_from_slice(&v.to_le_bytes());
                }
                XxHash3_64::oneshot_with_seed(self.seed, &bytes) as i64
            })
            .collect()
    }
}

/// Jaccard similarity of two sorted, unique hash lists, with `J(∅, ∅) = 1`.
pub fn hashed_jaccard(a: &[i64], b: &[i64]) -> f64 {
    crate::canon::sorted_jaccard_by(a, b, |h| h)
}

/// Near-duplicate similarity of two rows from their tag hashes: `min(J(prompt), J(negative))`,
/// [`crate::canon::pair_similarity`] on hashes.
pub fn hashed_similarity(
    prompt_a: &[i64],
    negative_a: &[i64],
    prompt_b: &[i64],
    negative_b: &[i64],
) -> f64 {
    hashed_jaccard(prompt_a, prompt_b).min(hashed_jaccard(negative_a, negative_b))
}

/// Candidate pairs `(a, b)`, `a < b`, among the ids of one LSH bucket. Ids are sorted first; a
/// bucket larger than `max_bucket` pairs each id only with the next `max_bucket - 1` ids, so one
/// huge bucket (a tag shared by half the table) cannot blow up to n² pairs.
pub fn bucket_pairs(ids: &mut [i64], max_bucket: usize) -> Vec<(i64, i64)> {
    ids.sort_unstable();
    let mut pairs = Vec::new();
    for (i, &a) in ids.iter().enumerate() {
        let end = ids.len().min(i + max_bucket);
        pairs.extend(ids[i + 1..end].iter().filter(|&&b| b != a).map(|&b| (a, b)));
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canon;

    fn set(n: std::ops::Range<usize>) -> Vec<String> {
        let mut v: Vec<String> = n.map(|i| format!("tag{i}")).collect();
        v.sort();
        v
    }

    /// Estimate of J(a, b) from two signatures: the share of equal values.
    fn estimate(a: &[u32], b: &[u32]) -> f64 {
        let equal = a.iter().zip(b).filter(|(x, y)| x == y).count();
        equal as f64 / a.len() as f64
    }

    #[test]
    fn signature_estimates_jaccard() {
        // A long signature so the estimate's standard error is small: sqrt(J(1−J)/512) ≈ 0.02.
        let lsh = Lsh::new(256, 2, 7);
        for (a, b) in [
            (set(0..40), set(10..50)),
            (set(0..30), set(0..27)),
            (set(0..20), set(20..40)),
        ] {
            let exact = canon::jaccard(&a, &b);
            let est = estimate(&lsh.signature(&a), &lsh.signature(&b));
            assert!(
                (est - exact).abs() < 0.08,
                "estimate {est} vs exact {exact}"
            );
        }
    }

    #[test]
    fn empty_fields_agree_and_short_ones_get_signatures() {
        let lsh = Lsh::new(4, 2, 0);
        let empty: [&str; 0] = [];
        assert_eq!(lsh.signature(&empty), lsh.signature(&empty));
        assert_ne!(lsh.signature(&["a"]), lsh.signature(&empty));
        assert!(lsh.signature(&["a"]).iter().all(|&v| v < u32::MAX));
    }

    #[test]
    fn identical_rows_share_every_band_and_disjoint_rows_none() {
        let lsh = Lsh::new(12, 2, 0);
        let a = lsh.band_keys(&set(0..10), &set(100..110));
        assert_eq!(a, lsh.band_keys(&set(0..10), &set(100..110)));
        let b = lsh.band_keys(&set(50..60), &set(200..210));
        assert!(a.iter().zip(&b).all(|(x, y)| x != y));
        // Band keys differ between bands even where the values agree.
        let c = lsh.band_keys(&["x"], &["y"]);
        assert_eq!(c.len(), 12);
        assert!(c.windows(2).all(|w| w[0] != w[1]));
    }

    #[test]
    fn same_negative_different_prompt_rarely_collides() {
        let lsh = Lsh::new(12, 2, 0);
        let neg = set(100..120);
        let mut collisions = 0;
        for i in 0..200 {
            let a = lsh.band_keys(&[format!("cat {i}")], &neg);
            let b = lsh.band_keys(&[format!("dog {i}")], &neg);
            collisions += a.iter().zip(&b).filter(|(x, y)| x == y).count();
        }
        assert_eq!(collisions, 0);
    }

    #[test]
    fn different_seeds_give_different_signatures() {
        let tags = set(0..5);
        assert_ne!(
            Lsh::new(4, 2, 0).signature(&tags),
            Lsh::new(4, 2, 1).signature(&tags)
        );
    }

    #[test]
    fn hashed_similarity_is_the_tag_similarity() {
        let rows = [
            ("a, b, c, d", "x, y"),
            ("a, b, c, d, e", "x, y"),
            ("a, b", "y, x, z"),
            ("", ""),
            ("q", ""),
        ];
        let tags: Vec<_> = rows
            .iter()
            .map(|(p, n)| (canon::tags(p), canon::tags(n)))
            .collect();
        for (pa, na) in &tags {
            for (pb, nb) in &tags {
                let h = |t: &[String]| tag_hashes(3, t);
                assert_eq!(
                    hashed_similarity(&h(pa), &h(na), &h(pb), &h(nb)),
                    canon::pair_similarity(pa, na, pb, nb),
                    "{pa:?} {na:?} vs {pb:?} {nb:?}"
                );
            }
        }
    }

    #[test]
    fn bucket_pairs_all_pairs_then_windows() {
        assert_eq!(bucket_pairs(&mut [3, 1, 2], 10), [(1, 2), (1, 3), (2, 3)]);
        assert_eq!(bucket_pairs(&mut [4, 1, 3, 2], 2), [(1, 2), (2, 3), (3, 4)]);
        assert!(bucket_pairs(&mut [5], 10).is_empty());
    }
}

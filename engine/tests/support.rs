//! Shared test helpers: a seeded generator of test data and the finite-difference checker.

/// A tiny deterministic generator (splitmix64) so test data never depends on a crate's RNG.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
}

/// `Σ out·w` in f64: a scalar loss whose gradient w.r.t. `out` is `w`.
pub fn weighted_sum(out: &[f32], w: &[f32]) -> f64 {
    out.iter()
        .zip(w)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum()
}

/// Compares `analytic` with central finite differences of `loss` around `x`, at every index
/// (or `max_points` spread indices). Step `h` and tolerance `atol + rtol·|fd|` are chosen per
/// call; f32 forward passes make `h ≈ 1e-2..1e-3` the sweet spot between truncation and
/// rounding error.
#[allow(clippy::too_many_arguments)]
pub fn check_grad(
    name: &str,
    x: &[f32],
    analytic: &[f32],
    mut loss: impl FnMut(&[f32]) -> f64,
    h: f32,
    atol: f64,
    rtol: f64,
    max_points: usize,
) {
    assert_eq!(x.len(), analytic.len(), "{name}: gradient length");
    let stride = (x.len() / max_points.max(1)).max(1);
    let mut probe = x.to_vec();
    let mut bad = Vec::new();
    let mut checked = 0;
    for i in (0..x.len()).step_by(stride) {
        probe[i] = x[i] + h;
        let plus = loss(&probe);
        probe[i] = x[i] - h;
        let minus = loss(&probe);
        probe[i] = x[i];
        let fd = (plus - minus) / (2.0 * f64::from(h));
        let an = f64::from(analytic[i]);
        checked += 1;
        if (fd - an).abs() > atol + rtol * fd.abs() {
            bad.push((i, fd, an));
        }
    }
    assert!(
        bad.is_empty(),
        "{name}: {} of {checked} gradient entries differ (index, finite diff, analytic): {:?}",
        bad.len(),
        &bad[..bad.len().min(5)]
    );
}

/// [`check_grad`] as the single-op tests use it: central differences with step 1e-2, every
/// entry, within 1e-3 + 1e-2·|finite difference| (f32 ops on values of order 1).
pub fn check_op_grad(name: &str, x: &[f32], analytic: &[f32], loss: impl FnMut(&[f32]) -> f64) {
    check_grad(name, x, analytic, loss, 1e-2, 1e-3, 1e-2, usize::MAX);
}

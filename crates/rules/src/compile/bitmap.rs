//! A fixed-length rule bitmap (bit r = rule r).

/// One bit per rule, in 64-bit words (the layout of `xw_class.bits`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bitmap(Vec<u64>);

impl Bitmap {
    /// All-zero bitmap for `n` rules.
    #[must_use]
    pub fn new(n: usize) -> Self {
        Bitmap(vec![0; n.div_ceil(64).max(1)])
    }

    /// Sets bit `r`.
    pub fn set(&mut self, r: usize) {
        self.0[r / 64] |= 1 << (r % 64);
    }

    /// Clears bit `r`.
    pub fn clear(&mut self, r: usize) {
        self.0[r / 64] &= !(1 << (r % 64));
    }

    /// Whether bit `r` is set.
    #[must_use]
    pub fn get(&self, r: usize) -> bool {
        self.0.get(r / 64).is_some_and(|w| w & (1 << (r % 64)) != 0)
    }

    /// Whether any bit is set.
    #[must_use]
    pub fn any(&self) -> bool {
        self.0.iter().any(|&w| w != 0)
    }

    /// The words.
    #[must_use]
    pub fn words(&self) -> &[u64] {
        &self.0
    }

    /// Set bits, ascending.
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(i, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let b = w.trailing_zeros() as usize;
                w &= w - 1;
                Some(i * 64 + b)
            })
        })
    }
}

//! An in-memory brute-force vector index: one model's L2-normalised vectors in one contiguous
//! `f32` matrix, searched by dot product (= cosine on unit vectors) with a bounded top-k.
//!
//! Brute force is the right tool at this scale: 100k destinations × 384 dimensions is 150 MB
//! scanned linearly, which the CPU streams at memory bandwidth in a few milliseconds (measured in
//! docs/benchmarks.md, "Destination search"); an approximate index (HNSW) would add build time,
//! memory and recall loss for no gain below a few million vectors. pgvector is the documented path
//! when the extension is available (ADR 0012).

use std::cmp::Ordering;
use std::collections::HashMap;

/// Most components a vector may have.
pub const MAX_DIMENSIONS: usize = 4096;

/// Scales `vector` to unit length. `false` (and the vector untouched) when it has no direction:
/// all zeros, or a non-finite component.
pub fn normalize(vector: &mut [f32]) -> bool {
    if vector.iter().any(|x| !x.is_finite()) {
        return false;
    }
    let norm = vector
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return false;
    }
    for x in vector.iter_mut() {
        // Narrowing back to f32 is the point: the index stores f32.
        #[allow(clippy::cast_possible_truncation)]
        let scaled = (f64::from(*x) / norm) as f32;
        *x = scaled;
    }
    true
}

/// `a · b` in f32 with eight independent accumulators, so the compiler vectorises the loop.
#[must_use]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (chunks_a, tail_a) = a.as_chunks::<8>();
    let (chunks_b, tail_b) = b.as_chunks::<8>();
    let mut lanes = [0.0f32; 8];
    for (ca, cb) in chunks_a.iter().zip(chunks_b) {
        for ((lane, x), y) in lanes.iter_mut().zip(ca).zip(cb) {
            *lane += x * y;
        }
    }
    let tail: f32 = tail_a.iter().zip(tail_b).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// `a · b` accumulated in f64: the similarity reported for a result.
#[must_use]
pub fn dot_f64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| f64::from(x) * f64::from(y))
        .sum()
}

/// A search hit: the id and its cosine similarity with the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: i64,
    pub similarity: f64,
}

/// The vectors of one model and dimension.
#[derive(Debug, Clone)]
pub struct VectorIndex {
    model: String,
    dimensions: usize,
    ids: Vec<i64>,
    /// Row `i` is `vectors[i * dimensions..(i + 1) * dimensions]`, the vector of `ids[i]`.
    vectors: Vec<f32>,
    slots: HashMap<i64, usize>,
}

impl VectorIndex {
    /// An empty index for `model` vectors of `dimensions` components.
    #[must_use]
    pub fn new(model: impl Into<String>, dimensions: usize) -> Self {
        Self {
            model: model.into(),
            dimensions,
            ids: Vec::new(),
            vectors: Vec::new(),
            slots: HashMap::new(),
        }
    }

    /// Whether this index holds vectors of `model` with `dimensions` components.
    #[must_use]
    pub fn serves(&self, model: &str, dimensions: usize) -> bool {
        self.model == model && self.dimensions == dimensions
    }

    #[must_use]
    pub fn model(&self) -> &str {
        &self.model
    }

    #[must_use]
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Inserts or replaces `id`'s vector (unit length, `dimensions` components; anything else is
    /// ignored — callers normalise and check first).
    pub fn upsert(&mut self, id: i64, vector: &[f32]) {
        if vector.len() != self.dimensions {
            return;
        }
        if let Some(&slot) = self.slots.get(&id) {
            let start = slot * self.dimensions;
            self.vectors[start..start + self.dimensions].copy_from_slice(vector);
        } else {
            self.slots.insert(id, self.ids.len());
            self.ids.push(id);
            self.vectors.extend_from_slice(vector);
        }
    }

    /// Removes `id`'s vector, if any (the last row moves into its slot).
    pub fn remove(&mut self, id: i64) {
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if slot != last {
            let moved = self.ids[last];
            self.ids[slot] = moved;
            self.vectors.copy_within(
                last * self.dimensions..(last + 1) * self.dimensions,
                slot * self.dimensions,
            );
            self.slots.insert(moved, slot);
        }
        self.ids.pop();
        self.vectors.truncate(last * self.dimensions);
    }

    /// The `limit` vectors closest to `query` (unit length, `dimensions` components), most
    /// similar first, ties by id. The scan ranks in f32; the reported similarity of each hit is
    /// recomputed in f64.
    #[must_use]
    pub fn search(&self, query: &[f32], limit: usize) -> Vec<Hit> {
        if query.len() != self.dimensions || limit == 0 || self.dimensions == 0 {
            return Vec::new();
        }
        // The best `limit` so far, best first; `floor` is the worst score kept once full.
        let mut best: Vec<(f32, i64, usize)> = Vec::with_capacity(limit + 1);
        let mut floor = f32::NEG_INFINITY;
        for (slot, row) in self.vectors.chunks_exact(self.dimensions).enumerate() {
            let score = dot(query, row);
            if best.len() == limit && score < floor {
                continue;
            }
            let id = self.ids[slot];
            let entry = (score, id, slot);
            let at = best.partition_point(|probe| rank(probe, &entry) == Ordering::Less);
            if at < limit {
                best.insert(at, entry);
                best.truncate(limit);
                if best.len() == limit {
                    floor = best[limit - 1].0;
                }
            }
        }
        let mut hits: Vec<Hit> = best
            .into_iter()
            .map(|(_, id, slot)| Hit {
                id,
                similarity: dot_f64(
                    query,
                    &self.vectors[slot * self.dimensions..(slot + 1) * self.dimensions],
                ),
            })
            .collect();
        // The f64 values may order two near-equal f32 scores differently: report them in the
        // order of the values reported.
        hits.sort_by(|a, b| b.similarity.total_cmp(&a.similarity).then(a.id.cmp(&b.id)));
        hits
    }
}

/// Higher score first, then lower id.
fn rank(a: &(f32, i64, usize), b: &(f32, i64, usize)) -> Ordering {
    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        assert!(normalize(&mut v));
        v
    }

    #[test]
    fn normalize_refuses_vectors_without_direction() {
        assert!(!normalize(&mut [0.0, 0.0]));
        assert!(!normalize(&mut [f32::NAN, 1.0]));
        assert!(!normalize(&mut [f32::INFINITY, 1.0]));
        let v = unit(&[3.0, 4.0]);
        assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    }

    #[test]
    fn dot_matches_the_plain_sum_for_every_length() {
        for n in [1usize, 7, 8, 9, 17, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.7).cos()).collect();
            let plain = dot_f64(&a, &b);
            assert!((f64::from(dot(&a, &b)) - plain).abs() < 1e-4, "{n}");
        }
    }

    #[test]
    fn search_ranks_by_cosine_then_id_and_honours_the_limit() {
        let mut index = VectorIndex::new("m", 2);
        index.upsert(1, &unit(&[1.0, 0.0]));
        index.upsert(2, &unit(&[0.0, 1.0]));
        index.upsert(3, &unit(&[1.0, 1.0]));
        index.upsert(4, &unit(&[1.0, 0.0]));
        index.upsert(5, &unit(&[-1.0, 0.0]));
        let hits = index.search(&unit(&[1.0, 0.1]), 3);
        let ids: Vec<i64> = hits.iter().map(|h| h.id).collect();
        assert_eq!(ids, [1, 4, 3]);
        assert!((hits[0].similarity - 0.995_037).abs() < 1e-5);
        let all = index.search(&unit(&[1.0, 0.0]), 50);
        assert_eq!(all.len(), 5);
        assert_eq!(all.last().unwrap().id, 5);
        assert!((all.last().unwrap().similarity + 1.0).abs() < 1e-6);
    }

    #[test]
    fn upsert_replaces_and_remove_keeps_the_rest_addressable() {
        let mut index = VectorIndex::new("m", 2);
        for id in 1..=4 {
            index.upsert(id, &unit(&[1.0, id as f32]));
        }
        index.upsert(2, &unit(&[-1.0, 0.0]));
        index.remove(1);
        index.remove(99);
        assert_eq!(index.len(), 3);
        let hits = index.search(&unit(&[-1.0, 0.0]), 1);
        assert_eq!(hits[0].id, 2);
        // 4 moved into 1's slot: still found with its own vector.
        let hits = index.search(&unit(&[1.0, 4.0]), 1);
        assert_eq!(hits[0].id, 4);
        assert!((hits[0].similarity - 1.0).abs() < 1e-6);
        // Wrong widths are never compared.
        assert!(index.search(&[1.0, 0.0, 0.0], 5).is_empty());
        assert!(index.serves("m", 2) && !index.serves("m", 3) && !index.serves("other", 2));
    }
}

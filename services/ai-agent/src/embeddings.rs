//! The embedder: text → vector, for the semantic destination search.
//!
//! - [`Embedder::Offline`] (default): a lexical embedder. Text is lower-cased, accent-folded and
//!   split into words; common function words are dropped; every remaining word adds its own
//!   feature (weight 3) and its character 3-, 4- and 5-grams with word boundaries (weight 2 at
//!   the start of the word, where the stem is; 0.25 at its end, where inflections are; 1
//!   inside), hashed (FNV-1a, signed) into [`OFFLINE_DIMENSIONS`] dimensions; the sum is
//!   L2-normalised. A text with no content word is embedded from its function words, one with
//!   no word from its characters: only a blank text has no direction.
//!   Texts that share words or stems ("bucear" / "buceo", "playa" / "playas") are close; it has
//!   no notion of synonyms ("nieve" and "esquí" are unrelated to it). Deterministic, no network.
//! - [`Embedder::Remote`]: any OpenAI-compatible `/v1/embeddings` endpoint through rig-core's
//!   embedding model (`EMBEDDINGS_BASE_URL`, `EMBEDDINGS_MODEL`, `EMBEDDINGS_API_KEY`). The
//!   request is `{"model", "input": [texts]}` and nothing else; the dimensions are those of the
//!   first answer, and an answer of another width afterwards is an error.
//!
//! Vectors carry the model's name ([`Embedder::model`]); the flights service compares only
//! vectors of one model and dimension.

use std::sync::OnceLock;
use std::time::Duration;

use rig_core::driver::Model;
use rig_core::error::ProviderError;
use rig_core::providers::openai::wire::Embeddings;

use crate::config::EmbeddingsProvider;
use crate::llm::openai_compatible;
use crate::offline::normalize;

/// The offline embedder's model name, stored with its vectors.
pub const OFFLINE_MODEL: &str = "flightmesh-offline-lexical-v1";
/// The offline embedder's width.
pub const OFFLINE_DIMENSIONS: usize = 384;

/// Weight of a whole word.
const WORD_WEIGHT: f32 = 3.0;
/// Weight of a character n-gram at the start of a word (the stem).
const PREFIX_GRAM_WEIGHT: f32 = 2.0;
/// Weight of a character n-gram at the end of a word (mostly inflection).
const SUFFIX_GRAM_WEIGHT: f32 = 0.25;

/// Words that carry no meaning about a place (Spanish and English), left out of the features so
/// that "¿dónde puedo ir a bucear?" is about diving, not about "dónde".
const STOP_WORDS: &[&str] = &[
    "a",
    "al",
    "algo",
    "alli",
    "an",
    "and",
    "are",
    "at",
    "be",
    "can",
    "como",
    "con",
    "cual",
    "de",
    "del",
    "desde",
    "destino",
    "destinos",
    "do",
    "donde",
    "el",
    "ella",
    "en",
    "entre",
    "es",
    "esta",
    "este",
    "for",
    "from",
    "go",
    "hacer",
    "hay",
    "i",
    "in",
    "ir",
    "is",
    "it",
    "la",
    "las",
    "lo",
    "los",
    "lugar",
    "lugares",
    "mas",
    "me",
    "mi",
    "muy",
    "o",
    "of",
    "on",
    "or",
    "para",
    "place",
    "places",
    "por",
    "puedo",
    "que",
    "quiero",
    "recomienda",
    "recomiendan",
    "recomiendas",
    "recommend",
    "se",
    "see",
    "sin",
    "some",
    "su",
    "sus",
    "the",
    "to",
    "un",
    "una",
    "unas",
    "unos",
    "ver",
    "viajar",
    "want",
    "where",
    "with",
    "y",
    "ya",
    "you",
];

/// Why a text could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The provider refused for now (HTTP 429).
    #[error("the embeddings provider is rate limiting us: {0}")]
    RateLimited(String),
    /// The provider is down or unreachable (HTTP 5xx, connection failure).
    #[error("the embeddings provider is unavailable: {0}")]
    Unavailable(String),
    /// No answer within the deadline.
    #[error("the embeddings provider did not answer within {0:?}")]
    Timeout(Duration),
    /// Anything else: refused credentials or request (4xx), a malformed answer, the wrong
    /// number or width of vectors.
    #[error("the embeddings provider failed: {0}")]
    Failed(String),
}

/// Text → vector.
pub enum Embedder {
    Offline,
    Remote {
        /// Boxed: rig's model is large, and the offline variant is empty.
        model: Box<Model<Embeddings>>,
        name: String,
        timeout: Duration,
        /// The width of the first answer; every later answer must match it.
        dimensions: OnceLock<usize>,
    },
}

impl Embedder {
    /// The embedder `provider` describes.
    #[must_use]
    pub fn new(provider: &EmbeddingsProvider) -> Self {
        match provider {
            EmbeddingsProvider::Offline => Self::Offline,
            EmbeddingsProvider::OpenAiCompatible {
                base_url,
                api_key,
                model,
                timeout,
            } => Self::Remote {
                // No declared width: none is sent, and the first answer's is adopted.
                model: Box::new(
                    openai_compatible(base_url, api_key.as_ref())
                        .client()
                        .embedding(model, None),
                ),
                name: model.clone(),
                timeout: *timeout,
                dimensions: OnceLock::new(),
            },
        }
    }

    /// The model name stored with the vectors.
    #[must_use]
    pub fn model(&self) -> &str {
        match self {
            Self::Offline => OFFLINE_MODEL,
            Self::Remote { name, .. } => name,
        }
    }

    /// One vector per text, in order.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        match self {
            Self::Offline => Ok(texts.iter().map(|text| offline_embedding(text)).collect()),
            Self::Remote {
                model,
                timeout,
                dimensions,
                ..
            } => {
                let response = tokio::time::timeout(*timeout, model.call(texts.to_vec()))
                    .await
                    .map_err(|_| EmbedError::Timeout(*timeout))?
                    .map_err(classify)?;
                if response.embeddings.len() != texts.len() {
                    return Err(EmbedError::Failed(format!(
                        "{} vectors for {} texts",
                        response.embeddings.len(),
                        texts.len()
                    )));
                }
                let vectors: Vec<Vec<f32>> = response
                    .embeddings
                    .into_iter()
                    .map(|embedding| {
                        // The wire's f64 narrowed to the stored f32.
                        #[allow(clippy::cast_possible_truncation)]
                        embedding.vec.into_iter().map(|x| x as f32).collect()
                    })
                    .collect();
                for vector in &vectors {
                    let expected = *dimensions.get_or_init(|| vector.len());
                    if vector.is_empty() || vector.len() != expected {
                        return Err(EmbedError::Failed(format!(
                            "a vector of {} dimensions, expected {expected}",
                            vector.len()
                        )));
                    }
                }
                Ok(vectors)
            }
        }
    }

    /// One text's vector.
    pub async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        self.embed(&[text.to_owned()])
            .await?
            .pop()
            .ok_or_else(|| EmbedError::Failed("no vector".into()))
    }
}

/// Rate limits and outages apart; everything else is a failure.
fn classify(err: ProviderError) -> EmbedError {
    let status = err.provider_response_status().map(|s| s.as_u16());
    match (status, &err) {
        (Some(429), _) => EmbedError::RateLimited(err.to_string()),
        (Some(500..=599), _) | (None, ProviderError::Http(_)) => {
            EmbedError::Unavailable(err.to_string())
        }
        _ => EmbedError::Failed(err.to_string()),
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms (the vectors are stored).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

fn add_feature(vector: &mut [f32], feature: &str, weight: f32) {
    let hash = fnv1a(feature.as_bytes());
    // The modulus is below OFFLINE_DIMENSIONS, so it fits usize.
    #[allow(clippy::cast_possible_truncation)]
    let slot = (hash % vector.len() as u64) as usize;
    // A sign bit from the other end of the hash: collisions cancel out on average instead of
    // piling up.
    let sign = if hash >> 63 == 0 { 1.0 } else { -1.0 };
    vector[slot] += sign * weight;
}

/// The offline embedding of `text` (module docs). A text with no content word is embedded from
/// what it has (its function words, else its characters), so only a blank text is all zeros.
#[must_use]
pub fn offline_embedding(text: &str) -> Vec<f32> {
    let mut vector = vec![0.0f32; OFFLINE_DIMENSIONS];
    let normalized = normalize(text);
    let words: Vec<&str> = normalized.split_whitespace().collect();
    let content: Vec<&str> = words
        .iter()
        .copied()
        .filter(|word| !STOP_WORDS.contains(word))
        .collect();
    if !content.is_empty() {
        add_words(&mut vector, &content);
    } else if !words.is_empty() {
        add_words(&mut vector, &words);
    } else {
        // Symbols only ("¡¡!!", "☀️"): each character is a feature.
        for c in text
            .chars()
            .filter(|c| !c.is_whitespace())
            .flat_map(char::to_lowercase)
        {
            add_feature(&mut vector, &format!("c:{c}"), 1.0);
        }
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut vector {
            *x /= norm;
        }
    }
    vector
}

/// Each word's own feature and its character n-grams.
fn add_words(vector: &mut [f32], words: &[&str]) {
    for &word in words {
        add_feature(vector, &format!("w:{word}"), WORD_WEIGHT);
        let bounded: Vec<char> = format!("<{word}>").chars().collect();
        for n in 3..=5 {
            for gram in bounded.windows(n) {
                // Spanish and English inflect at the end of words: grams at the start carry the
                // stem, grams at the end mostly the inflection ("-es", "-ales") shared by
                // unrelated words.
                let weight = if gram[0] == '<' {
                    PREFIX_GRAM_WEIGHT
                } else if gram[n - 1] == '>' {
                    SUFFIX_GRAM_WEIGHT
                } else {
                    1.0
                };
                let gram: String = gram.iter().collect();
                add_feature(vector, &format!("g:{gram}"), weight);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_blank_text_has_no_direction() {
        let zero = |text: &str| offline_embedding(text).iter().all(|&x| x == 0.0);
        assert!(zero("") && zero(" \t\n"));
        for text in ["el", "de la", "¡¡!!", "☀️", "0"] {
            assert!(!zero(text), "{text:?} is stored with a direction");
        }
        // The fallback does not touch texts with content words.
        assert!(cosine("el mar", "mar") > 0.999);
    }

    fn cosine(a: &str, b: &str) -> f32 {
        offline_embedding(a)
            .iter()
            .zip(offline_embedding(b))
            .map(|(x, y)| x * y)
            .sum()
    }

    #[test]
    fn offline_vectors_are_unit_length_and_deterministic() {
        let v = offline_embedding("Playas de arena blanca y buceo");
        assert_eq!(v.len(), OFFLINE_DIMENSIONS);
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(v, offline_embedding("PLAYAS de arena blanca y buceo!"));
        // Function words only: embedded from them (stored, never refused), apart from content.
        assert!(cosine("¿? de la", "playas de arena") < 0.3);
    }

    #[test]
    fn shared_words_and_stems_are_close_unrelated_texts_are_not() {
        let diving = "Playas de arena blanca, buceo en arrecifes de coral y snorkel";
        let skiing = "Esquí en montañas nevadas, pistas de nieve y refugios alpinos";
        let query = "¿Dónde puedo ir a bucear en arrecifes?";
        assert!(cosine(query, diving) > cosine(query, skiing) + 0.2);
        assert!(cosine("esquiar en la nieve", skiing) > cosine("esquiar en la nieve", diving));
        // Accents and case do not matter.
        assert!((cosine("Esquí", "esqui") - 1.0).abs() < 1e-5);
        // A stem shared: bucear ~ buceo (6 of their character n-grams in common).
        assert!(cosine("bucear", "buceo") > 0.2);
        assert!(cosine("bucear", "montaña") < 0.15);
    }
}

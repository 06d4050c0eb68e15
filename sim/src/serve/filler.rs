//! Deterministic filler text: one word per output token, drawn from a seeded stream.

use breakwater_core::Rng;
use breakwater_core::rng::seeded;

/// The vocabulary: short, plain words, one token each.
const WORDS: [&str; 64] = [
    "the", "storm", "passes", "over", "a", "quiet", "harbour", "and", "waves", "break", "on",
    "stone", "while", "ships", "wait", "for", "calm", "water", "light", "returns", "to", "sea",
    "wind", "turns", "north", "tide", "rises", "slowly", "boats", "drift", "near", "shore", "rain",
    "falls", "across", "grey", "sky", "gulls", "circle", "above", "old", "pier", "ropes", "hold",
    "fast", "sails", "rest", "until", "morning", "clouds", "clear", "at", "last", "sun", "warms",
    "deck", "crew", "sings", "as", "they", "sail", "home", "again", "soon",
];

/// The `n` tokens of the answer seeded by `seed`: words, each after the first with its
/// separating space, so the answer is their concatenation.
pub(crate) fn tokens(seed: u64, n: u32) -> Vec<&'static str> {
    let mut rng = seeded(seed);
    (0..n)
        .map(|i| {
            // `up_to(63)` is at most 63: the index is in range of both tables.
            let w = rng.up_to(WORDS.len() as u64 - 1) as usize;
            if i == 0 { WORDS[w] } else { SPACED[w] }
        })
        .collect()
}

/// Each word with a leading space, so that tokens are `&'static str` slices.
const SPACED: [&str; 64] = [
    " the", " storm", " passes", " over", " a", " quiet", " harbour", " and", " waves", " break",
    " on", " stone", " while", " ships", " wait", " for", " calm", " water", " light", " returns",
    " to", " sea", " wind", " turns", " north", " tide", " rises", " slowly", " boats", " drift",
    " near", " shore", " rain", " falls", " across", " grey", " sky", " gulls", " circle",
    " above", " old", " pier", " ropes", " hold", " fast", " sails", " rest", " until", " morning",
    " clouds", " clear", " at", " last", " sun", " warms", " deck", " crew", " sings", " as",
    " they", " sail", " home", " again", " soon",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_words_one_token_each() {
        let a = tokens(7, 50);
        assert_eq!(a, tokens(7, 50));
        assert_ne!(a, tokens(8, 50));
        assert_eq!(a.len(), 50);
        assert!(!a[0].starts_with(' '));
        assert!(
            a[1..]
                .iter()
                .all(|t| t.starts_with(' ') && !t[1..].contains(' '))
        );
        assert_eq!(a.concat().split(' ').count(), 50);
        assert!(tokens(1, 0).is_empty());
        for (w, s) in WORDS.iter().zip(SPACED) {
            assert_eq!(&s[1..], *w);
        }
    }
}

//! Keys that name what shared state belongs to.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// A provider and model pair: the unit that has its own circuit breaker and
/// Retry-After cooldown (providers rate-limit per model).
///
/// Two words: the stable hash of its text, computed once by [`Key::new`], and one
/// thin `Arc` to the names. Cloning is one reference-count increment; compare and
/// order by value. Hashing a key writes that one number, so a look-up reads no
/// string, and comparing two keys first compares their hashes, then their `Arc`s'
/// pointers (a key cloned from another shares its `Arc`, so a registry look-up with a
/// bound route's key reads no string), and only then the names. Small, so that a
/// table of keys stays small: the registry's slots hold them inline. Serialized, it
/// is the two names.
#[derive(Clone, Eq, Serialize, Deserialize)]
#[serde(from = "KeyParts", into = "KeyParts")]
pub struct Key {
    /// [`stable_hash`] of the two names.
    hash: u64,
    names: Arc<Names>,
}

/// A key's names, one after the other in one string.
#[derive(PartialEq, Eq)]
struct Names {
    text: Box<str>,
    /// Where the model's name starts in `text`.
    split: usize,
}

impl Key {
    /// The key for `model` at `provider`, e.g. `Key::new("anthropic", "claude-sonnet-4-5")`.
    #[must_use]
    pub fn new(provider: &str, model: &str) -> Key {
        let mut text = String::with_capacity(provider.len() + model.len());
        text.push_str(provider);
        text.push_str(model);
        Key {
            hash: stable_hash(provider, model),
            names: Arc::new(Names {
                text: text.into_boxed_str(),
                split: provider.len(),
            }),
        }
    }

    /// The provider's name, as configured (`"anthropic"`, `"openai"`, `"gemini"`, …).
    #[must_use]
    pub fn provider(&self) -> &str {
        &self.names.text[..self.names.split]
    }

    /// The model's name at that provider.
    #[must_use]
    pub fn model(&self) -> &str {
        &self.names.text[self.names.split..]
    }

    /// FNV-1a over `provider/model`: the same in every process and on every machine
    /// (std's `HashMap` hasher is randomly keyed, so it cannot seed anything that must
    /// repeat). The registry mixes it into each key's breaker seed.
    #[must_use]
    pub fn stable_hash(&self) -> u64 {
        self.hash
    }
}

/// FNV-1a over `provider/model`.
fn stable_hash(provider: &str, model: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in provider.bytes().chain([b'/']).chain(model.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl Hash for Key {
    /// Writes the stable hash alone: equal keys have equal text, hence equal hashes.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl PartialEq for Key {
    /// Equal names. (Comparing the text first would read both keys' strings: a look-up
    /// would miss the cache for names it holds the very `Arc` of.)
    fn eq(&self, other: &Key) -> bool {
        self.hash == other.hash
            && (Arc::ptr_eq(&self.names, &other.names) || self.names == other.names)
    }
}

impl Ord for Key {
    /// By provider, then model (the hash plays no part: the order is the names').
    fn cmp(&self, other: &Key) -> Ordering {
        (self.provider(), self.model()).cmp(&(other.provider(), other.model()))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A key's serialized form: the two names.
#[derive(Serialize, Deserialize)]
struct KeyParts {
    provider: String,
    model: String,
}

impl From<KeyParts> for Key {
    fn from(parts: KeyParts) -> Key {
        Key::new(&parts.provider, &parts.model)
    }
}

impl From<Key> for KeyParts {
    fn from(key: Key) -> KeyParts {
        KeyParts {
            provider: key.provider().to_owned(),
            model: key.model().to_owned(),
        }
    }
}

/// A [`BuildHasher`] for maps keyed by [`Key`]: it takes the key's stable hash and
/// spreads its bits (a multiply and a shift, the finalizer of a Fibonacci hash), so a
/// look-up costs a handful of instructions instead of SipHash over two strings.
///
/// Not a general-purpose hasher: anything other than one `write_u64` is folded in
/// with FNV-1a. Keys are configuration, not attacker-chosen input, so the lack of a
/// random seed (HashDoS resistance) costs nothing here.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyHasher(u64);

impl BuildHasher for KeyHasher {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher(0)
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        // Multiply by 2^64 / φ and fold the high half down: every input bit reaches
        // the top bits (hashbrown's control bytes) and the bottom ones (its buckets).
        let product = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        // Truncations are the point: the two halves of the product.
        (product as u64) ^ ((product >> 64) as u64)
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider(), self.model())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_provider_slash_model() {
        let key = Key::new("anthropic", "claude-haiku-4-5");
        assert_eq!(key.to_string(), "anthropic/claude-haiku-4-5");
        assert_eq!(format!("{key:?}"), "Key(anthropic/claude-haiku-4-5)");
        assert_eq!(key.provider(), "anthropic");
        assert_eq!(key.model(), "claude-haiku-4-5");
        assert_eq!(key, key.clone());
    }

    #[test]
    fn hash_eq_and_order_agree_with_the_names() {
        use std::collections::HashMap;
        let a = Key::new("anthropic", "claude-haiku-4-5");
        let b = Key::new("anthropic", "claude-haiku-4-5");
        assert_eq!(a, b);
        assert_eq!(a.stable_hash(), b.stable_hash());
        assert_ne!(Key::new("a", "b"), Key::new("ab", ""));
        assert_ne!(
            Key::new("a", "b").stable_hash(),
            Key::new("ab", "").stable_hash()
        );
        // The order is the names', whatever the hashes.
        let mut keys = [Key::new("b", "a"), Key::new("a", "z"), Key::new("a", "b")];
        keys.sort();
        let names: Vec<String> = keys.iter().map(Key::to_string).collect();
        assert_eq!(names, ["a/b", "a/z", "b/a"]);
        // A map with the key hasher finds keys made separately.
        let mut map: HashMap<Key, usize, KeyHasher> = HashMap::default();
        for i in 0..1000 {
            map.insert(Key::new("p", &format!("m-{i}")), i);
        }
        for i in 0..1000 {
            assert_eq!(map.get(&Key::new("p", &format!("m-{i}"))), Some(&i));
        }
        assert_eq!(map.get(&Key::new("p", "m-1000")), None);
    }

    #[test]
    fn equal_hashes_are_not_enough_and_shared_names_are() {
        let key = |hash, model: &str| Key {
            hash,
            ..Key::new("p", model)
        };
        // Separate allocations compare by text, whatever the hashes say.
        assert_eq!(key(1, "m"), key(1, "m"));
        assert_ne!(key(1, "m"), key(1, "n"));
        assert_ne!(key(1, "m"), key(2, "m"));
        // The split is part of the names: "ab" + "" is not "a" + "b".
        assert_ne!(
            key(1, "b"),
            Key {
                hash: 1,
                ..Key::new("pb", "")
            }
        );
        // The same allocation is the same names.
        let a = key(1, "m");
        let b = Key {
            hash: 1,
            names: Arc::clone(&a.names),
        };
        assert_eq!(a, b);
        assert_eq!(size_of::<Key>(), 16, "two words");
    }

    #[test]
    fn the_hash_is_fixed_and_survives_serde() {
        // FNV-1a of "a/b": the same on every machine and in every release.
        assert_eq!(Key::new("a", "b").stable_hash(), 0xe620_c319_0468_cf61);
        let key = Key::new("openai", "gpt-4o-mini");
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#"{"provider":"openai","model":"gpt-4o-mini"}"#);
        let back: Key = serde_json::from_str(&json).unwrap();
        assert_eq!(back, key);
        assert_eq!(back.stable_hash(), key.stable_hash());
    }

    #[test]
    fn the_key_hasher_spreads_bits_and_folds_other_writes() {
        let hash = |n: u64| {
            let mut h = KeyHasher::default().build_hasher();
            h.write_u64(n);
            h.finish()
        };
        assert_ne!(hash(1) >> 57, hash(2) >> 57);
        // The product's high half is folded into the low one: the top input bit alone
        // leaves only bit 63 in the low half, and the rest comes from the high half.
        assert_eq!(hash(1 << 63), (1 << 63) ^ (0x9e37_79b9_7f4a_7c15 >> 1));
        // Over keys' stable hashes (what a map feeds it), half the bits come out set:
        // the fold favours neither ones nor zeros (64,000 bits; σ ≈ 126).
        let ones: u32 = (0..1000)
            .map(|i| hash(Key::new("p", &format!("m-{i}")).stable_hash()).count_ones())
            .sum();
        assert!(
            (31_000..33_000).contains(&ones),
            "{ones} of 64,000 bits set"
        );
        let mut bytes = KeyHasher::default().build_hasher();
        bytes.write(b"ab");
        let mut other = KeyHasher::default().build_hasher();
        other.write(b"ba");
        assert_ne!(bytes.finish(), other.finish());
        // A byte is mixed in, not or-ed: after a first byte of 1 the state's low bit is
        // set, so a second byte of 1 or of 0 must still differ.
        let written = |data: &[u8]| {
            let mut h = KeyHasher::default().build_hasher();
            h.write(data);
            h.finish()
        };
        assert_ne!(written(&[1, 1]), written(&[1, 0]));
        // A key hashes as its stable hash: keys with different names land apart.
        let (a, b) = (Key::new("p", "a"), Key::new("p", "b"));
        assert_eq!(KeyHasher::default().hash_one(&a), hash(a.stable_hash()));
        assert_ne!(
            KeyHasher::default().hash_one(&a),
            KeyHasher::default().hash_one(&b)
        );
    }
}

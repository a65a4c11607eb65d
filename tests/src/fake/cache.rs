//! What a provider keeps per organization between requests, as the real services do: the
//! prompt cache (Anthropic's explicit `cache_control` breakpoints; OpenAI's and Gemini's
//! implicit prefix caching) and the Responses API's state (a `previous_response_id` and the
//! encrypted reasoning items exist only in the organization that produced them).
//!
//! A credential (an API key, or an OAuth account's label) stands for its organization. Token
//! counts are the fake's usual stand-in, a quarter of the bytes of each piece of the prompt.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The shortest prefix the providers cache (Anthropic's Sonnet/Opus minimum; OpenAI's and
/// Gemini Flash's implicit caches start at the same size).
pub const MIN_CACHEABLE_TOKENS: u64 = 1024;
/// OpenAI reports cached tokens in steps of this many.
const OPENAI_CACHE_STEP: u64 = 128;
/// How far before a breakpoint Anthropic looks for an earlier cached prefix.
const LOOKBACK_BLOCKS: usize = 20;
/// Most cache entries kept (the oldest expire first), so the fake stays bounded in a long
/// benchmark.
const MAX_ENTRIES: usize = 200_000;

/// What a request read from and wrote to its organization's prompt cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheUse {
    /// Every prompt token of the request.
    pub total: u64,
    pub read: u64,
    pub written: u64,
}

impl CacheUse {
    /// The input that was neither read from nor written to the cache (Anthropic's
    /// `input_tokens`).
    pub fn uncached(&self) -> u64 {
        self.total.saturating_sub(self.read + self.written)
    }
}

/// The prompt caches of every credential.
pub(crate) struct PromptCaches {
    /// Default lifetime of an entry (Anthropic's 5 minutes; a hit refreshes it).
    ttl: Duration,
    entries: Mutex<HashMap<(String, u64), Instant>>,
}

/// One piece of a prompt, in order: a tool, a system block, a message's content block.
struct Piece {
    hash: u64,
    tokens: u64,
    /// Its `cache_control`, with the lifetime it asks for.
    breakpoint: Option<Duration>,
}

/// The piece's content as it is cached and counted: without its `cache_control`, which only
/// marks where a cached prefix ends.
fn content(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let kept: serde_json::Map<String, Value> = map
                .iter()
                .filter(|(k, _)| *k != "cache_control")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            Value::Object(kept).to_string()
        }
        other => other.to_string(),
    }
}

impl PromptCaches {
    pub(crate) fn new(ttl: Duration) -> PromptCaches {
        PromptCaches {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// An Anthropic Messages request: the longest cached prefix at a block boundary up to
    /// [`LOOKBACK_BLOCKS`] before each breakpoint is read; the prefix up to the last breakpoint
    /// is written (at the breakpoints' lifetimes) beyond what was read.
    pub(crate) fn anthropic(&self, credential: &str, request: &Value) -> CacheUse {
        let mut pieces = Vec::new();
        let mut push = |v: &Value| {
            let breakpoint =
                v.get("cache_control")
                    .map(|c| match c.get("ttl").and_then(Value::as_str) {
                        Some("1h") => Duration::from_secs(3600),
                        _ => self.ttl,
                    });
            pieces.push((v.clone(), breakpoint));
        };
        for tool in request
            .get("tools")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            push(tool);
        }
        match request.get("system") {
            Some(Value::Array(blocks)) => blocks.iter().for_each(&mut push),
            Some(text) => push(text),
            None => {}
        }
        for message in request
            .get("messages")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            match message.get("content") {
                Some(Value::Array(blocks)) => blocks.iter().for_each(&mut push),
                Some(text) => push(text),
                None => {}
            }
        }
        let pieces = prefixes(pieces.iter().map(|(v, b)| (v, *b)));
        let total = pieces.last().map_or(0, |p| p.tokens);
        let now = Instant::now();
        let mut entries = self.lock();
        let mut read = 0;
        let mut hit = None;
        let breakpoints = pieces
            .iter()
            .enumerate()
            .filter(|(_, p)| p.breakpoint.is_some());
        for (i, _) in breakpoints {
            for j in (i.saturating_sub(LOOKBACK_BLOCKS)..=i).rev() {
                let key = (credential.to_owned(), pieces[j].hash);
                if entries.get(&key).is_some_and(|exp| *exp > now) && pieces[j].tokens > read {
                    read = pieces[j].tokens;
                    hit = Some(key);
                    break;
                }
            }
        }
        if let Some(key) = hit {
            // A hit refreshes the entry's lifetime.
            entries.insert(key, now + self.ttl);
        }
        let mut last = 0;
        for p in pieces.iter().filter(|p| p.breakpoint.is_some()) {
            if p.tokens >= MIN_CACHEABLE_TOKENS && p.tokens > read {
                let ttl = p.breakpoint.unwrap_or(self.ttl);
                insert(&mut entries, (credential.to_owned(), p.hash), now + ttl);
                last = last.max(p.tokens);
            }
        }
        CacheUse {
            total,
            read,
            written: last.saturating_sub(read),
        }
    }

    /// OpenAI's and Gemini's automatic caching: the longest prefix of whole items that an
    /// earlier request of the credential had is read (OpenAI counts it in steps of 128
    /// tokens); every prefix of this request is cached for the next. `items` are the tools,
    /// instructions and turns in order.
    pub(crate) fn implicit(&self, credential: &str, items: &[&Value], openai: bool) -> CacheUse {
        let pieces = prefixes(items.iter().map(|v| (*v, None)));
        let total = pieces.last().map_or(0, |p| p.tokens);
        let now = Instant::now();
        let mut entries = self.lock();
        let read = pieces
            .iter()
            .rev()
            .find(|p| {
                entries
                    .get(&(credential.to_owned(), p.hash))
                    .is_some_and(|exp| *exp > now)
            })
            .map_or(0, |p| p.tokens);
        for p in pieces.iter().filter(|p| p.tokens >= MIN_CACHEABLE_TOKENS) {
            insert(
                &mut entries,
                (credential.to_owned(), p.hash),
                now + self.ttl,
            );
        }
        let read = if read < MIN_CACHEABLE_TOKENS {
            0
        } else if openai {
            read / OPENAI_CACHE_STEP * OPENAI_CACHE_STEP
        } else {
            read
        };
        CacheUse {
            total,
            read,
            written: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), Instant>> {
        self.entries.lock().expect("fake prompt cache poisoned")
    }
}

/// Each piece with the hash and token count of the prefix that ends with it.
fn prefixes<'a>(pieces: impl Iterator<Item = (&'a Value, Option<Duration>)>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut hash = 0u64;
    let mut tokens = 0u64;
    for (v, breakpoint) in pieces {
        let content = content(v);
        let mut h = DefaultHasher::new();
        hash.hash(&mut h);
        content.hash(&mut h);
        hash = h.finish();
        tokens += (content.len() as u64 / 4).max(1);
        out.push(Piece {
            hash,
            tokens,
            breakpoint,
        });
    }
    out
}

fn insert(entries: &mut HashMap<(String, u64), Instant>, key: (String, u64), expires: Instant) {
    if entries.len() >= MAX_ENTRIES {
        let now = Instant::now();
        entries.retain(|_, exp| *exp > now);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
    }
    entries.insert(key, expires);
}

/// Which credential produced each Responses id and encrypted reasoning item.
#[derive(Default)]
pub(crate) struct ResponsesState {
    owners: Mutex<HashMap<String, String>>,
}

impl ResponsesState {
    pub(crate) fn produced(&self, item: String, credential: &str) {
        self.owners
            .lock()
            .expect("fake responses state poisoned")
            .insert(item, credential.to_owned());
    }

    pub(crate) fn owner(&self, item: &str) -> Option<String> {
        self.owners
            .lock()
            .expect("fake responses state poisoned")
            .get(item)
            .cloned()
    }
}

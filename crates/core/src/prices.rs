//! What tokens cost: the built-in price table, the user's overrides from the config, and the
//! cost of one request's token usage.
//!
//! The built-in table is `data/prices.json`, written by `scripts/update-prices` from
//! genai-prices (pydantic, MIT) for the built-in providers, and embedded at build time. Each
//! provider's models are in genai-prices' order: the first whose match clause accepts the
//! (lowercased) model name prices it. Prices are USD per million tokens ("MTok").
//!
//! A model without a price has none: every lookup returns `None` rather than a made-up zero,
//! so a screen can say "no price" instead of "$0".

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde::{Deserialize, Serialize};
use wildmatch::WildMatch;

use crate::config::Config;

/// The highest rate a price override may give, USD per million tokens. The dearest real
/// models cost hundreds; a rate in the wrong unit (per token, per thousand) is caught, and
/// no token count can push a cost past what an `f64` holds.
pub const MAX_USD_PER_MTOK: f64 = 10_000.0;

/// Most price overrides one provider may have.
pub const MAX_OVERRIDES_PER_PROVIDER: usize = 1_000;

/// Longest model glob of a price override, in characters.
pub const MAX_GLOB_CHARS: usize = 200;

/// Models whose lookup [`Prices`] remembers, over all providers; when full it starts over.
/// Clients send a handful of model names, but which ones is theirs to choose.
const REMEMBERED: usize = 256;

const TOKENS_PER_MTOK: f64 = 1_000_000.0;

/// The built-in table, parsed on first use. It is part of the program, so a table that does
/// not parse is a bug (the tests below parse it).
static BUILT_IN: LazyLock<Table> = LazyLock::new(|| {
    serde_json::from_str(include_str!("../data/prices.json"))
        .expect("the embedded price table parses (see the prices tests)")
});

/// Where the built-in prices come from and the date they were taken, for the README and the
/// dashboard: `("genai-prices 0.2.5 (github.com/pydantic/genai-prices, MIT)", "2026-12-06")`.
pub fn built_in_source() -> (&'static str, &'static str) {
    (&BUILT_IN.source, &BUILT_IN.taken)
}

/// The tokens of one request, as Keyway's token counter normalizes them for every provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Every prompt token, cached ones included (Anthropic reports cache reads and writes
    /// beside `input_tokens`; the counter adds them in, as OpenAI and Gemini do already).
    pub input: u64,
    /// Prompt tokens read from the prompt cache.
    pub cache_read: u64,
    /// Prompt tokens written to the prompt cache, of either lifetime.
    pub cache_write: u64,
    /// The part of `cache_write` written with a 1-hour lifetime (0 when unknown).
    pub cache_write_1h: u64,
    pub output: u64,
}

/// What a request cost, in USD.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Cost {
    pub usd: f64,
    /// What the prompt cache saved: cache reads at the input rate minus what they cost.
    pub saved_usd: f64,
}

/// Rates in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Rates {
    /// Prompt tokens that were neither read from nor written to the cache.
    pub input: f64,
    pub output: f64,
    /// Cache reads. Without it they cost `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read: Option<f64>,
    /// Cache writes (Anthropic's 5-minute writes). Without it they cost `input`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write: Option<f64>,
    /// 1-hour cache writes. Without it they cost `cache_write` (or `input`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_1h: Option<f64>,
}

/// A model's price: its rates, and higher rates for long prompts.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub rates: Rates,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<Tier>,
}

/// Rates for every token of a request whose prompt (`Usage::input`, cached tokens included)
/// has more than `above` tokens. This is how the providers price long context: crossing the
/// line reprices the whole request, not just the tokens beyond it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub above: u64,
    pub rates: Rates,
}

impl Rates {
    /// Each rate with its config key.
    fn each(&self) -> [(&'static str, Option<f64>); 5] {
        [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cache_read", self.cache_read),
            ("cache_write", self.cache_write),
            ("cache_write_1h", self.cache_write_1h),
        ]
    }

    /// Check rates a user gave: each a finite number from 0 to [`MAX_USD_PER_MTOK`]. The error
    /// names the key and says what to write.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for (key, rate) in self.each() {
            if let Some(rate) = rate
                && !(rate.is_finite() && (0.0..=MAX_USD_PER_MTOK).contains(&rate))
            {
                return Err((
                    key,
                    format!(
                        "`{key} = {rate}` is not a price: write USD per million tokens, \
                         a number from 0 to {MAX_USD_PER_MTOK}, e.g. `{key} = 3.0`"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Price {
    /// A price without tiers.
    pub fn flat(rates: Rates) -> Price {
        Price {
            rates,
            tiers: Vec::new(),
        }
    }

    /// The rates for a request with `prompt_tokens` prompt tokens (cached ones included).
    pub fn rates_for(&self, prompt_tokens: u64) -> &Rates {
        self.tiers
            .iter()
            .filter(|t| prompt_tokens > t.above)
            .max_by_key(|t| t.above)
            .map_or(&self.rates, |t| &t.rates)
    }

    /// The cost of one request. Tiers depend on the request's own prompt, so usage summed
    /// over several requests must be costed request by request.
    ///
    /// A cache rate the price lacks is charged as the more general kind of token it is: a
    /// cache read or write at the input rate, a 1-hour write at the cache-write rate (or the
    /// input rate). That is how genai-prices computes it; nothing is guessed. Token counts
    /// that do not add up (cache tokens beyond `input`) are charged as reported, with no
    /// uncached input. Any `u64` counts give a finite cost, as every rate is at most
    /// [`MAX_USD_PER_MTOK`] (checked where prices enter: config validation, and the built-in
    /// table's test).
    pub fn cost(&self, usage: &Usage) -> Cost {
        let r = self.rates_for(usage.input);
        let cache_read_rate = r.cache_read.unwrap_or(r.input);
        let cache_write_rate = r.cache_write.unwrap_or(r.input);
        let cache_write_1h_rate = r.cache_write_1h.unwrap_or(cache_write_rate);

        let uncached = usage
            .input
            .saturating_sub(usage.cache_read)
            .saturating_sub(usage.cache_write);
        let cache_write_1h = usage.cache_write_1h.min(usage.cache_write);
        let cache_write_5m = usage.cache_write - cache_write_1h;

        let usd = dollars(uncached, r.input)
            + dollars(usage.cache_read, cache_read_rate)
            + dollars(cache_write_5m, cache_write_rate)
            + dollars(cache_write_1h, cache_write_1h_rate)
            + dollars(usage.output, r.output);
        let saved_usd = dollars(usage.cache_read, (r.input - cache_read_rate).max(0.0));
        Cost { usd, saved_usd }
    }
}

fn dollars(tokens: u64, usd_per_mtok: f64) -> f64 {
    tokens as f64 * usd_per_mtok / TOKENS_PER_MTOK
}

/// The prices requests are costed at: the user's overrides (`[providers.<id>.prices]`), then
/// the built-in table. Built by the snapshot from the config; cheap to build.
/// `Prices::default()` is the built-in table alone.
#[derive(Debug, Default)]
pub struct Prices {
    /// Provider id → overrides in config order.
    overrides: HashMap<String, Vec<Override>>,
    /// What [`Prices::lookup`] found for each (provider, model) asked lately: every finished
    /// request is priced, and matching a name against the table's clauses (a lowercased copy,
    /// then up to hundreds of clauses) cost more than the rest of pricing it. A std `Mutex`:
    /// it is held for a map lookup or insert, never across an `.await`.
    found: Mutex<Found>,
}

/// Provider id → model as sent → where its price is.
type Found = HashMap<String, HashMap<String, Place>>;

/// Where a model's price is, by index, so the memo holds no borrow.
#[derive(Debug, Clone, Copy)]
enum Place {
    Override(usize),
    BuiltIn(usize),
    Nowhere,
}

/// A copy starts with nothing remembered.
impl Clone for Prices {
    fn clone(&self) -> Prices {
        Prices {
            overrides: self.overrides.clone(),
            found: Mutex::default(),
        }
    }
}

#[derive(Debug, Clone)]
struct Override {
    glob: String,
    pattern: WildMatch,
    price: Price,
}

/// A price found for a model, and where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PriceRef<'a> {
    pub price: &'a Price,
    pub source: PriceSource<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriceSource<'a> {
    /// The built-in table's model of this id (e.g. `claude-sonnet-4-5` for
    /// `claude-sonnet-4-5-20250929`).
    BuiltIn { model: &'static str },
    /// The user's override with this model glob.
    Override { glob: &'a str },
}

impl Prices {
    /// `overrides`: (provider id, model glob, rates) in the order the first match should be
    /// found.
    pub fn new<'a>(overrides: impl IntoIterator<Item = (&'a str, &'a str, Rates)>) -> Prices {
        let mut by_provider: HashMap<String, Vec<Override>> = HashMap::new();
        for (provider, glob, rates) in overrides {
            by_provider
                .entry(provider.to_owned())
                .or_default()
                .push(Override {
                    glob: glob.to_owned(),
                    pattern: WildMatch::new(glob),
                    price: Price::flat(rates),
                });
        }
        Prices {
            overrides: by_provider,
            found: Mutex::default(),
        }
    }

    /// The built-in table and the overrides of a parsed config, in config order.
    pub fn from_config(config: &Config) -> Prices {
        Prices::new(config.providers.iter().flat_map(|(id, p)| {
            p.prices
                .iter()
                .map(move |(glob, rates)| (id.as_str(), glob.as_str(), *rates))
        }))
    }

    /// The price of `model` at `provider`: the first override whose glob matches the model
    /// as sent (globs are case-sensitive, like families), else the built-in table's first
    /// model that matches it. A provider that is not built in has only its overrides.
    pub fn lookup(&self, provider: &str, model: &str) -> Option<PriceRef<'_>> {
        let remembered = self
            .remembered()
            .get(provider)
            .and_then(|models| models.get(model).copied());
        let place = match remembered {
            Some(place) => place,
            None => {
                let place = self.find(provider, model);
                let mut found = self.remembered();
                if found.values().map(HashMap::len).sum::<usize>() >= REMEMBERED {
                    found.clear();
                }
                found
                    .entry(provider.to_owned())
                    .or_default()
                    .insert(model.to_owned(), place);
                place
            }
        };
        self.at(provider, place)
    }

    fn remembered(&self) -> std::sync::MutexGuard<'_, Found> {
        self.found.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where `model`'s price is: the first override whose glob matches, else the built-in
    /// table's first model whose clause does.
    fn find(&self, provider: &str, model: &str) -> Place {
        if let Some(i) = self
            .overrides
            .get(provider)
            .and_then(|list| list.iter().position(|o| o.pattern.matches(model)))
        {
            return Place::Override(i);
        }
        let name = model.to_lowercase();
        BUILT_IN
            .providers
            .get(provider)
            .and_then(|models| models.iter().position(|m| m.clause.matches(&name)))
            .map_or(Place::Nowhere, Place::BuiltIn)
    }

    fn at(&self, provider: &str, place: Place) -> Option<PriceRef<'_>> {
        match place {
            Place::Override(i) => {
                let o = self.overrides.get(provider)?.get(i)?;
                Some(PriceRef {
                    price: &o.price,
                    source: PriceSource::Override { glob: &o.glob },
                })
            }
            Place::BuiltIn(i) => {
                let table: &'static Table = &BUILT_IN;
                let m = table.providers.get(provider)?.get(i)?;
                Some(PriceRef {
                    price: &m.price,
                    source: PriceSource::BuiltIn { model: &m.id },
                })
            }
            Place::Nowhere => None,
        }
    }

    /// The cost of one request, or `None` when the model has no price.
    pub fn cost(&self, provider: &str, model: &str, usage: &Usage) -> Option<Cost> {
        self.lookup(provider, model).map(|p| p.price.cost(usage))
    }
}

/// `data/prices.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    /// The data's origin, e.g. "genai-prices 0.2.5 (github.com/pydantic/genai-prices, MIT)".
    source: String,
    /// The date the table was written (YYYY-MM-DD): the prices in force then.
    taken: String,
    /// Keyway provider id → models in match order.
    providers: HashMap<String, Vec<Model>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Model {
    /// genai-prices' id of the model.
    id: String,
    #[serde(rename = "match")]
    clause: Clause,
    price: Price,
}

/// Which model names a model of the table answers to, tested on the lowercased name. The
/// kinds genai-prices uses for these providers, plus `Shape` and `Not`, into which
/// `scripts/update-prices` translates the regex clauses it uses.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Clause {
    Equals(String),
    StartsWith(String),
    EndsWith(String),
    Contains(String),
    /// The whole name has this shape: `#` is one ASCII digit, `*` any run of characters,
    /// every other character itself (`claude-opus-5-########` for `^claude-opus-5-\d{8}$`).
    Shape(String),
    Not(Box<Clause>),
    Or(Vec<Clause>),
    And(Vec<Clause>),
}

impl Clause {
    fn matches(&self, name: &str) -> bool {
        match self {
            Clause::Equals(s) => name == s,
            Clause::StartsWith(s) => name.starts_with(s.as_str()),
            Clause::EndsWith(s) => name.ends_with(s.as_str()),
            Clause::Contains(s) => name.contains(s.as_str()),
            Clause::Shape(s) => has_shape(name.as_bytes(), s.as_bytes()),
            Clause::Not(c) => !c.matches(name),
            Clause::Or(cs) => cs.iter().any(|c| c.matches(name)),
            Clause::And(cs) => cs.iter().all(|c| c.matches(name)),
        }
    }
}

/// Whether `name` has `shape` (see [`Clause::Shape`]). Wildcard matching that, on a mismatch,
/// lets the last `*` take one more byte: time linear in the product of the lengths at worst,
/// whatever name a client sends. Bytes suffice: the shape's special characters are ASCII,
/// which never occur inside a multi-byte UTF-8 character.
fn has_shape(name: &[u8], shape: &[u8]) -> bool {
    let (mut s, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match shape.get(s) {
            Some(b'*') => {
                star = Some((s, n));
                s += 1;
            }
            Some(b'#') if name[n].is_ascii_digit() => {
                s += 1;
                n += 1;
            }
            Some(&c) if c != b'#' && c == name[n] => {
                s += 1;
                n += 1;
            }
            _ => match star {
                Some((star_s, star_n)) => {
                    star = Some((star_s, star_n + 1));
                    s = star_s + 1;
                    n = star_n + 1;
                }
                None => return false,
            },
        }
    }
    shape[s..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn built_in(provider: &str, model: &str) -> (&'static str, Price) {
        let prices = Prices::default();
        let found = prices
            .lookup(provider, model)
            .unwrap_or_else(|| panic!("{provider}/{model} has a built-in price"));
        match found.source {
            PriceSource::BuiltIn { model } => (model, found.price.clone()),
            PriceSource::Override { .. } => panic!("no overrides here"),
        }
    }

    #[test]
    fn lookups_are_remembered_within_a_bound() {
        let prices = Prices::new([("anthropic", "claude-x-*", sonnet_rates())]);
        let sonnet = || {
            prices
                .lookup("anthropic", "claude-sonnet-4-5")
                .map(|p| p.source)
        };
        let first = sonnet();
        assert!(matches!(first, Some(PriceSource::BuiltIn { .. })));
        for _ in 0..2 {
            assert_eq!(
                prices.lookup("anthropic", "claude-x-1").map(|p| p.source),
                Some(PriceSource::Override { glob: "claude-x-*" })
            );
        }
        // Names a client made up, more than are remembered.
        for i in 0..3 * REMEMBERED {
            assert!(
                prices
                    .lookup("anthropic", &format!("made-up-{i}"))
                    .is_none()
            );
            let remembered: usize = prices.remembered().values().map(HashMap::len).sum();
            assert!(remembered <= REMEMBERED, "{remembered}");
        }
        assert_eq!(sonnet(), first);
        assert_eq!(prices.lookup("nobody", "claude-sonnet-4-5"), None);
    }

    fn sonnet_rates() -> Rates {
        Rates {
            input: 3.0,
            output: 15.0,
            cache_read: Some(0.3),
            cache_write: Some(3.75),
            cache_write_1h: Some(6.0),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn the_embedded_table_parses_and_every_price_is_sound() {
        let (source, taken) = built_in_source();
        assert!(source.starts_with("genai-prices "), "{source}");
        assert!(
            taken.len() == 10 && taken.as_bytes()[4] == b'-' && taken.as_bytes()[7] == b'-',
            "{taken}"
        );
        let table: &Table = &BUILT_IN;
        for provider in crate::provider::BUILT_INS {
            assert!(
                table.providers.contains_key(provider.id),
                "{} has built-in prices",
                provider.id
            );
        }
        let mut count = 0;
        for (provider, models) in &table.providers {
            assert!(crate::provider::built_in(provider).is_some(), "{provider}");
            for m in models {
                count += 1;
                let all =
                    std::iter::once(&m.price.rates).chain(m.price.tiers.iter().map(|t| &t.rates));
                for rates in all {
                    assert!(rates.check().is_ok(), "{provider}/{}: {rates:?}", m.id);
                    assert!(rates.input > 0.0 || rates.output > 0.0, "{}", m.id);
                }
                assert!(
                    m.price.tiers.windows(2).all(|w| w[0].above < w[1].above),
                    "{}",
                    m.id
                );
                assert_lowercase(&m.clause, &m.id);
            }
        }
        assert!(count > 100, "{count} models");
    }

    /// Names are lowercased before matching, so an upper-case literal would never match.
    fn assert_lowercase(clause: &Clause, id: &str) {
        match clause {
            Clause::Equals(s)
            | Clause::StartsWith(s)
            | Clause::EndsWith(s)
            | Clause::Contains(s)
            | Clause::Shape(s) => assert_eq!(s, &s.to_lowercase(), "{id}"),
            Clause::Not(c) => assert_lowercase(c, id),
            Clause::Or(cs) | Clause::And(cs) => cs.iter().for_each(|c| assert_lowercase(c, id)),
        }
    }

    #[test]
    fn claude_sonnet_4_5_and_its_dated_name_get_anthropics_prices() {
        let (id, price) = built_in("anthropic", "claude-sonnet-4-5");
        assert_eq!(id, "claude-sonnet-4-5");
        assert_eq!(price.rates, sonnet_rates());
        let (dated, dated_price) = built_in("anthropic", "claude-sonnet-4-5-20250929");
        assert_eq!((dated, &dated_price), (id, &price));
        assert_eq!(
            built_in("anthropic", "Claude-Sonnet-4-5").0,
            id,
            "names are matched lowercased, as genai-prices does"
        );

        // A request of 10k uncached prompt tokens, 150k read from the cache, 20k written to
        // it (5k of them for an hour) and 2k out: 180k prompt tokens, under the 200k tier.
        let usage = Usage {
            input: 180_000,
            cache_read: 150_000,
            cache_write: 20_000,
            cache_write_1h: 5_000,
            output: 2_000,
        };
        let cost = price.cost(&usage);
        // 0.01 × 3 + 0.15 × 0.30 + 0.015 × 3.75 + 0.005 × 6 + 0.002 × 15
        assert!(
            close(cost.usd, 0.03 + 0.045 + 0.05625 + 0.03 + 0.03),
            "{cost:?}"
        );
        assert!(close(cost.saved_usd, 0.15 * (3.0 - 0.3)), "{cost:?}");
    }

    #[test]
    fn worked_example_in_dollars() {
        // 1M uncached prompt tokens, 2M read from the cache, 100k out, at $3 / $0.30 / $15.
        let price = Price::flat(sonnet_rates());
        let usage = Usage {
            input: 3_000_000,
            cache_read: 2_000_000,
            output: 100_000,
            ..Usage::default()
        };
        let cost = price.cost(&usage);
        assert!(close(cost.usd, 3.0 + 0.60 + 1.50), "{cost:?}"); // $5.10
        assert!(close(cost.saved_usd, 2.0 * 2.70), "{cost:?}"); // $5.40
    }

    #[test]
    fn a_missing_cache_rate_is_charged_as_the_more_general_token() {
        let price = Price::flat(Rates {
            input: 2.0,
            output: 8.0,
            cache_read: None,
            cache_write: Some(2.5),
            cache_write_1h: None,
        });
        let usage = Usage {
            input: 4_000_000,
            cache_read: 1_000_000,
            cache_write: 2_000_000,
            cache_write_1h: 1_000_000,
            output: 0,
        };
        let cost = price.cost(&usage);
        // uncached 1M × 2 + read 1M × 2 + 5m write 1M × 2.5 + 1h write 1M × 2.5
        assert!(close(cost.usd, 2.0 + 2.0 + 2.5 + 2.5), "{cost:?}");
        assert_eq!(cost.saved_usd, 0.0, "no cache-read rate, nothing saved");
    }

    #[test]
    fn openai_and_gemini_models_resolve() {
        let (id, gpt4o) = built_in("openai", "gpt-4o");
        assert_eq!(id, "gpt-4o");
        assert!(gpt4o.rates.input > 0.0 && gpt4o.rates.output > gpt4o.rates.input);
        assert_eq!(built_in("openai", "gpt-4o-2024-08-06").0, "gpt-4o");
        assert_eq!(built_in("openai", "gpt-5").0, "gpt-5");
        assert_eq!(built_in("openai", "gpt-5-codex").0, "gpt-5");

        let (id, pro) = built_in("google", "gemini-2.5-pro");
        assert_eq!(id, "gemini-2.5-pro");
        assert!(pro.rates.cache_read.is_some());
        assert_eq!(
            built_in("google", "gemini-2.5-pro-preview-06-05").0,
            "gemini-2.5-pro"
        );
        assert_ne!(
            built_in("google", "gemini-2.5-pro-preview-tts").0,
            "gemini-2.5-pro",
            "the TTS model has its own price (the translated regex lookahead)"
        );
    }

    #[test]
    fn unknown_models_and_providers_have_no_price() {
        let prices = Prices::default();
        assert_eq!(prices.lookup("anthropic", "llama-3-70b"), None);
        assert_eq!(prices.lookup("openai", ""), None);
        assert_eq!(prices.lookup("openrouter", "gpt-4o"), None, "not built in");
        assert_eq!(
            prices.cost("anthropic", "llama-3-70b", &Usage::default()),
            None
        );
    }

    #[test]
    fn an_override_beats_the_built_in_price_and_the_first_match_wins() {
        let cheap = Rates {
            input: 1.0,
            output: 2.0,
            cache_read: None,
            cache_write: None,
            cache_write_1h: None,
        };
        let dear = Rates {
            input: 100.0,
            ..cheap
        };
        let prices = Prices::new([
            ("anthropic", "claude-sonnet-4-5*", cheap),
            ("anthropic", "claude-*", dear),
            ("openrouter", "meta-llama/*", cheap),
        ]);
        let found = prices
            .lookup("anthropic", "claude-sonnet-4-5-20250929")
            .unwrap();
        assert_eq!(
            found.source,
            PriceSource::Override {
                glob: "claude-sonnet-4-5*"
            }
        );
        assert_eq!(found.price.rates, cheap);
        assert_eq!(
            prices
                .lookup("anthropic", "claude-opus-4-1")
                .unwrap()
                .price
                .rates,
            dear
        );
        assert!(matches!(
            prices.lookup("openai", "gpt-4o").unwrap().source,
            PriceSource::BuiltIn { model: "gpt-4o" }
        ));
        assert!(prices.lookup("openrouter", "meta-llama/llama-3").is_some());
        assert_eq!(prices.lookup("openrouter", "mistral/large"), None);

        let usage = Usage {
            input: 1_000_000,
            output: 1_000_000,
            ..Usage::default()
        };
        let cost = prices
            .cost("anthropic", "claude-sonnet-4-5", &usage)
            .unwrap();
        assert!(close(cost.usd, 3.0), "{cost:?}");
    }

    #[test]
    fn overrides_come_from_the_config_in_order() {
        let text = r#"
[providers.anthropic.prices."claude-sonnet-4-5*"]
input = 1
output = 2.5
[providers.anthropic.prices."claude-*"]
input = 100
output = 200
cache_read = 10
"#;
        let config = Config::parse(text, None).unwrap();
        let prices = Prices::from_config(&config);
        let sonnet = prices.lookup("anthropic", "claude-sonnet-4-5").unwrap();
        assert_eq!(
            (sonnet.price.rates.input, sonnet.price.rates.output),
            (1.0, 2.5)
        );
        let opus = prices.lookup("anthropic", "claude-opus-4-1").unwrap();
        assert_eq!(opus.price.rates.cache_read, Some(10.0));
    }

    #[test]
    fn a_tier_reprices_the_whole_request_above_its_line() {
        let (_, price) = built_in("anthropic", "claude-sonnet-4-5");
        let tier = price
            .tiers
            .first()
            .expect("claude-sonnet-4-5 has a long-context tier");
        assert!(tier.rates.input > price.rates.input);
        let at = |input: u64| {
            price.cost(&Usage {
                input,
                output: 1_000_000,
                ..Usage::default()
            })
        };
        let under = at(tier.above);
        let over = at(tier.above + 1);
        let expect = |rates: &Rates, input: u64| input as f64 * rates.input / 1e6 + rates.output;
        assert!(
            close(under.usd, expect(&price.rates, tier.above)),
            "{under:?}"
        );
        assert!(
            close(over.usd, expect(&tier.rates, tier.above + 1)),
            "{over:?}"
        );
        assert!(over.usd > under.usd);
    }

    #[test]
    fn absurd_token_counts_give_finite_costs() {
        let max = Usage {
            input: u64::MAX,
            cache_read: u64::MAX,
            cache_write: u64::MAX,
            cache_write_1h: u64::MAX,
            output: u64::MAX,
        };
        let dearest = Price::flat(Rates {
            input: MAX_USD_PER_MTOK,
            output: MAX_USD_PER_MTOK,
            cache_read: Some(0.0),
            cache_write: Some(MAX_USD_PER_MTOK),
            cache_write_1h: Some(MAX_USD_PER_MTOK),
        });
        let (_, sonnet) = built_in("anthropic", "claude-sonnet-4-5");
        for price in [&dearest, &sonnet] {
            for usage in [
                max,
                Usage { input: 0, ..max },
                Usage {
                    cache_write_1h: 0,
                    input: 5,
                    ..max
                },
            ] {
                let cost = price.cost(&usage);
                assert!(cost.usd.is_finite() && cost.usd >= 0.0, "{cost:?}");
                assert!(
                    cost.saved_usd.is_finite() && cost.saved_usd >= 0.0,
                    "{cost:?}"
                );
            }
        }
        // Cache tokens beyond the prompt leave no uncached input, never a negative one.
        let odd = Price::flat(sonnet_rates()).cost(&Usage {
            input: 10,
            cache_read: 1_000_000,
            ..Usage::default()
        });
        assert!(close(odd.usd, 0.3), "{odd:?}");
    }

    #[test]
    fn rates_are_checked() {
        let ok = sonnet_rates();
        assert!(ok.check().is_ok());
        for bad in [-0.01, f64::NAN, f64::INFINITY, MAX_USD_PER_MTOK + 1.0] {
            let (key, message) = Rates {
                cache_write: Some(bad),
                ..ok
            }
            .check()
            .unwrap_err();
            assert_eq!(key, "cache_write");
            assert!(message.contains("cache_write = 3.0"), "{message}");
        }
    }

    #[test]
    fn shapes() {
        let yes = |name: &str, shape: &str| has_shape(name.as_bytes(), shape.as_bytes());
        assert!(yes("claude-opus-5-20261101", "claude-opus-5-########"));
        assert!(!yes("claude-opus-5-2026110", "claude-opus-5-########"));
        assert!(!yes("claude-opus-5-202611011", "claude-opus-5-########"));
        assert!(!yes("claude-opus-5-5-202611", "claude-opus-5-########"));
        assert!(yes("gemini-3.5-flash-0", "gemini-3.5-flash-#*"));
        assert!(yes("gemini-3.5-flash-001-x", "gemini-3.5-flash-#*"));
        assert!(!yes("gemini-3.5-flash-lite", "gemini-3.5-flash-#*"));
        assert!(yes("a-b-c", "*-*"));
        assert!(!yes("a#", "a#"), "`#` is a digit, never itself");
        assert!(yes("", "*"));
        assert!(!yes("", "#"));
        let long = "x".repeat(100_000);
        assert!(!yes(&long, "*y*y*y"));
    }
}

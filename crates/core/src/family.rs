//! Model families: named groups of models within a provider, matched by globs on the
//! requested model name.

use wildmatch::WildMatch;

/// The longest model name matched against family globs, in bytes.
pub const MAX_MODEL_BYTES: usize = 256;

/// The families of one provider, in match order.
#[derive(Debug, Clone)]
pub struct FamilySet {
    families: Vec<Family>,
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    globs: Vec<WildMatch>,
}

impl FamilySet {
    /// `configured` come first, in their order, and replace built-ins of the same name; the
    /// remaining built-ins follow in their order. So a user can both override and extend.
    pub fn new<'a>(
        configured: impl IntoIterator<Item = (&'a str, &'a [String])>,
        built_in: &[(&str, &[&str])],
    ) -> Self {
        let mut families: Vec<Family> = configured
            .into_iter()
            .map(|(name, globs)| Family {
                name: name.to_owned(),
                globs: globs.iter().map(|g| WildMatch::new(g)).collect(),
            })
            .collect();
        for (name, globs) in built_in {
            if families.iter().all(|f| f.name != *name) {
                families.push(Family {
                    name: (*name).to_owned(),
                    globs: globs.iter().map(|g| WildMatch::new(g)).collect(),
                });
            }
        }
        FamilySet { families }
    }

    /// Index of the first family whose globs match `model`. A name longer than
    /// [`MAX_MODEL_BYTES`] belongs to no family: no real model has one, and matching globs
    /// against megabytes a client sent would cost more than the request is worth.
    pub fn resolve(&self, model: &str) -> Option<usize> {
        if model.len() > MAX_MODEL_BYTES {
            return None;
        }
        self.families
            .iter()
            .position(|f| f.globs.iter().any(|g| g.matches(model)))
    }

    pub fn name(&self, index: usize) -> &str {
        &self.families[index].name
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.families.iter().position(|f| f.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.families.iter().map(|f| f.name.as_str())
    }

    pub fn len(&self) -> usize {
        self.families.len()
    }

    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_families_override_and_precede_built_ins() {
        let custom = vec!["claude-opus-4*".to_owned()];
        let set = FamilySet::new(
            [("opus", custom.as_slice())],
            &[("opus", &["*opus*"]), ("sonnet", &["*sonnet*"])],
        );
        assert_eq!(set.resolve("claude-opus-4-1"), Some(0));
        assert_eq!(
            set.resolve("claude-3-opus"),
            None,
            "the override replaced *opus*"
        );
        assert_eq!(
            set.resolve("claude-sonnet-4-5").map(|i| set.name(i)),
            Some("sonnet")
        );
    }

    #[test]
    fn a_name_longer_than_any_model_matches_no_family() {
        let set = FamilySet::new([], &[("sonnet", &["*sonnet*"])]);
        let long = format!("claude-sonnet-{}", "x".repeat(MAX_MODEL_BYTES));
        assert_eq!(set.resolve(&long), None);
        assert_eq!(set.resolve(&long[..MAX_MODEL_BYTES]), Some(0));
    }
}

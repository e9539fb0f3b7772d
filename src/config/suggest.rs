//! "Did you mean …?" by edit distance, for unknown keys, templates, VMs and enum values.

/// The candidate closest to `word`, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (strsim::osa_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// A help line `did you mean `x`?` when a candidate is close.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    closest(word, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transposition_is_a_plausible_typo() {
        assert_eq!(closest("cuont", ["count", "name"]), Some("count"));
        assert_eq!(closest("templte", ["template", "ttl"]), Some("template"));
    }

    #[test]
    fn a_distant_word_gets_no_suggestion() {
        assert_eq!(closest("xyz", ["count", "name"]), None);
        assert_eq!(closest("ab", ["cd"]), None);
    }
}

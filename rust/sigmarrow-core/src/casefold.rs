//! Full Unicode case folding, identical to Python's `str.casefold` (the table is generated
//! from it), so the engine and the reference evaluator agree on every character.

use crate::casefold_table::FOLDS;

/// Appends the case folding of `s` to `out`.
pub fn fold_into(s: &str, out: &mut String) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
        return;
    }
    for c in s.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            match FOLDS.binary_search_by_key(&c, |&(k, _)| k) {
                Ok(i) => out.push_str(FOLDS[i].1),
                Err(_) => out.push(c),
            }
        }
    }
}

/// The case folding of `s`.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    fold_into(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::fold;

    #[test]
    fn folds_like_python() {
        assert_eq!(fold("ABC"), "abc");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("ΣΑΣ"), "σασ");
        assert_eq!(fold("ς"), "σ");
        assert_eq!(fold("\u{212A}"), "k"); // Kelvin sign
        assert_eq!(fold("İ"), "i\u{307}");
        assert_eq!(fold("🙂"), "🙂");
    }
}

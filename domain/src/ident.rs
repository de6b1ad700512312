use std::fmt;

use crate::DomainError;

/// A name that is safe to use unquoted as a SQL identifier and as a file name: `[A-Za-z_][A-Za-z0-9_]*`,
/// at most 63 bytes (PostgreSQL's limit, so a name works on every engine we talk to).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Identifier(pub(crate) String);

impl Identifier {
    pub const MAX_LEN: usize = 63;

    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        let value = value.into();
        let invalid = |reason| DomainError::InvalidIdentifier {
            value: value.clone(),
            reason,
        };
        let mut chars = value.chars();
        match chars.next() {
            None => return Err(invalid("must not be empty")),
            Some(c) if !(c.is_ascii_alphabetic() || c == '_') => {
                return Err(invalid("must start with a letter or underscore"))
            }
            _ => {}
        }
        if value.len() > Self::MAX_LEN {
            return Err(invalid("must be at most 63 characters"));
        }
        if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("may contain only letters, digits and underscores"));
        }
        Ok(Self(value))
    }

    /// An id compared without regard to case, lower-cased on the way in (projects, analyses, sources, tables):
    /// the engine folds unquoted names anyway, so `Kpi` and `kpi` must be one thing.
    pub fn canonical(value: impl Into<String>) -> Result<Self, DomainError> {
        Self::parse(value).map(|i| Self(i.0.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The nearest identifier to a free-form name (a file stem, a remote table): lower case, other characters
    /// become `_`, a leading digit gets a `_`.
    pub fn sanitize(name: &str) -> Self {
        let mut s: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
            s.insert(0, '_');
        }
        s.truncate(Self::MAX_LEN);
        Self(s)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Identifier {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_plain_names() {
        for ok in ["a", "_x", "sales_2024", "A1"] {
            assert_eq!(Identifier::parse(ok).map(|i| i.to_string()), Ok(ok.to_string()));
        }
    }

    #[test]
    fn rejects_bad_names() {
        for bad in ["", "1a", "a-b", "a b", "é", "a;drop", &"x".repeat(64)] {
            assert!(Identifier::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_the_grammar(s in "\\PC{0,70}") {
            let expected = !s.is_empty()
                && s.len() <= 63
                && s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            prop_assert_eq!(Identifier::parse(s.clone()).is_ok(), expected);
        }
    }
}

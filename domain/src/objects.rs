//! Names in object storage: buckets, object keys, list prefixes, user metadata and byte ranges. The rules are
//! S3's (so a name that works here works on any S3-compatible store) narrowed where a key must also be a safe
//! relative file path, so every adapter stores the same set of keys.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;

use crate::DomainError;

/// A bucket name valid on S3 (general purpose buckets):
/// 3-63 characters of lowercase letters, digits, `.` and `-`; starting and ending with a letter or digit; no two
/// adjacent dots; not shaped like an IPv4 address; none of the prefixes and suffixes S3 reserves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketName(String);

/// Prefixes and suffixes S3 reserves for its own use.
const RESERVED_BUCKET_PREFIXES: [&str; 3] = ["xn--", "sthree-", "amzn-s3-demo-"];
const RESERVED_BUCKET_SUFFIXES: [&str; 5] = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"];

/// Why `name` is not a valid bucket name, or `None` when it is.
pub fn bucket_name_problem(name: &str) -> Option<&'static str> {
    if name.len() < 3 || name.len() > 63 {
        return Some("must be 3 to 63 characters long");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
    {
        return Some("may contain only lowercase letters, digits, '.' and '-'");
    }
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = name.as_bytes();
    if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Some("must start and end with a letter or digit");
    }
    if name.contains("..") {
        return Some("must not contain two adjacent dots");
    }
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() == 4 && labels.iter().all(|l| l.bytes().all(|b| b.is_ascii_digit())) {
        return Some("must not be formatted as an IP address");
    }
    if RESERVED_BUCKET_PREFIXES.iter().any(|p| name.starts_with(p)) {
        return Some("must not start with a prefix S3 reserves (xn--, sthree-, amzn-s3-demo-)");
    }
    if RESERVED_BUCKET_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        return Some("must not end with a suffix S3 reserves (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)");
    }
    None
}

impl BucketName {
    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        let value = value.into();
        match bucket_name_problem(&value) {
            None => Ok(Self(value)),
            Some(reason) => Err(DomainError::InvalidBucketName {
                name: shorten(&value),
                reason,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: 1-1024 bytes of UTF-8 in `/`-separated segments. S3 accepts more; these rules keep a key a
/// safe relative path (no `..` or `.` segment, no leading or trailing `/`, no empty segment) and printable
/// (no NUL or other control character), so the local store can keep it as a file and no key can name a place
/// outside its bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

pub const MAX_KEY_BYTES: usize = 1024;

/// Why `key` is not a valid object key, or `None` when it is.
pub fn object_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        return Some("must not be empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Some("must be at most 1024 bytes");
    }
    if key.contains('\0') {
        return Some("must not contain NUL");
    }
    if key.chars().any(char::is_control) {
        return Some("must not contain control characters");
    }
    if key.starts_with('/') {
        return Some("must not start with '/'");
    }
    if key.ends_with('/') {
        return Some("must not end with '/'");
    }
    for segment in key.split('/') {
        match segment {
            "" => return Some("must not contain an empty segment ('//')"),
            ".." => return Some("must not contain a '..' segment"),
            "." => return Some("must not contain a '.' segment"),
            _ => {}
        }
    }
    None
}

impl ObjectKey {
    pub fn parse(value: impl Into<String>) -> Result<Self, DomainError> {
        let value = value.into();
        match object_key_problem(&value) {
            None => Ok(Self(value)),
            Some(reason) => Err(DomainError::InvalidObjectKey {
                key: shorten(&value),
                reason,
            }),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `/`-separated segments, each non-empty and neither `.` nor `..`.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A list prefix (or delimiter) need not be a key (`data/` is a fine prefix) but obeys the same size and
/// character limits.
pub fn validate_list_text(what: &'static str, value: &str) -> Result<(), DomainError> {
    let reason = if value.len() > MAX_KEY_BYTES {
        Some("must be at most 1024 bytes")
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(DomainError::InvalidObjectRequest(format!("{what} {reason}"))),
    }
}

/// S3's limit on user metadata: keys and values together, in bytes.
pub const MAX_USER_METADATA_BYTES: usize = 2048;

/// User metadata travels as `x-amz-meta-<key>: <value>` headers, so keys are lowercase header tokens
/// (`[a-z0-9][a-z0-9_-]*`, S3 lower-cases them anyway) and values printable ASCII without surrounding spaces
/// (HTTP trims them); all of it at most 2 KiB.
pub fn validate_user_metadata(metadata: &BTreeMap<String, String>) -> Result<(), DomainError> {
    let mut total = 0;
    for (key, value) in metadata {
        let key_ok = key
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !key_ok {
            return Err(DomainError::InvalidObjectRequest(format!(
                "metadata key {:?} may contain only lowercase letters, digits, '-' and '_', starting with a letter or digit",
                shorten(key)
            )));
        }
        let value_ok = value.bytes().all(|b| (0x20..0x7f).contains(&b)) && value.trim() == value;
        if !value_ok {
            return Err(DomainError::InvalidObjectRequest(format!(
                "metadata value of {key:?} must be printable ASCII without leading or trailing spaces"
            )));
        }
        total += key.len() + value.len();
    }
    if total > MAX_USER_METADATA_BYTES {
        return Err(DomainError::InvalidObjectRequest(format!(
            "user metadata is {total} bytes; at most {MAX_USER_METADATA_BYTES} are kept"
        )));
    }
    Ok(())
}

/// A media type as sent in `Content-Type`: `type/subtype` with optional parameters, printable ASCII, at most
/// 255 bytes.
pub fn validate_content_type(value: &str) -> Result<(), DomainError> {
    let ok = !value.is_empty()
        && value.len() <= 255
        && value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && value
            .split(';')
            .next()
            .and_then(|essence| essence.trim().split_once('/'))
            .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty());
    if ok {
        Ok(())
    } else {
        Err(DomainError::InvalidObjectRequest(format!(
            "content type {:?} is not a media type (type/subtype)",
            shorten(value)
        )))
    }
}

/// A byte range asked of an object, as HTTP `Range` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From `start` to `end` inclusive, or to the end of the object when `end` is `None`.
    From { start: u64, end: Option<u64> },
    /// The last `n` bytes (the whole object when it is shorter).
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range of an object of `size` bytes that this range serves, or `None` when it cannot be
    /// satisfied (starts past the end, ends before it starts, asks for the last 0 bytes, or the object is
    /// empty).
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            ByteRange::From { start, end } => {
                if start >= size || end.is_some_and(|e| e < start) {
                    return None;
                }
                let end = end.map_or(size, |e| e.saturating_add(1).min(size));
                Some(start..end)
            }
            // Nothing to serve of an empty object, as HTTP says.
            ByteRange::Suffix(n) if n == 0 || size == 0 => None,
            ByteRange::Suffix(n) => Some(size.saturating_sub(n)..size),
        }
    }

    /// Whether the range is well formed whatever the object's size (`end` not before `start`, suffix not 0).
    pub fn is_well_formed(self) -> bool {
        match self {
            ByteRange::From { start, end } => end.is_none_or(|e| e >= start),
            ByteRange::Suffix(n) => n > 0,
        }
    }
}

/// Names echoed in errors are cut: a 1 MB key in a message helps nobody.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    if value.chars().count() <= MAX {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(MAX).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bucket_names_follow_s3() {
        for ok in [
            "abc",
            "my-bucket",
            "my.bucket.name",
            "a1b2c3",
            "123",
            "data-2024.archive",
            &"a".repeat(63),
            "1.2.3",
            "1.2.3.4a",
            "xn-not-reserved",
            "bucket-s3alias-not-suffix",
        ] {
            assert_eq!(bucket_name_problem(ok), None, "{ok:?} should be valid");
            assert_eq!(BucketName::parse(ok).unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("ab", "3 to 63"),
            (&"a".repeat(64) as &str, "3 to 63"),
            ("", "3 to 63"),
            ("My-Bucket", "lowercase"),
            ("my_bucket", "lowercase"),
            ("my bucket", "lowercase"),
            ("bücket", "lowercase"),
            ("-bucket", "start and end"),
            ("bucket-", "start and end"),
            (".bucket", "start and end"),
            ("bucket.", "start and end"),
            ("my..bucket", "adjacent dots"),
            ("192.168.5.4", "IP address"),
            ("10.0.0.1", "IP address"),
            ("xn--bucket", "prefix"),
            ("sthree-bucket", "prefix"),
            ("amzn-s3-demo-bucket", "prefix"),
            ("bucket-s3alias", "suffix"),
            ("bucket--ol-s3", "suffix"),
            ("bucket.mrap", "suffix"),
            ("bucket--x-s3", "suffix"),
            ("bucket--table-s3", "suffix"),
        ] {
            let problem = bucket_name_problem(bad).unwrap_or_else(|| panic!("{bad:?} should be invalid"));
            assert!(problem.contains(why), "{bad:?}: {problem}");
            let err = BucketName::parse(bad).unwrap_err();
            assert!(matches!(err, DomainError::InvalidBucketName { .. }), "{err}");
        }
    }

    #[test]
    fn object_keys_are_safe_relative_paths() {
        for ok in [
            "a",
            "data/2024/file.parquet",
            "with space/and#hash?&=+",
            "unicode/ünïcødé/日本",
            "dots.in.names/..hidden/a..b/...",
            ".hidden",
            &"k".repeat(1024),
        ] {
            assert_eq!(object_key_problem(ok), None, "{ok:?} should be valid");
        }
        for (bad, why) in [
            ("", "empty"),
            (&"k".repeat(1025) as &str, "1024"),
            ("a\0b", "NUL"),
            ("a\nb", "control"),
            ("/abs", "start with '/'"),
            ("dir/", "end with '/'"),
            ("a//b", "empty segment"),
            ("..", "'..'"),
            ("../etc/passwd", "'..'"),
            ("a/../b", "'..'"),
            ("a/..", "'..'"),
            ("./a", "'.'"),
            ("a/./b", "'.'"),
        ] {
            let problem = object_key_problem(bad).unwrap_or_else(|| panic!("{bad:?} should be invalid"));
            assert!(problem.contains(why), "{bad:?}: {problem}");
            assert!(matches!(
                ObjectKey::parse(bad).unwrap_err(),
                DomainError::InvalidObjectKey { .. }
            ));
        }
        // Multi-byte characters count in bytes.
        assert!(object_key_problem(&"é".repeat(513)).is_some());
        let long = ObjectKey::parse("x".repeat(2000)).unwrap_err().to_string();
        assert!(long.len() < 300, "long keys are cut in messages: {long}");
    }

    #[test]
    fn metadata_and_content_types() {
        let md = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(validate_user_metadata(&md(&[("owner", "ana"), ("source-system", "crm v2"), ("a_b", "")])).is_ok());
        for bad in [
            md(&[("Owner", "x")]),
            md(&[("-x", "x")]),
            md(&[("a b", "x")]),
            md(&[("", "x")]),
            md(&[("k", "é")]),
            md(&[("k", " padded")]),
            md(&[("k", "line\nbreak")]),
            md(&[("k", &"v".repeat(2048))]),
        ] {
            assert!(validate_user_metadata(&bad).is_err(), "{bad:?}");
        }
        for ok in [
            "application/octet-stream",
            "text/csv; charset=utf-8",
            "application/vnd.apache.parquet",
        ] {
            assert!(validate_content_type(ok).is_ok(), "{ok}");
        }
        for bad in ["", "text", "/x", "x/", "text/csv\r\nx-evil: 1", " text/csv"] {
            assert!(validate_content_type(bad).is_err(), "{bad:?}");
        }
        assert!(validate_list_text("prefix", "data/").is_ok());
        assert!(validate_list_text("prefix", "a\u{7}").is_err());
    }

    #[test]
    fn ranges_resolve_like_http() {
        let from = |start, end| ByteRange::From { start, end };
        assert_eq!(from(0, Some(9)).resolve(100), Some(0..10));
        assert_eq!(from(10, Some(19)).resolve(100), Some(10..20));
        assert_eq!(
            from(90, Some(200)).resolve(100),
            Some(90..100),
            "end past the size is cut"
        );
        assert_eq!(from(50, None).resolve(100), Some(50..100));
        assert_eq!(from(99, Some(99)).resolve(100), Some(99..100));
        assert_eq!(from(100, None).resolve(100), None, "start at the end");
        assert_eq!(from(5, Some(4)).resolve(100), None);
        assert_eq!(from(0, None).resolve(0), None, "nothing to serve of an empty object");
        assert_eq!(ByteRange::Suffix(10).resolve(100), Some(90..100));
        assert_eq!(ByteRange::Suffix(500).resolve(100), Some(0..100));
        assert_eq!(ByteRange::Suffix(0).resolve(100), None);
        assert_eq!(ByteRange::Suffix(5).resolve(0), None);
        assert!(!from(5, Some(4)).is_well_formed() && !ByteRange::Suffix(0).is_well_formed());
        assert!(from(5, Some(5)).is_well_formed() && from(5, None).is_well_formed());
    }

    proptest! {
        #[test]
        fn a_valid_key_never_leaves_its_bucket(key in "[a-z./]{1,20}") {
            if ObjectKey::parse(key.clone()).is_ok() {
                prop_assert!(key.split('/').all(|s| !s.is_empty() && s != "." && s != ".."));
                prop_assert!(!key.starts_with('/'));
            }
        }

        #[test]
        fn a_valid_bucket_name_is_a_dns_label_sequence(name in "[a-z0-9.-]{1,70}") {
            if BucketName::parse(name.clone()).is_ok() {
                prop_assert!((3..=63).contains(&name.len()));
                prop_assert!(name.split('.').all(|l| !l.is_empty()));
                prop_assert!(!name.starts_with(['.', '-']) && !name.ends_with(['.', '-']));
            }
        }

        #[test]
        fn resolved_ranges_stay_inside_the_object(start in 0u64..200, len in proptest::option::of(0u64..200), suffix in 0u64..300, size in 0u64..150) {
            let ranges = [ByteRange::From { start, end: len.map(|l| start + l) }, ByteRange::Suffix(suffix)];
            for range in ranges {
                if let Some(served) = range.resolve(size) {
                    prop_assert!(served.start < served.end && served.end <= size);
                }
            }
        }
    }
}

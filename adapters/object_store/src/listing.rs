//! S3's ListObjectsV2 paging over a sorted list of keys: prefix, delimiter (common prefixes), a page size that
//! counts objects and prefixes together, and a continuation token. Pure, so the local store lists as S3 does.

use pluto_duck_application::ports::{ObjectEntry, ObjectPage, ObjectStoreError};

/// One page of `entries` (sorted by key bytes, all starting with `prefix`).
pub(crate) fn page(
    entries: Vec<ObjectEntry>,
    prefix: &str,
    delimiter: Option<&str>,
    token: Option<&str>,
    limit: usize,
) -> Result<ObjectPage, ObjectStoreError> {
    let after = token.map(decode_token).transpose()?;
    let mut out = ObjectPage::default();
    let mut last: Option<Token> = None;
    for entry in entries {
        let key = entry.key.as_str();
        if !key.starts_with(prefix) {
            continue;
        }
        let group = delimiter.and_then(|d| {
            key[prefix.len()..]
                .find(d)
                .map(|i| key[..prefix.len() + i + d.len()].to_owned())
        });
        match &after {
            Some(Token::Key(k)) if key <= k.as_str() => continue,
            Some(Token::Prefix(p)) if key.starts_with(p.as_str()) || key < p.as_str() => continue,
            _ => {}
        }
        if let Some(group) = group {
            if out.common_prefixes.last() == Some(&group) {
                continue;
            }
            if out.objects.len() + out.common_prefixes.len() == limit {
                out.next_page_token = last.map(|t| t.encode());
                return Ok(out);
            }
            last = Some(Token::Prefix(group.clone()));
            out.common_prefixes.push(group);
        } else {
            if out.objects.len() + out.common_prefixes.len() == limit {
                out.next_page_token = last.map(|t| t.encode());
                return Ok(out);
            }
            last = Some(Token::Key(key.to_owned()));
            out.objects.push(entry);
        }
    }
    Ok(out)
}

/// Where the previous page ended: after a key, or after a whole common prefix.
enum Token {
    Key(String),
    Prefix(String),
}

impl Token {
    /// Opaque to callers: a tag and the text, hex-encoded.
    fn encode(&self) -> String {
        let (tag, text) = match self {
            Token::Key(k) => ('k', k),
            Token::Prefix(p) => ('p', p),
        };
        let mut s = String::with_capacity(1 + text.len() * 2);
        s.push(tag);
        for b in text.bytes() {
            s.push_str(&format!("{b:02x}"));
        }
        s
    }
}

fn decode_token(token: &str) -> Result<Token, ObjectStoreError> {
    let bad = || ObjectStoreError::InvalidRequest("invalid page token".into());
    let (tag, hex) = token.split_at_checked(1).ok_or_else(bad)?;
    if hex.len() % 2 != 0 {
        return Err(bad());
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
        .collect::<Result<Vec<u8>, _>>()?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    match tag {
        "k" => Ok(Token::Key(text)),
        "p" => Ok(Token::Prefix(text)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use pluto_duck_domain::ObjectKey;

    fn entries(keys: &[&str]) -> Vec<ObjectEntry> {
        let mut keys: Vec<&str> = keys.to_vec();
        keys.sort();
        keys.iter()
            .map(|k| ObjectEntry {
                key: ObjectKey::parse(*k).unwrap(),
                size: 1,
                etag: None,
                last_modified: Utc::now(),
            })
            .collect()
    }

    fn keys(page: &ObjectPage) -> Vec<&str> {
        page.objects.iter().map(|o| o.key.as_str()).collect()
    }

    const KEYS: [&str; 7] = ["a.txt", "b/1", "b/2", "b/c/3", "c/1", "d", "e/f/g"];

    #[test]
    fn prefix_and_delimiter_group_like_s3() {
        let page = page(entries(&KEYS), "", Some("/"), None, 1000).unwrap();
        assert_eq!(keys(&page), ["a.txt", "d"]);
        assert_eq!(page.common_prefixes, ["b/", "c/", "e/"]);
        assert_eq!(page.next_page_token, None);

        let page = super::page(entries(&KEYS), "b/", Some("/"), None, 1000).unwrap();
        assert_eq!(keys(&page), ["b/1", "b/2"]);
        assert_eq!(page.common_prefixes, ["b/c/"]);

        let page = super::page(entries(&KEYS), "b", None, None, 1000).unwrap();
        assert_eq!(keys(&page), ["b/1", "b/2", "b/c/3"]);
    }

    #[test]
    fn pages_count_objects_and_prefixes_and_resume_after_a_prefix() {
        let mut seen_keys = Vec::new();
        let mut seen_prefixes = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let p = page(entries(&KEYS), "", Some("/"), token.as_deref(), 2).unwrap();
            assert!(p.objects.len() + p.common_prefixes.len() <= 2);
            seen_keys.extend(keys(&p).iter().map(|k| k.to_string()));
            seen_prefixes.extend(p.common_prefixes.clone());
            pages += 1;
            match p.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(seen_keys, ["a.txt", "d"]);
        assert_eq!(seen_prefixes, ["b/", "c/", "e/"]);
        assert_eq!(pages, 3);

        let mut all = Vec::new();
        let mut token = None;
        loop {
            let p = page(entries(&KEYS), "", None, token.as_deref(), 3).unwrap();
            all.extend(keys(&p).iter().map(|k| k.to_string()));
            match p.next_page_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        assert_eq!(all, KEYS);
    }

    #[test]
    fn bad_tokens_are_invalid() {
        for bad in ["", "x00", "k0", "kzz", "kff"] {
            assert!(page(entries(&KEYS), "", None, Some(bad), 10).is_err(), "{bad:?}");
        }
    }
}

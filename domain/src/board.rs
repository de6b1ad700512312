//! Boards put results where people look at them: a board holds items (markdown, tables, charts, metrics, images),
//! each placed on a grid, optionally backed by a query whose last result is kept as a bounded snapshot.

use chrono::{DateTime, Utc};

use crate::{DomainError, Identifier, ProjectId};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    Markdown,
    Table,
    Chart,
    Metric,
    Image,
}

impl ItemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Markdown => "markdown",
            ItemKind::Table => "table",
            ItemKind::Chart => "chart",
            ItemKind::Metric => "metric",
            ItemKind::Image => "image",
        }
    }

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        [
            ItemKind::Markdown,
            ItemKind::Table,
            ItemKind::Chart,
            ItemKind::Metric,
            ItemKind::Image,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
        .ok_or_else(|| DomainError::UnknownValue {
            what: "board item kind (markdown, table, chart, metric, image)",
            value: s.to_owned(),
        })
    }

    /// Kinds that show data can be backed by a query.
    pub fn takes_query(self) -> bool {
        matches!(self, ItemKind::Table | ItemKind::Chart | ItemKind::Metric)
    }
}

/// Largest image an image item takes.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// The image type the bytes are, from their signature (not from what the client claims); `None` for anything else.
pub fn image_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', b'7' | b'9', b'a', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    pub id: String,
    pub project: ProjectId,
    pub name: String,
    pub description: String,
    /// Order among the project's boards.
    pub position: u32,
    /// Tabs of rich content, as JSON the client owns.
    pub document: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Where an item's data comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemSource {
    Sql(String),
    Analysis {
        id: Identifier,
        /// Parameter values by name, as JSON text.
        params: String,
    },
}

/// The last result of an item's query, bounded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub ran_at: DateTime<Utc>,
    /// JSON: `{"columns": [...], "rows": [[...]], "truncated": bool}`.
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardItem {
    pub id: String,
    pub board: String,
    pub project: ProjectId,
    pub kind: ItemKind,
    pub title: String,
    /// Grid placement.
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Kind-specific content the client renders (markdown text, chart spec, metric comparison), as JSON.
    pub config: String,
    pub source: Option<ItemSource>,
    /// Refresh the snapshot every this many seconds (manual only when absent).
    pub refresh_secs: Option<u64>,
    pub snapshot: Option<Snapshot>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl BoardItem {
    pub fn validate(&self) -> Result<(), DomainError> {
        let bad = |m: &str| DomainError::InvalidBoard(m.to_owned());
        if self.w == 0 || self.h == 0 || self.w > 48 || self.h > 200 || self.x > 48 || self.y > 10_000 {
            return Err(bad("an item's size is 1..48 wide and 1..200 high, at x 0..48"));
        }
        if self.source.is_some() && !self.kind.takes_query() {
            return Err(bad(&format!(
                "a {} item cannot be backed by a query",
                self.kind.as_str()
            )));
        }
        if let Some(secs) = self.refresh_secs {
            if self.source.is_none() {
                return Err(bad("refresh_secs needs a query"));
            }
            if secs < 5 {
                return Err(bad("refresh_secs must be at least 5"));
            }
        }
        Ok(())
    }

    /// When the scheduler should refresh it next.
    pub fn next_refresh(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let secs = i64::try_from(self.refresh_secs?).ok()?;
        Some(match &self.snapshot {
            // An interval past the calendar's end is never due (and must not overflow).
            Some(s) => s.ran_at.checked_add_signed(chrono::Duration::try_seconds(secs)?)?,
            None => now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_told_by_their_bytes() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(image_type(&[0xff, 0xd8, 0xff, 0xe0]), Some("image/jpeg"));
        assert_eq!(image_type(b"GIF89a..."), Some("image/gif"));
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(image_type(b"<svg onload=alert(1)>"), None);
        assert_eq!(image_type(b"%PDF-1.7"), None);
    }
}

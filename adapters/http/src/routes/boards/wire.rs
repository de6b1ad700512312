//! Wire types of `/api/v1/boards`: boards, their items and the queries behind them.

use std::borrow::Cow;

use pluto_duck_application::{BoardDraft, ItemDraft};
use pluto_duck_domain::{Board, BoardItem, Identifier, ItemKind, ItemSource};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, PartialSchema, ToSchema};

use crate::openapi::{text_enum, DisplayName, IdentifierText};
use crate::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BoardPath {
    /// The board.
    pub id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ItemPath {
    /// The board.
    pub id: String,
    /// An item of the board.
    pub item: String,
}

/// A new board.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBoardBody {
    #[schema(value_type = DisplayName)]
    pub name: String,
    pub description: Option<String>,
    /// Tabs of rich content; any JSON the client owns.
    #[schema(value_type = Option<Value>)]
    pub document: Option<serde_json::Value>,
}

impl From<NewBoardBody> for BoardDraft {
    fn from(body: NewBoardBody) -> Self {
        BoardBody {
            name: Some(body.name),
            description: body.description,
            document: body.document,
        }
        .into()
    }
}

/// What changes of a board: absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoardBody {
    #[schema(value_type = Option<DisplayName>)]
    pub name: Option<String>,
    pub description: Option<String>,
    /// Tabs of rich content; any JSON the client owns.
    #[schema(value_type = Option<Value>)]
    pub document: Option<serde_json::Value>,
}

impl From<BoardBody> for BoardDraft {
    fn from(body: BoardBody) -> Self {
        BoardDraft {
            name: body.name,
            description: body.description,
            document: body.document.map(|d| d.to_string()),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReorderBody {
    /// Every board id of the project, in the new order.
    pub ids: Vec<String>,
}

text_enum!(
    /// Kinds of board items.
    ItemKindName,
    "markdown, table, chart, metric or image",
    ["markdown", "table", "chart", "metric", "image"]
);

/// What an item shows: one read statement, or an analysis with parameter values.
pub struct ItemQuery;

impl PartialSchema for ItemQuery {
    fn schema() -> RefOr<Schema> {
        let closed = || Some(AdditionalProperties::<Schema>::FreeForm(false));
        let sql = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("sql", ObjectBuilder::new().schema_type(Type::String))
            .required("sql")
            .additional_properties(closed());
        let analysis = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("analysis", Ref::from_schema_name(IdentifierText::name()))
            .required("analysis")
            .property(
                "params",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .description(Some("Parameter values by name")),
            )
            .additional_properties(closed());
        OneOfBuilder::new().item(sql).item(analysis).into()
    }
}

impl ToSchema for ItemQuery {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ItemQuery")
    }
}

/// Add or change an item. `query` and `refresh_secs` take `null` to remove them.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemBody {
    /// Required to add.
    #[schema(value_type = Option<ItemKindName>)]
    pub kind: Option<String>,
    pub title: Option<String>,
    #[schema(maximum = 48)]
    pub x: Option<u32>,
    #[schema(maximum = 10000)]
    pub y: Option<u32>,
    #[schema(minimum = 1, maximum = 48)]
    pub w: Option<u32>,
    #[schema(minimum = 1, maximum = 200)]
    pub h: Option<u32>,
    /// What the client renders: markdown text, a chart spec (type, x, y, series), a metric's comparison.
    #[schema(value_type = Option<Value>)]
    pub config: Option<serde_json::Value>,
    /// `{"sql": "SELECT ..."}` (one read) or `{"analysis": "id", "params": {...}}`; `null` removes it.
    #[schema(value_type = Option<ItemQuery>)]
    pub query: Option<serde_json::Value>,
    /// Refresh every this many seconds; `null` for manual only.
    #[schema(value_type = Option<u64>, minimum = 5)]
    pub refresh_secs: Option<serde_json::Value>,
}

impl TryFrom<ItemBody> for ItemDraft {
    type Error = ApiError;

    fn try_from(body: ItemBody) -> Result<Self, ApiError> {
        let invalid = |e: pluto_duck_domain::DomainError| ApiError::invalid(e.to_string());
        let kind = body.kind.as_deref().map(ItemKind::parse).transpose().map_err(invalid)?;
        let source = match body.query {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(q) => Some(Some(match (q["sql"].as_str(), q["analysis"].as_str()) {
                (Some(sql), None) => ItemSource::Sql(sql.to_owned()),
                (None, Some(id)) => ItemSource::Analysis {
                    id: Identifier::parse(id).map_err(invalid)?,
                    params: match &q["params"] {
                        serde_json::Value::Null => "{}".to_owned(),
                        p if p.is_object() => p.to_string(),
                        _ => return Err(ApiError::invalid("query.params must be an object")),
                    },
                },
                _ => {
                    return Err(ApiError::invalid(
                        "query is {\"sql\": ...} or {\"analysis\": ..., \"params\"?: {...}}",
                    ))
                }
            })),
        };
        let refresh_secs = match body.refresh_secs {
            None => None,
            Some(serde_json::Value::Null) => Some(None),
            Some(v) => Some(Some(v.as_u64().ok_or_else(|| {
                ApiError::invalid("refresh_secs must be a whole number of seconds or null")
            })?)),
        };
        Ok(ItemDraft {
            kind,
            title: body.title,
            x: body.x,
            y: body.y,
            w: body.w,
            h: body.h,
            config: body.config.map(|c| c.to_string()),
            source,
            refresh_secs,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BoardDto {
    pub id: String,
    pub project: String,
    pub name: String,
    pub description: String,
    pub position: u32,
    /// Any JSON the client owns, as it was given.
    #[schema(value_type = Value)]
    pub document: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// With `GET /boards/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<ItemDto>>,
}

impl BoardDto {
    pub fn new(b: Board, items: Option<Vec<BoardItem>>) -> Self {
        Self {
            id: b.id,
            project: b.project.to_string(),
            name: b.name,
            description: b.description,
            position: b.position,
            document: serde_json::from_str(&b.document).unwrap_or(serde_json::Value::Null),
            created_at: b.created_at,
            updated_at: b.updated_at,
            items: items.map(|items| items.into_iter().map(ItemDto::from).collect()),
        }
    }

    pub fn list(boards: Vec<Board>) -> Vec<Self> {
        boards.into_iter().map(|b| Self::new(b, None)).collect()
    }
}

impl From<Board> for BoardDto {
    fn from(b: Board) -> Self {
        Self::new(b, None)
    }
}

impl From<(Board, Vec<BoardItem>)> for BoardDto {
    fn from((b, items): (Board, Vec<BoardItem>)) -> Self {
        Self::new(b, Some(items))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemDto {
    pub id: String,
    pub board: String,
    #[schema(value_type = ItemKindName)]
    pub kind: String,
    pub title: String,
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    #[schema(value_type = Value)]
    pub config: serde_json::Value,
    #[schema(value_type = Option<ItemQuery>)]
    pub query: Option<serde_json::Value>,
    pub refresh_secs: Option<u64>,
    /// The last result: `{"ran_at", "columns", "rows" (at most 1000), "truncated"}`.
    #[schema(value_type = Option<Object>)]
    pub snapshot: Option<serde_json::Value>,
    /// Why the last refresh failed (the snapshot is the one before).
    pub last_error: Option<String>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<BoardItem> for ItemDto {
    fn from(i: BoardItem) -> Self {
        Self {
            id: i.id,
            board: i.board,
            kind: i.kind.as_str().to_owned(),
            title: i.title,
            x: i.x,
            y: i.y,
            w: i.w,
            h: i.h,
            config: serde_json::from_str(&i.config).unwrap_or(serde_json::Value::Null),
            query: i.source.map(|s| match s {
                ItemSource::Sql(sql) => serde_json::json!({ "sql": sql }),
                ItemSource::Analysis { id, params } => serde_json::json!({
                    "analysis": id.as_str(),
                    "params": serde_json::from_str::<serde_json::Value>(&params).unwrap_or_default(),
                }),
            }),
            refresh_secs: i.refresh_secs,
            snapshot: i.snapshot.map(|s| {
                let mut v: serde_json::Value = serde_json::from_str(&s.data).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.insert("ran_at".into(), serde_json::Value::from(s.ran_at.to_rfc3339()));
                }
                v
            }),
            last_error: i.last_error,
            updated_at: i.updated_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_kinds_are_the_ones_the_domain_takes() {
        for k in ItemKindName::VALUES {
            assert!(ItemKind::parse(k).is_ok(), "{k}");
        }
    }
}

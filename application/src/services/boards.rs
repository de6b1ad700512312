//! Boards and their items. An item backed by a query keeps a bounded snapshot of its last result with the time it
//! ran; a failed refresh keeps the previous snapshot and records the error on the item. Items with a refresh
//! interval are refreshed by `refresh_due`, which the server's scheduler calls; the schedule lives in the items
//! themselves, so it survives restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use pluto_duck_domain::{Board, BoardItem, ItemKind, ItemSource, ProjectId, RunStatus, Snapshot};
use tracing::{info, warn};

use super::analysis_runs::{AnalysisRunner, ExecuteOptions};
use super::query::QueryService;
use crate::ports::{BlobStore, MetadataStore};
use crate::AppError;

/// Rows kept in a snapshot.
pub const SNAPSHOT_ROWS: u64 = 1000;

#[derive(Debug, Clone, Default)]
pub struct BoardDraft {
    pub name: Option<String>,
    pub description: Option<String>,
    pub document: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct ItemDraft {
    pub kind: Option<ItemKind>,
    pub title: Option<String>,
    pub x: Option<u32>,
    pub y: Option<u32>,
    pub w: Option<u32>,
    pub h: Option<u32>,
    pub config: Option<String>,
    /// `Some(None)` removes the query.
    pub source: Option<Option<ItemSource>>,
    pub refresh_secs: Option<Option<u64>>,
}

pub struct BoardService {
    metadata: Arc<dyn MetadataStore>,
    blobs: Arc<dyn BlobStore>,
    queries: Arc<QueryService>,
    analyses: Arc<AnalysisRunner>,
}

fn image_key(project: &ProjectId, board: &str, item: &str) -> String {
    format!("{project}/boards/{board}/{item}")
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

impl BoardService {
    pub fn new(
        metadata: Arc<dyn MetadataStore>,
        blobs: Arc<dyn BlobStore>,
        queries: Arc<QueryService>,
        analyses: Arc<AnalysisRunner>,
    ) -> Self {
        Self {
            metadata,
            blobs,
            queries,
            analyses,
        }
    }

    pub async fn list(&self, project: &ProjectId) -> Result<Vec<Board>, AppError> {
        Ok(self.metadata.list_boards(project).await?)
    }

    pub async fn get(&self, project: &ProjectId, id: &str) -> Result<(Board, Vec<BoardItem>), AppError> {
        let board = self
            .list(project)
            .await?
            .into_iter()
            .find(|b| b.id == id)
            .ok_or_else(|| AppError::NotFound {
                what: "board",
                id: id.to_owned(),
            })?;
        let items = self
            .metadata
            .list_items(Some(project.clone()), Some(board.id.clone()))
            .await?;
        Ok((board, items))
    }

    fn check_name(name: &str) -> Result<String, AppError> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AppError::Invalid("a board name is 1 to 200 characters".into()));
        }
        Ok(name.to_owned())
    }

    pub async fn create(&self, project: &ProjectId, draft: BoardDraft) -> Result<Board, AppError> {
        let name = Self::check_name(draft.name.as_deref().unwrap_or_default())?;
        let position = self
            .list(project)
            .await?
            .iter()
            .map(|b| b.position + 1)
            .max()
            .unwrap_or(0);
        let now = Utc::now();
        let board = Board {
            id: new_id(),
            project: project.clone(),
            name,
            description: draft.description.unwrap_or_default(),
            position,
            document: draft.document.unwrap_or_else(|| "{}".into()),
            created_at: now,
            updated_at: now,
        };
        self.metadata.put_board(&board).await?;
        Ok(board)
    }

    pub async fn update(&self, project: &ProjectId, id: &str, draft: BoardDraft) -> Result<Board, AppError> {
        let (mut board, _) = self.get(project, id).await?;
        if let Some(n) = draft.name {
            board.name = Self::check_name(&n)?;
        }
        if let Some(d) = draft.description {
            board.description = d;
        }
        if let Some(doc) = draft.document {
            board.document = doc;
        }
        board.updated_at = Utc::now();
        self.metadata.put_board(&board).await?;
        Ok(board)
    }

    /// Deletes the board with its items (their snapshots go with them).
    pub async fn delete(&self, project: &ProjectId, id: &str) -> Result<(), AppError> {
        self.get(project, id).await?;
        self.metadata.delete_board(project, id).await?;
        self.blobs.delete_prefix(&format!("{project}/boards/{id}")).await?;
        Ok(())
    }

    /// Puts the boards in the given order; every board of the project must be named once.
    pub async fn reorder(&self, project: &ProjectId, ids: &[String]) -> Result<Vec<Board>, AppError> {
        let boards = self.list(project).await?;
        let mut given: Vec<&String> = ids.iter().collect();
        given.sort();
        let mut have: Vec<&String> = boards.iter().map(|b| &b.id).collect();
        have.sort();
        if given != have {
            return Err(AppError::Invalid(
                "reorder takes every board id of the project exactly once".into(),
            ));
        }
        for mut b in boards {
            let position = ids.iter().position(|i| *i == b.id).unwrap_or(0);
            b.position = u32::try_from(position).unwrap_or(u32::MAX);
            self.metadata.put_board(&b).await?;
        }
        self.list(project).await
    }

    async fn item(&self, project: &ProjectId, board: &str, id: &str) -> Result<BoardItem, AppError> {
        let (_, items) = self.get(project, board).await?;
        items
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| AppError::NotFound {
                what: "board item",
                id: id.to_owned(),
            })
    }

    fn apply(item: &mut BoardItem, d: ItemDraft) {
        if let Some(k) = d.kind {
            item.kind = k;
        }
        if let Some(t) = d.title {
            item.title = t;
        }
        item.x = d.x.unwrap_or(item.x);
        item.y = d.y.unwrap_or(item.y);
        item.w = d.w.unwrap_or(item.w);
        item.h = d.h.unwrap_or(item.h);
        if let Some(c) = d.config {
            item.config = c;
        }
        if let Some(s) = d.source {
            if s != item.source {
                // Another query: the old snapshot no longer describes it.
                item.snapshot = None;
                item.last_error = None;
            }
            item.source = s;
        }
        if let Some(r) = d.refresh_secs {
            item.refresh_secs = r;
        }
    }

    pub async fn add_item(&self, project: &ProjectId, board: &str, draft: ItemDraft) -> Result<BoardItem, AppError> {
        self.get(project, board).await?;
        let now = Utc::now();
        let mut item = BoardItem {
            id: new_id(),
            board: board.to_owned(),
            project: project.clone(),
            kind: draft
                .kind
                .ok_or_else(|| AppError::Invalid("an item needs a kind".into()))?,
            title: String::new(),
            x: 0,
            y: 0,
            w: 6,
            h: 4,
            config: "{}".into(),
            source: None,
            refresh_secs: None,
            snapshot: None,
            last_error: None,
            created_at: now,
            updated_at: now,
        };
        Self::apply(&mut item, draft);
        item.validate()?;
        Self::check_config(&item)?;
        self.check_source(project, &item).await?;
        self.metadata.put_item(&item).await?;
        Ok(item)
    }

    pub async fn update_item(
        &self,
        project: &ProjectId,
        board: &str,
        id: &str,
        draft: ItemDraft,
    ) -> Result<BoardItem, AppError> {
        let mut item = self.item(project, board, id).await?;
        Self::apply(&mut item, draft);
        item.updated_at = Utc::now();
        item.validate()?;
        Self::check_config(&item)?;
        self.check_source(project, &item).await?;
        self.metadata.put_item(&item).await?;
        Ok(item)
    }

    pub async fn delete_item(&self, project: &ProjectId, board: &str, id: &str) -> Result<(), AppError> {
        self.item(project, board, id).await?;
        self.metadata.delete_item(project, id).await?;
        self.blobs.delete_prefix(&image_key(project, board, id)).await?;
        Ok(())
    }

    /// Stores the image of an image item: an image by its bytes (PNG, JPEG, GIF, WebP), at most 5 MiB.
    pub async fn put_image(
        &self,
        project: &ProjectId,
        board: &str,
        id: &str,
        bytes: Vec<u8>,
    ) -> Result<BoardItem, AppError> {
        let mut item = self.item(project, board, id).await?;
        if item.kind != ItemKind::Image {
            return Err(AppError::Invalid(format!(
                "item {id} is a {}, not an image",
                item.kind.as_str()
            )));
        }
        if bytes.len() > pluto_duck_domain::MAX_IMAGE_BYTES {
            return Err(AppError::Invalid(format!(
                "the image is {} bytes; at most {} are taken",
                bytes.len(),
                pluto_duck_domain::MAX_IMAGE_BYTES
            )));
        }
        let Some(mime) = pluto_duck_domain::image_type(&bytes) else {
            return Err(AppError::Invalid(
                "not an image: PNG, JPEG, GIF or WebP are taken".into(),
            ));
        };
        self.blobs.put(&image_key(project, board, id), bytes).await?;
        item.config = serde_json::json!({"image": mime}).to_string();
        item.updated_at = Utc::now();
        self.metadata.put_item(&item).await?;
        Ok(item)
    }

    /// The image of an image item and its type.
    pub async fn image(&self, project: &ProjectId, board: &str, id: &str) -> Result<(String, Vec<u8>), AppError> {
        self.item(project, board, id).await?;
        let bytes = self
            .blobs
            .get(&image_key(project, board, id))
            .await?
            .ok_or_else(|| AppError::NotFound {
                what: "image",
                id: id.to_owned(),
            })?;
        let mime = pluto_duck_domain::image_type(&bytes).unwrap_or("application/octet-stream");
        Ok((mime.to_owned(), bytes))
    }

    /// A chart's config is a spec a front end can render: `type` (bar, line, area, scatter, pie), `x` a column, `y`
    /// a column or a list of them, `series` optionally a column. Other kinds' configs are JSON objects.
    fn check_config(item: &BoardItem) -> Result<(), AppError> {
        let v: serde_json::Value = serde_json::from_str(&item.config)
            .map_err(|_| AppError::Invalid("an item's config is a JSON object".into()))?;
        let Some(o) = v.as_object() else {
            return Err(AppError::Invalid("an item's config is a JSON object".into()));
        };
        if item.kind != ItemKind::Chart || o.is_empty() {
            return Ok(());
        }
        let bad = |m: &str| AppError::Invalid(format!("chart config: {m}"));
        match o.get("type").and_then(|t| t.as_str()) {
            Some("bar" | "line" | "area" | "scatter" | "pie") => {}
            _ => return Err(bad("`type` is bar, line, area, scatter or pie")),
        }
        if !o.get("x").is_some_and(|x| x.is_string()) {
            return Err(bad("`x` names a column"));
        }
        let y_ok = match o.get("y") {
            Some(serde_json::Value::String(_)) => true,
            Some(serde_json::Value::Array(a)) => !a.is_empty() && a.iter().all(|c| c.is_string()),
            _ => false,
        };
        if !y_ok {
            return Err(bad("`y` names a column or a list of columns"));
        }
        if o.get("series").is_some_and(|s| !s.is_string()) {
            return Err(bad("`series` names a column"));
        }
        Ok(())
    }

    /// A query item must read, and an analysis item must name an analysis of the project.
    async fn check_source(&self, project: &ProjectId, item: &BoardItem) -> Result<(), AppError> {
        match &item.source {
            Some(ItemSource::Sql(sql)) => {
                let statements = pluto_duck_domain::check_user_sql(sql)?;
                match statements.as_slice() {
                    [s] if s.is_read => Ok(()),
                    [s] => Err(AppError::Invalid(format!(
                        "an item's query must read: {} is a write",
                        s.kind
                    ))),
                    _ => Err(AppError::Invalid("an item's query is one statement".into())),
                }
            }
            Some(ItemSource::Analysis { id, .. }) => {
                self.analyses.analysis(project, id.as_str()).await?;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// Runs the item's query and stores the snapshot; a failure is recorded on the item, the old snapshot kept.
    pub async fn execute(&self, project: &ProjectId, board: &str, id: &str) -> Result<BoardItem, AppError> {
        let item = self.item(project, board, id).await?;
        self.refresh(item).await
    }

    async fn refresh(&self, mut item: BoardItem) -> Result<BoardItem, AppError> {
        let Some(source) = item.source.clone() else {
            return Err(AppError::Invalid(format!("item {} has no query", item.id)));
        };
        match self.snapshot(&item.project, &source).await {
            Ok(snapshot) => {
                item.snapshot = Some(snapshot);
                item.last_error = None;
            }
            Err(e) => {
                warn!(item = %item.id, error = %e, "board item refresh failed");
                item.last_error = Some(e.to_string());
            }
        }
        item.updated_at = Utc::now();
        self.metadata.put_item(&item).await?;
        Ok(item)
    }

    async fn snapshot(&self, project: &ProjectId, source: &ItemSource) -> Result<Snapshot, AppError> {
        let (run, page) = match source {
            ItemSource::Sql(sql) => {
                self.queries
                    .read(
                        project,
                        sql.clone(),
                        Some(SNAPSHOT_ROWS),
                        "board",
                        Duration::from_secs(600),
                    )
                    .await?
            }
            ItemSource::Analysis { id, params } => {
                // The analysis runs first when it is stale, with the item's parameters; then its rows are read.
                let params: BTreeMap<String, String> = serde_json_params(params)?;
                let run = self
                    .analyses
                    .execute(
                        project,
                        id.as_str(),
                        ExecuteOptions {
                            params,
                            actor: Some("board".into()),
                            ..Default::default()
                        },
                    )
                    .await?;
                let (run, _) = self.analyses.wait(project, &run.id, Duration::from_secs(600)).await?;
                if run.status != RunStatus::Succeeded {
                    return Err(AppError::Invalid(format!(
                        "analysis {id} did not run: {}",
                        run.failure.map(|f| f.message).unwrap_or_default()
                    )));
                }
                self.analyses.data(project, id.as_str(), SNAPSHOT_ROWS, 0).await?
            }
        };
        let batches: Vec<_> = page
            .batches
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut writer = arrow_json::ArrayWriter::new(Vec::new());
        for b in &batches {
            writer
                .write(b)
                .map_err(|e| AppError::Invalid(format!("snapshot: {e}")))?;
        }
        writer
            .finish()
            .map_err(|e| AppError::Invalid(format!("snapshot: {e}")))?;
        let rows = String::from_utf8_lossy(&writer.into_inner()).into_owned();
        let rows = if rows.trim().is_empty() { "[]".to_owned() } else { rows };
        let rows: serde_json::Value =
            serde_json::from_str(&rows).map_err(|e| AppError::Invalid(format!("snapshot: {e}")))?;
        let columns: Vec<serde_json::Value> = run
            .columns
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "type": c.data_type}))
            .collect();
        Ok(Snapshot {
            ran_at: Utc::now(),
            data: serde_json::json!({"columns": columns, "rows": rows, "truncated": run.truncated}).to_string(),
        })
    }

    /// [`Self::refresh_due`] on the one server of a fleet that holds the board-refresh lease (taken over when its
    /// holder stops renewing it for 15 s), so every refresh runs once; 0 elsewhere.
    pub async fn refresh_due_leased(&self, holder: &str) -> Result<usize, AppError> {
        if !self.metadata.try_lease("board-refresh", holder, 15).await? {
            return Ok(0);
        }
        self.refresh_due().await
    }

    /// Refreshes every item whose interval has passed; returns how many. Called by the server's scheduler.
    pub async fn refresh_due(&self) -> Result<usize, AppError> {
        let now = Utc::now();
        let due: Vec<BoardItem> = self
            .metadata
            .list_items(None, None)
            .await?
            .into_iter()
            .filter(|i| i.next_refresh(now).is_some_and(|t| t <= now))
            .collect();
        let n = due.len();
        for item in due {
            let id = item.id.clone();
            if let Err(e) = self.refresh(item).await {
                warn!(item = %id, error = %e, "scheduled refresh failed");
            }
        }
        if n > 0 {
            info!(items = n, "board items refreshed");
        }
        Ok(n)
    }
}

/// The item's parameters (a JSON object) as text values.
fn serde_json_params(text: &str) -> Result<BTreeMap<String, String>, AppError> {
    let values: BTreeMap<String, serde_json::Value> =
        serde_json::from_str(if text.trim().is_empty() { "{}" } else { text })
            .map_err(|_| AppError::Invalid("an item's parameters are a JSON object".into()))?;
    Ok(values
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, text)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_schema::{DataType, Field, Schema};
    use pluto_duck_domain::Column;

    use super::*;
    use crate::ports::{
        MockAnalysisStore, MockBlobStore, MockMetadataStore, MockResultStore, MockSourceCatalog, MockWarehouse,
        QueryStream, ResultPage, StoredResult, WarehouseError,
    };
    use crate::services::{AnalysisService, ChangeLog, Jobs, QueryLimits, RunHub};
    use crate::ErrorKind;

    /// Boards and items kept in shared vectors, so a test can see what the service stored.
    #[derive(Default, Clone)]
    struct Stored {
        boards: Arc<StdMutex<Vec<Board>>>,
        items: Arc<StdMutex<Vec<BoardItem>>>,
    }

    fn metadata(stored: &Stored) -> MockMetadataStore {
        let mut md = MockMetadataStore::new();
        let b = stored.boards.clone();
        md.expect_list_boards()
            .returning(move |_| Ok(b.lock().unwrap().clone()));
        let b = stored.boards.clone();
        md.expect_put_board().returning(move |board| {
            let mut all = b.lock().unwrap();
            all.retain(|x| x.id != board.id);
            all.push(board.clone());
            Ok(())
        });
        let i = stored.items.clone();
        md.expect_list_items().returning(move |_, board| {
            Ok(i.lock()
                .unwrap()
                .iter()
                .filter(|x| board.as_ref().is_none_or(|b| &x.board == b))
                .cloned()
                .collect())
        });
        let i = stored.items.clone();
        md.expect_put_item().returning(move |item| {
            let mut all = i.lock().unwrap();
            all.retain(|x| x.id != item.id);
            all.push(item.clone());
            Ok(())
        });
        let (b, i) = (stored.boards.clone(), stored.items.clone());
        md.expect_delete_board().returning(move |_, id| {
            b.lock().unwrap().retain(|x| x.id != id);
            i.lock().unwrap().retain(|x| x.board != id);
            Ok(true)
        });
        // Run state of the board's queries.
        md.expect_insert_run().returning(|_| Ok(()));
        md.expect_update_run().returning(|_| Ok(()));
        md.expect_get_setting().returning(|_| Ok(None));
        md.expect_put_setting().returning(|_, _| Ok(()));
        md
    }

    fn service(
        md: MockMetadataStore,
        blobs: MockBlobStore,
        wh: MockWarehouse,
        results: MockResultStore,
    ) -> BoardService {
        let md: Arc<dyn MetadataStore> = Arc::new(md);
        let wh: Arc<dyn crate::ports::Warehouse> = Arc::new(wh);
        let jobs = Jobs::new(md.clone(), Arc::new(RunHub::new(100)));
        let changes = Arc::new(ChangeLog::new(md.clone()));
        let queries = Arc::new(QueryService::new(
            wh.clone(),
            Arc::new(results),
            jobs.clone(),
            changes.clone(),
            QueryLimits::default(),
        ));
        let analyses = Arc::new(AnalysisRunner::new(
            Arc::new(AnalysisService::new(Arc::new(MockAnalysisStore::new()))),
            wh,
            Arc::new(MockSourceCatalog::new()),
            md.clone(),
            jobs,
            changes,
            queries.clone(),
        ));
        BoardService::new(md, Arc::new(blobs), queries, analyses)
    }

    fn plain(stored: &Stored) -> BoardService {
        service(
            metadata(stored),
            MockBlobStore::new(),
            MockWarehouse::new(),
            MockResultStore::new(),
        )
    }

    fn p() -> ProjectId {
        ProjectId::default_project()
    }

    fn board_named(name: &str) -> BoardDraft {
        BoardDraft {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn sql_item(sql: &str) -> ItemDraft {
        ItemDraft {
            kind: Some(ItemKind::Table),
            source: Some(Some(ItemSource::Sql(sql.into()))),
            ..Default::default()
        }
    }

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![7, 8]))]).unwrap()
    }

    #[tokio::test]
    async fn new_boards_go_last_and_names_are_checked_before_anything_is_stored() {
        let stored = Stored::default();
        let svc = plain(&stored);
        let a = svc.create(&p(), board_named("  Sales  ")).await.unwrap();
        let b = svc.create(&p(), board_named("Ops")).await.unwrap();
        assert_eq!((a.name.as_str(), a.position, b.position), ("Sales", 0, 1));
        for bad in ["", "   ", &"x".repeat(201)] {
            let err = svc.create(&p(), board_named(bad)).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Invalid);
        }
        assert_eq!(stored.boards.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn reorder_takes_every_board_exactly_once() {
        let stored = Stored::default();
        let svc = plain(&stored);
        let a = svc.create(&p(), board_named("a")).await.unwrap();
        let b = svc.create(&p(), board_named("b")).await.unwrap();
        let err = svc.reorder(&p(), std::slice::from_ref(&b.id)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let err = svc.reorder(&p(), &[b.id.clone(), b.id.clone()]).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Invalid);
        let boards = svc.reorder(&p(), &[b.id.clone(), a.id.clone()]).await.unwrap();
        let pos = |id: &str| boards.iter().find(|x| x.id == id).unwrap().position;
        assert_eq!((pos(&b.id), pos(&a.id)), (0, 1));
    }

    #[tokio::test]
    async fn items_with_a_write_query_or_a_bad_chart_are_refused_and_not_stored() {
        let stored = Stored::default();
        let svc = plain(&stored);
        let board = svc.create(&p(), board_named("b")).await.unwrap();
        let err = svc
            .add_item(&p(), &board.id, sql_item("DELETE FROM t"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("must read"), "{err}");
        let err = svc
            .add_item(&p(), &board.id, sql_item("SELECT 1; SELECT 2"))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("one statement"), "{err}");
        let chart = ItemDraft {
            kind: Some(ItemKind::Chart),
            config: Some(r#"{"type": "donut", "x": "a", "y": "b"}"#.into()),
            ..Default::default()
        };
        let err = svc.add_item(&p(), &board.id, chart).await.unwrap_err();
        assert!(err.to_string().contains("chart config"), "{err}");
        let err = svc
            .add_item(&p(), "no-such-board", sql_item("SELECT 1"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(stored.items.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refresh_stores_the_rows_and_a_failed_one_keeps_them_with_the_error() {
        let stored = Stored::default();
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut wh = MockWarehouse::new();
        let f = fail.clone();
        wh.expect_query().returning(move |_, _, _| {
            if f.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(WarehouseError::Sql {
                    message: "Catalog Error: Table t does not exist".into(),
                    position: None,
                });
            }
            Ok(QueryStream {
                schema: batch().schema(),
                columns: vec![Column {
                    name: "n".into(),
                    data_type: "BIGINT".into(),
                }],
                batches: Box::pin(futures::stream::iter(vec![Ok(batch())])),
            })
        });
        let mut results = MockResultStore::new();
        results.expect_write().returning(|_, _, batches| {
            let n = futures::executor::block_on(batches.collect::<Vec<_>>()).len() as u64;
            Ok(StoredResult { rows: n * 2, bytes: 16 })
        });
        results.expect_read().returning(|_, _, _| {
            Ok(ResultPage {
                schema: batch().schema(),
                total_rows: 2,
                batches: Box::pin(futures::stream::iter(vec![Ok(batch())])),
            })
        });
        let svc = service(metadata(&stored), MockBlobStore::new(), wh, results);
        let board = svc.create(&p(), board_named("b")).await.unwrap();
        let item = svc
            .add_item(&p(), &board.id, sql_item("SELECT n FROM t"))
            .await
            .unwrap();
        let done = svc.execute(&p(), &board.id, &item.id).await.unwrap();
        let snapshot = done.snapshot.clone().expect("a snapshot");
        let data: serde_json::Value = serde_json::from_str(&snapshot.data).unwrap();
        assert_eq!(data["rows"], serde_json::json!([{"n": 7}, {"n": 8}]));
        assert_eq!(data["columns"][0]["type"], "BIGINT");
        assert!(done.last_error.is_none());

        fail.store(true, std::sync::atomic::Ordering::SeqCst);
        let failed = svc.execute(&p(), &board.id, &item.id).await.unwrap();
        assert_eq!(failed.snapshot, Some(snapshot), "the previous rows are kept");
        assert!(failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("does not exist"));
        let kept = stored
            .items
            .lock()
            .unwrap()
            .iter()
            .find(|i| i.id == item.id)
            .cloned()
            .unwrap();
        assert_eq!(kept.last_error, failed.last_error);
    }

    #[tokio::test]
    async fn only_items_whose_interval_has_passed_are_refreshed() {
        let stored = Stored::default();
        let svc = plain(&stored);
        let board = svc.create(&p(), board_named("b")).await.unwrap();
        let mut never = svc.add_item(&p(), &board.id, sql_item("SELECT 1")).await.unwrap();
        never.refresh_secs = None;
        let mut later = svc.add_item(&p(), &board.id, sql_item("SELECT 2")).await.unwrap();
        later.refresh_secs = Some(3600);
        later.snapshot = Some(Snapshot {
            ran_at: Utc::now(),
            data: "{}".into(),
        });
        stored
            .items
            .lock()
            .unwrap()
            .retain(|i| i.id != never.id && i.id != later.id);
        stored.items.lock().unwrap().extend([never, later]);
        // Neither is due: the warehouse mock has no expectations and would panic if asked.
        assert_eq!(svc.refresh_due().await.unwrap(), 0);
    }

    #[tokio::test]
    async fn images_are_checked_by_their_bytes_and_kept_in_the_blob_store() {
        let stored = Stored::default();
        let mut blobs = MockBlobStore::new();
        blobs
            .expect_put()
            .withf(|key, bytes| key.starts_with("default/boards/") && bytes.starts_with(b"\x89PNG"))
            .times(1)
            .returning(|_, _| Ok(()));
        blobs
            .expect_delete_prefix()
            .withf(|prefix| prefix.starts_with("default/boards/"))
            .times(1)
            .returning(|_| Ok(1));
        let svc = service(metadata(&stored), blobs, MockWarehouse::new(), MockResultStore::new());
        let board = svc.create(&p(), board_named("b")).await.unwrap();
        let image = ItemDraft {
            kind: Some(ItemKind::Image),
            ..Default::default()
        };
        let item = svc.add_item(&p(), &board.id, image).await.unwrap();
        let err = svc
            .put_image(&p(), &board.id, &item.id, b"GIF? no, text".to_vec())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("not an image"), "{err}");
        let png = b"\x89PNG\r\n\x1a\n0000IHDR".to_vec();
        let item = svc.put_image(&p(), &board.id, &item.id, png).await.unwrap();
        assert!(item.config.contains("image/png"), "{}", item.config);
        // Deleting the board removes its items and their images (one prefix).
        svc.delete(&p(), &board.id).await.unwrap();
        assert!(stored.boards.lock().unwrap().is_empty());
        assert!(stored.items.lock().unwrap().is_empty());
    }
}

use pluto_duck_domain::DomainError;
use thiserror::Error;

use crate::ports::{
    AnalysisStoreError, BlobError, LlmError, ObjectStoreError, RepoError, ResultError, SecretError, SourceError,
    TransformError, WarehouseError,
};

/// Transport-neutral classification: HTTP maps it to a status, the CLI to an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    NotFound,
    Conflict,
    Forbidden,
    Unauthenticated,
    Timeout,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// The CLI's exit code for this kind.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Internal => 1,
            ErrorKind::Invalid => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Conflict => 4,
            ErrorKind::Forbidden | ErrorKind::Unauthenticated => 5,
            ErrorKind::Timeout => 6,
            ErrorKind::Unavailable => 7,
        }
    }

    /// Whether a client may read the detail. Only truly internal errors are hidden (they go to the log); a timeout
    /// or an unavailable service says what happened.
    pub fn shows_detail(self) -> bool {
        self != ErrorKind::Internal
    }

    /// The general problem type of this kind.
    pub fn problem(self) -> &'static ProblemType {
        PROBLEM_TYPES
            .iter()
            .find(|p| p.kind == self)
            .unwrap_or(&PROBLEM_TYPES[PROBLEM_TYPES.len() - 1])
    }
}

/// One kind of problem as a client sees it: the problem type's last segment (`urn:pluto-duck:problem:<slug>`),
/// its kind and its HTTP status.
#[derive(Debug, PartialEq, Eq)]
pub struct ProblemType {
    pub slug: &'static str,
    pub kind: ErrorKind,
    pub status: u16,
    pub title: &'static str,
}

const fn problem(slug: &'static str, kind: ErrorKind, status: u16, title: &'static str) -> ProblemType {
    ProblemType {
        slug,
        kind,
        status,
        title,
    }
}

/// The one table from error to status, problem type and (through its kind) exit code and visibility. The first
/// row of a kind is its general type; later rows refine it. `internal` is last.
pub const PROBLEM_TYPES: [ProblemType; 16] = [
    problem("invalid", ErrorKind::Invalid, 422, "Unprocessable Entity"),
    problem("not-found", ErrorKind::NotFound, 404, "Not Found"),
    problem("conflict", ErrorKind::Conflict, 409, "Conflict"),
    problem("forbidden", ErrorKind::Forbidden, 403, "Forbidden"),
    problem("unauthenticated", ErrorKind::Unauthenticated, 401, "Unauthorized"),
    problem("timeout", ErrorKind::Timeout, 504, "Gateway Timeout"),
    problem("unavailable", ErrorKind::Unavailable, 503, "Service Unavailable"),
    problem("bad-request", ErrorKind::Invalid, 400, "Bad Request"),
    problem("not-acceptable", ErrorKind::Invalid, 406, "Not Acceptable"),
    problem("payload-too-large", ErrorKind::Invalid, 413, "Payload Too Large"),
    problem(
        "unsupported-media-type",
        ErrorKind::Invalid,
        415,
        "Unsupported Media Type",
    ),
    problem("method-not-allowed", ErrorKind::NotFound, 405, "Method Not Allowed"),
    problem(
        "range-not-satisfiable",
        ErrorKind::Invalid,
        416,
        "Range Not Satisfiable",
    ),
    problem("sandbox", ErrorKind::Forbidden, 403, "Forbidden"),
    problem("missing-extension", ErrorKind::Unavailable, 503, "Service Unavailable"),
    problem("internal", ErrorKind::Internal, 500, "Internal Server Error"),
];

impl ProblemType {
    pub fn by_slug(slug: &str) -> Option<&'static ProblemType> {
        PROBLEM_TYPES.iter().find(|p| p.slug == slug)
    }

    /// The type for an HTTP status produced outside our handlers (axum rejections, 404/405 of the router).
    pub fn by_status(status: u16) -> &'static ProblemType {
        PROBLEM_TYPES
            .iter()
            .find(|p| p.status == status)
            .unwrap_or_else(|| match status {
                400..=499 => &PROBLEM_TYPES[7],
                _ => &PROBLEM_TYPES[PROBLEM_TYPES.len() - 1],
            })
    }
}

#[derive(Debug, Error)]
pub enum AppError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("{what} {id:?} not found")]
    NotFound { what: &'static str, id: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Timeout(String),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Results(#[from] ResultError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Analyses(#[from] AnalysisStoreError),
    #[error(transparent)]
    Blobs(#[from] BlobError),
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Transform(#[from] TransformError),
    #[error(transparent)]
    Objects(#[from] ObjectStoreError),
}

impl AppError {
    /// Where in the SQL the problem is, when the parser or the engine says.
    pub fn position(&self) -> Option<u64> {
        match self {
            AppError::Domain(DomainError::SqlSyntax { position, .. }) => *position,
            AppError::Warehouse(e) => e.position(),
            AppError::Results(crate::ports::ResultError::Upstream(e)) => e.position(),
            _ => None,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            AppError::Domain(DomainError::Cycle(_)) => ErrorKind::Conflict,
            AppError::Domain(DomainError::Sandbox(_)) => ErrorKind::Forbidden,
            AppError::Domain(_) | AppError::Invalid(_) => ErrorKind::Invalid,
            AppError::NotFound { .. } => ErrorKind::NotFound,
            AppError::Conflict(_) => ErrorKind::Conflict,
            AppError::Forbidden(_) => ErrorKind::Forbidden,
            AppError::Unavailable(_) => ErrorKind::Unavailable,
            AppError::Timeout(_) => ErrorKind::Timeout,
            AppError::Warehouse(e) => e.kind(),
            AppError::Repo(e) => e.kind(),
            AppError::Secret(e) => e.kind(),
            AppError::Results(e) => e.kind(),
            AppError::Source(e) => e.kind(),
            AppError::Analyses(e) => e.kind(),
            AppError::Blobs(e) => e.kind(),
            AppError::Llm(e) => e.kind(),
            AppError::Transform(e) => e.kind(),
            AppError::Objects(e) => e.kind(),
        }
    }

    /// The problem type a client sees: the kind's, or a refinement of it.
    pub fn problem(&self) -> &'static ProblemType {
        let refined = match self {
            AppError::Domain(DomainError::Sandbox(_)) => "sandbox",
            AppError::Warehouse(WarehouseError::Forbidden(_)) | AppError::Source(SourceError::Forbidden(_)) => {
                "sandbox"
            }
            AppError::Warehouse(WarehouseError::MissingExtension(_))
            | AppError::Source(SourceError::MissingExtension(_))
            | AppError::Results(ResultError::Upstream(WarehouseError::MissingExtension(_))) => "missing-extension",
            AppError::Objects(e) => match e.problem_slug() {
                Some(slug) => slug,
                None => return self.kind().problem(),
            },
            _ => return self.kind().problem(),
        };
        ProblemType::by_slug(refined).unwrap_or_else(|| self.kind().problem())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_general_type_and_slugs_are_unique() {
        for kind in [
            ErrorKind::Invalid,
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Forbidden,
            ErrorKind::Unauthenticated,
            ErrorKind::Timeout,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ] {
            assert_eq!(kind.problem().kind, kind);
        }
        let mut slugs: Vec<_> = PROBLEM_TYPES.iter().map(|p| p.slug).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), PROBLEM_TYPES.len());
        assert_eq!(ErrorKind::Internal.exit_code(), 1);
        assert!(!ErrorKind::Internal.shows_detail() && ErrorKind::Timeout.shows_detail());
    }

    #[test]
    fn refinements_keep_their_kind() {
        let e = AppError::Warehouse(WarehouseError::MissingExtension("x".into()));
        assert_eq!((e.problem().slug, e.problem().status), ("missing-extension", 503));
        let e = AppError::Domain(DomainError::Sandbox("no".into()));
        assert_eq!((e.problem().slug, e.kind()), ("sandbox", ErrorKind::Forbidden));
        assert_eq!(ProblemType::by_status(405).slug, "method-not-allowed");
        assert_eq!(ProblemType::by_status(418).slug, "bad-request");
    }
}

use pluto_duck_application::{AppError, ErrorKind};

/// What the CLI reports: one line and an exit code derived from the same `ErrorKind` HTTP uses.
#[derive(Debug)]
pub struct CliError {
    pub kind: ErrorKind,
    pub message: String,
}

impl CliError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// From the application's one table; documented in the README.
    pub fn exit_code(&self) -> u8 {
        self.kind.exit_code()
    }
}

impl From<AppError> for CliError {
    fn from(e: AppError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        Self::internal(e.to_string())
    }
}

pub type CliResult<T> = Result<T, CliError>;

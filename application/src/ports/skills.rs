use async_trait::async_trait;
use pluto_duck_domain::ProjectId;

/// A skill the agent may load: instructions a user wrote (`SKILL.md` with YAML front matter `name` and
/// `description`), offered to the model by name and description, its body loaded when the model asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    pub name: String,
    pub description: String,
    /// `user` or `project`: where it was found.
    pub scope: String,
}

/// Where skills live: the user's folder and the project's folder (a project's skill wins over a user's of the
/// same name). Unreadable or malformed files are skipped, never fatal.
#[cfg_attr(any(test, feature = "test-util"), mockall::automock)]
#[async_trait]
pub trait SkillStore: Send + Sync {
    async fn list(&self, project: &ProjectId) -> Vec<Skill>;
    /// The skill's instructions (the file without its front matter).
    async fn load(&self, project: &ProjectId, name: &str) -> Option<String>;
}

//! Skills as files: `<folder>/<name>/SKILL.md` (or `<folder>/<name>.md`) with YAML front matter `name` and
//! `description`, from the user's folder and the project's `skills/` folder (the project's wins on a name clash).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use pluto_duck_application::ports::{Skill, SkillStore};
use pluto_duck_domain::ProjectId;
use serde::Deserialize;

/// Skill files larger than this are skipped: a skill is instructions, not data.
const MAX_SKILL_BYTES: u64 = 256 * 1024;

pub struct FileSkills {
    user_dir: Option<PathBuf>,
    data_dir: PathBuf,
}

#[derive(Deserialize)]
struct FrontMatter {
    name: String,
    #[serde(default)]
    description: String,
}

struct Found {
    skill: Skill,
    body: String,
}

impl FileSkills {
    pub fn new(user_dir: Option<PathBuf>, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            user_dir,
            data_dir: data_dir.into(),
        }
    }

    fn scan(&self, project: &ProjectId) -> BTreeMap<String, Found> {
        let mut all = BTreeMap::new();
        if let Some(dir) = &self.user_dir {
            scan_dir(dir, "user", &mut all);
        }
        scan_dir(&project.folder(&self.data_dir).join("skills"), "project", &mut all);
        all
    }
}

fn scan_dir(dir: &Path, scope: &str, into: &mut BTreeMap<String, Found>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter_map(|p| {
            if p.is_dir() {
                Some(p.join("SKILL.md")).filter(|f| f.is_file())
            } else {
                (p.extension().is_some_and(|x| x == "md")).then_some(p)
            }
        })
        .collect();
    files.sort();
    for file in files {
        // A symlink could point anywhere: skills are read from real files in these folders only.
        let Ok(meta) = std::fs::symlink_metadata(&file) else {
            continue;
        };
        if !meta.is_file() || meta.len() > MAX_SKILL_BYTES {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        if let Some((front, body)) = split_front_matter(&text) {
            let Ok(fm) = serde_yaml::from_str::<FrontMatter>(front) else {
                continue;
            };
            let name = fm.name.trim().to_owned();
            if name.is_empty() || name.len() > 64 {
                continue;
            }
            into.insert(
                name.clone(),
                Found {
                    skill: Skill {
                        name,
                        description: fm.description.trim().to_owned(),
                        scope: scope.to_owned(),
                    },
                    body: body.trim().to_owned(),
                },
            );
        }
    }
}

fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text.strip_prefix("---")?;
    let rest = rest.strip_prefix('\n').or_else(|| rest.strip_prefix("\r\n"))?;
    let end = rest.find("\n---")?;
    let front = &rest[..end];
    let after = &rest[end + 4..];
    let body = after.split_once('\n').map(|(_, b)| b).unwrap_or("");
    Some((front, body))
}

#[async_trait]
impl SkillStore for FileSkills {
    async fn list(&self, project: &ProjectId) -> Vec<Skill> {
        self.scan(project).into_values().map(|f| f.skill).collect()
    }

    async fn load(&self, project: &ProjectId, name: &str) -> Option<String> {
        self.scan(project).remove(name).map(|f| f.body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[tokio::test]
    async fn project_skills_win_and_bad_files_are_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let user = tmp.path().join("user");
        let projects = tmp.path().join("data");
        let p = ProjectId::parse("alpha").unwrap();
        write(
            &user.join("revenue/SKILL.md"),
            "---\nname: revenue\ndescription: user's\n---\nUse net amounts.\n",
        );
        write(
            &user.join("cohorts.md"),
            "---\nname: cohorts\ndescription: cohort analysis\n---\nGroup by first month.\n",
        );
        write(&user.join("broken.md"), "---\nname: [\n---\nx\n");
        write(&user.join("nofront.md"), "just text\n");
        write(
            &p.folder(&projects).join("skills/revenue/SKILL.md"),
            "---\nname: revenue\ndescription: the project's\n---\nUse gross amounts.\n",
        );
        let store = FileSkills::new(Some(user), &projects);
        let list = store.list(&p).await;
        assert_eq!(
            list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
            vec!["cohorts", "revenue"]
        );
        let revenue = list.iter().find(|s| s.name == "revenue").unwrap();
        assert_eq!(
            (revenue.scope.as_str(), revenue.description.as_str()),
            ("project", "the project's")
        );
        assert_eq!(store.load(&p, "revenue").await.as_deref(), Some("Use gross amounts."));
        assert_eq!(store.load(&p, "nope").await, None);
    }
}

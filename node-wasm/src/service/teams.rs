//! Team (composite) tasks and skill profiles: creating a team task with
//! its sub-tasks, coordinating, applying, accepting, completing sub-tasks.

use super::{Intent, Result, channels};
use crate::core::op::{GLOBAL_CHANNEL, MAX_SUBTASKS, NewSubTask, NewTeamTask, OpBody, OpId};
use crate::core::state::State;
use crate::core::teams::{TeamStatus, TeamTask, Unfilled};
use crate::identity::NodeId;
use std::sync::Arc;

/// One sub-task of `createTeamTask`'s argument.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubTaskSpec {
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub required_skills: Vec<String>,
    #[serde(default)]
    pub reward: u64,
}

/// `createTeamTask`'s argument: the whole budget (rewards + bonus) is escrowed.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamTaskSpec {
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub subtasks: Vec<SubTaskSpec>,
    #[serde(default)]
    pub coordinator_bonus: u64,
    pub max_team_size: u8,
}

/// Creates a team task in `channel`.
pub fn create(channel: &str, spec: TeamTaskSpec) -> Result<Intent> {
    if channel.trim().is_empty() {
        return Err("choose a channel".into());
    }
    if spec.subtasks.len() > MAX_SUBTASKS {
        return Err(format!("a team task has at most {MAX_SUBTASKS} sub-tasks"));
    }
    let t = NewTeamTask {
        title: spec.title,
        description: spec.description,
        subtasks: spec
            .subtasks
            .into_iter()
            .map(|s| NewSubTask {
                title: s.title,
                description: s.description,
                required_skills: s.required_skills,
                reward: s.reward,
            })
            .collect(),
        coordinator_bonus: spec.coordinator_bonus,
        max_team_size: spec.max_team_size,
    };
    Ok(Intent::new(channel, OpBody::TeamTaskCreate(t)))
}

/// Replaces this node's skill profile (stored lowercased by the fold).
pub fn set_skills(skills: Vec<String>) -> Intent {
    Intent::new(GLOBAL_CHANNEL, OpBody::SkillsSet { skills })
}

/// Becomes the coordinator of an open team task.
pub fn claim(st: &State, task: OpId) -> Result<Intent> {
    Ok(Intent::new(channels::of_team(st, task)?, OpBody::TeamClaim { task }))
}

/// Applies to join a forming team.
pub fn apply(st: &State, task: OpId) -> Result<Intent> {
    Ok(Intent::new(channels::of_team(st, task)?, OpBody::TeamApply { task }))
}

/// The coordinator accepts `applicant`.
pub fn accept(st: &State, task: OpId, applicant: NodeId) -> Result<Intent> {
    Ok(Intent::new(channels::of_team(st, task)?, OpBody::TeamAccept { task, applicant }))
}

/// The assignee reports sub-task `index` (0-based) done.
pub fn complete_subtask(st: &State, task: OpId, index: u32) -> Result<Intent> {
    let index = u8::try_from(index).map_err(|_| "sub-task index must be 0 to 255".to_string())?;
    Ok(Intent::new(channels::of_team(st, task)?, OpBody::SubTaskComplete { task, index }))
}

/// For a team still forming: the first sub-task no accepted member
/// qualifies for; `None` once it started (or for an unknown id).
pub fn waiting_for(st: &State, task: OpId) -> Option<Unfilled> {
    st.teams.get(&task).and_then(|t| t.waiting_for(&st.skills))
}

/// Every team task not deleted, in id order.
pub fn live(st: &State) -> Vec<Arc<TeamTask>> {
    st.teams.values().filter(|t| t.status != TeamStatus::Deleted).cloned().collect()
}

/// `me`'s skills, comma-separated.
pub fn skills_of(st: &State, me: &NodeId) -> String {
    st.skills.get(me).map(|s| s.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::testkit::World;

    fn spec(n: usize) -> TeamTaskSpec {
        let sub = |i| SubTaskSpec {
            title: format!("part {i}"),
            required_skills: vec!["rust".into()],
            reward: 10,
            ..SubTaskSpec::default()
        };
        TeamTaskSpec {
            title: "team".into(),
            subtasks: (0..n).map(sub).collect(),
            max_team_size: 4,
            ..TeamTaskSpec::default()
        }
    }

    #[test]
    fn refusals() {
        assert_eq!(create("dev", spec(MAX_SUBTASKS + 1)).unwrap_err(), "a team task has at most 16 sub-tasks");
        assert_eq!(create("", spec(1)).unwrap_err(), "choose a channel");
        let w = World::dev();
        assert!(w.read(|st| claim(st, OpId::ZERO)).unwrap_err().starts_with("no team task"));
        assert_eq!(w.read(|st| complete_subtask(st, OpId::ZERO, 256)).unwrap_err(), "sub-task index must be 0 to 255");
        assert_eq!(w.read(|st| waiting_for(st, OpId::ZERO)), None);
    }

    #[test]
    fn a_team_forms_and_finishes() {
        let w = World::dev();
        let t = w.as_(0).run(|_| create("dev", spec(1))).expect("team task");
        w.as_(1).run(|_| Ok(set_skills(vec!["Rust".into()]))).expect("skills");
        assert_eq!(w.read(|st| skills_of(st, &w.id(1))), "rust");
        w.as_(0).run(|st| claim(st, t)).expect("coordinate");
        assert!(w.read(|st| waiting_for(st, t)).is_some(), "nobody qualifies yet");
        w.as_(1).run(|st| apply(st, t)).expect("apply");
        let bob = w.id(1);
        w.as_(0).run(|st| accept(st, t, bob)).expect("accept");
        assert_eq!(w.read(|st| waiting_for(st, t)), None, "started");
        w.as_(1).run(|st| complete_subtask(st, t, 0)).expect("done");
        assert_eq!(w.read(|st| live(st).len()), 1);
    }
}

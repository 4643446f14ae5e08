//! Team (composite) task rules. In the original these were node-local and
//! could never complete (sub-tasks were never assigned); here they are
//! replicated ops with a deterministic assignment rule and real escrow.
//!
//! Flow: `team_task_create` (status `open`, the whole budget — sub-task
//! rewards plus coordinator bonus — escrowed from the creator) →
//! `team_claim` (the author becomes coordinator, `forming_team`) →
//! `team_apply` (needs a skill profile and, if skills are required, a
//! positive skill match) → `team_accept` by the coordinator → once the
//! assignment rule can give every sub-task a member, the team starts
//! (`in_progress`) and its workspace channel `team-<48 hex of the task id>` is
//! created → `subtask_complete` by each sub-task's assignee → when all are
//! done, the escrow pays out (each payment taxed like a task completion, tax
//! to the parent channel's treasury), the task is `completed` and the
//! workspace is dissolved.
//!
//! **Assignment rule** (`team_assignment`): recomputed from scratch after
//! every accept while the team is forming. Sub-tasks are taken in index
//! order; each goes to the not-yet-assigned member with the highest skill
//! match for it, ties to the lowest node id. A sub-task with required skills
//! needs a match > 0; one without can go to anyone. The coordinator is not
//! a candidate (it earns the bonus). If some sub-task cannot be assigned the
//! team keeps forming.
//!
//! **Skill match** (`skill_match`): `|skills ∩ required| × 1000 / |required|`
//! in per-mille, ASCII-case-insensitive (skills are stored ASCII-lowercased,
//! which unlike Unicode case mapping cannot change between Rust releases);
//! 1000 when nothing is required.

use crate::codec::Writer;
pub use crate::core::common::WORKSPACE_PREFIX;
use crate::core::common::{Channel, Ctx, hlc, is_blank, list, opt_node};
use crate::core::economy::Params;
use crate::core::hlc::Hlc;
use crate::core::ledger::Ledger;
use crate::core::op::{GLOBAL_CHANNEL, MAX_TITLE_CHARS, NewTeamTask, OpId, TaskId};
use crate::core::reject::{Payer, Reject};
use crate::core::upgrades::PolicyHooks;
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
/// Largest team allowed (members plus coordinator).
pub const MAX_TEAM_SIZE: u8 = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TeamStatus {
    Open,
    FormingTeam,
    InProgress,
    Completed,
    Deleted,
}

impl TeamStatus {
    pub fn name(self) -> &'static str {
        match self {
            TeamStatus::Open => "open",
            TeamStatus::FormingTeam => "forming_team",
            TeamStatus::InProgress => "in_progress",
            TeamStatus::Completed => "completed",
            TeamStatus::Deleted => "deleted",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubTask {
    pub title: String,
    pub description: String,
    /// Lowercased, as matched.
    pub required_skills: Vec<String>,
    pub reward: u64,
    pub assignee: Option<NodeId>,
    pub done: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TeamTask {
    pub id: TaskId,
    pub channel: String,
    pub owner: NodeId,
    pub title: String,
    pub description: String,
    pub subtasks: Vec<SubTask>,
    pub coordinator_bonus: u64,
    pub max_team_size: u8,
    pub coordinator: Option<NodeId>,
    pub members: BTreeSet<NodeId>,
    /// Applicant → skill match (per-mille) at application time.
    pub applicants: BTreeMap<NodeId, u16>,
    pub status: TeamStatus,
    pub escrow: u64,
    pub workspace: Option<String>,
    pub created: Hlc,
    pub updated: Hlc,
}

/// Every team task by id, shared (`Arc`) like tasks so checkpoints copy
/// pointers; a rule that changes one copies it on write
/// ([`Teams::team_mut`]). Derefs to the map; serialized as the bare map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Teams(pub BTreeMap<TaskId, Arc<TeamTask>>);

/// Skill profiles (lowercased), by node: what team applications and the
/// assignment rule match against. Derefs to the map; serialized as the map.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Skills(pub BTreeMap<NodeId, BTreeSet<String>>);

macro_rules! deref_to_map {
    ($t:ty, $target:ty) => {
        impl Deref for $t {
            type Target = $target;
            fn deref(&self) -> &$target {
                &self.0
            }
        }
        impl DerefMut for $t {
            fn deref_mut(&mut self) -> &mut $target {
                &mut self.0
            }
        }
    };
}
deref_to_map!(Teams, BTreeMap<TaskId, Arc<TeamTask>>);
deref_to_map!(Skills, BTreeMap<NodeId, BTreeSet<String>>);

/// Skill match in per-mille (see module docs). `skills` are lowercased.
pub fn skill_match(skills: &BTreeSet<String>, required: &[String]) -> u16 {
    if required.is_empty() {
        return 1000;
    }
    let hit = required.iter().filter(|r| skills.contains(*r)).count();
    (hit * 1000 / required.len()) as u16
}

/// The union of every sub-task's required skills, for matching applicants.
fn team_skills(t: &TeamTask) -> Vec<String> {
    let set: BTreeSet<&String> = t.subtasks.iter().flat_map(|s| &s.required_skills).collect();
    set.into_iter().cloned().collect()
}

/// Workspace channel name of a team task: `team-` and the first 24 bytes of
/// its id in hex (53 characters, within the 64-byte channel-name limit;
/// 192 bits leave no room for a collision).
pub fn workspace_name(id: &OpId) -> String {
    format!("{WORKSPACE_PREFIX}{}", hex::encode(&id.0[..24]))
}

/// The assignment rule: `Some(assignees)` when every sub-task gets a member.
pub fn assign(
    subtasks: &[SubTask],
    members: &BTreeSet<NodeId>,
    skills: &BTreeMap<NodeId, BTreeSet<String>>,
) -> Option<Vec<NodeId>> {
    plan(subtasks, members, skills).ok()
}

/// Why a forming team has not started yet: the first sub-task the
/// assignment rule cannot fill from the accepted members (a read model for
/// the UI and the JS API; not part of the replicated state).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unfilled {
    /// 0-based index of the sub-task.
    pub index: usize,
    pub title: String,
    pub required_skills: Vec<String>,
    /// The same, as a sentence for the user.
    pub sentence: String,
}

impl TeamTask {
    /// For a team still forming: the sub-task that lacks a qualified member
    /// (`None` once it started, or while it has no members to assign).
    pub fn waiting_for(&self, skills: &BTreeMap<NodeId, BTreeSet<String>>) -> Option<Unfilled> {
        if self.status != TeamStatus::FormingTeam {
            return None;
        }
        let index = plan(&self.subtasks, &self.members, skills).err()?;
        let st = self.subtasks.get(index)?;
        let needs = if st.required_skills.is_empty() {
            "any member".to_string()
        } else {
            format!("a member with {}", st.required_skills.join(" or "))
        };
        let sentence = format!(
            "waiting for {needs} for sub-task {} \"{}\" ({} accepted member(s), each assigned to one sub-task)",
            index + 1,
            st.title,
            self.members.len()
        );
        Some(Unfilled { index, title: st.title.clone(), required_skills: st.required_skills.clone(), sentence })
    }
}

/// The assignment itself: the assignees in sub-task order, or the index of
/// the first sub-task no free member qualifies for.
fn plan(
    subtasks: &[SubTask],
    members: &BTreeSet<NodeId>,
    skills: &BTreeMap<NodeId, BTreeSet<String>>,
) -> Result<Vec<NodeId>, usize> {
    let empty = BTreeSet::new();
    let mut free: BTreeSet<NodeId> = members.clone();
    let mut out = Vec::with_capacity(subtasks.len());
    for st in subtasks {
        let mut best: Option<(u16, NodeId)> = None;
        // Members iterate in id order, so `>` keeps the lowest id on ties.
        for m in &free {
            let score = skill_match(skills.get(m).unwrap_or(&empty), &st.required_skills);
            if !st.required_skills.is_empty() && score == 0 {
                continue;
            }
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, *m));
            }
        }
        let Some((_, who)) = best else { return Err(out.len()) };
        free.remove(&who);
        out.push(who);
    }
    Ok(out)
}

fn validate_team(t: &NewTeamTask) -> Result<u64, Reject> {
    let chars = t.title.chars().count();
    if chars == 0 || chars > MAX_TITLE_CHARS || is_blank(&t.title) {
        return Err(Reject::BadTitle { chars });
    }
    if t.subtasks.is_empty() {
        return Err(Reject::BadTeam("at least one sub-task is needed"));
    }
    if t.max_team_size == 0 || t.max_team_size > MAX_TEAM_SIZE {
        return Err(Reject::BadTeam("max_team_size must be 1 to 32"));
    }
    // One member per sub-task plus the coordinator.
    if (t.max_team_size as usize) < t.subtasks.len() + 1 {
        return Err(Reject::BadTeam("max_team_size must leave room for one member per sub-task and the coordinator"));
    }
    let mut total: u64 = t.coordinator_bonus;
    for st in &t.subtasks {
        if is_blank(&st.title) || st.title.chars().count() > MAX_TITLE_CHARS {
            return Err(Reject::BadTeam("sub-task titles must be 1 to 200 characters"));
        }
        total = total.checked_add(st.reward).ok_or(Reject::BadTeam("total reward overflows"))?;
    }
    Ok(total)
}

impl Skills {
    /// Rule `skills_set`: replaces the author's skill profile (lowercased,
    /// deduplicated, blank entries refused).
    pub(crate) fn skills_set(&mut self, cx: Ctx<'_>, skills: &[String]) -> Result<(), Reject> {
        let mut set = BTreeSet::new();
        for s in skills {
            if is_blank(s) {
                return Err(Reject::BadTag(s.clone()));
            }
            set.insert(s.to_ascii_lowercase());
        }
        self.0.insert(cx.author, set);
        Ok(())
    }

    /// The skills part of the canonical state encoding, in node order.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.0.len() as u64);
        for (n, skills) in &self.0 {
            w.raw(&n.0).u64(skills.len() as u64);
            for s in skills {
                w.str(s);
            }
        }
    }
}

impl Teams {
    /// A team task for writing (copy-on-write if a checkpoint shares it).
    pub(crate) fn team_mut(&mut self, id: &TaskId) -> Option<&mut TeamTask> {
        self.0.get_mut(id).map(Arc::make_mut)
    }

    fn live_team(&self, cx: Ctx<'_>, id: TaskId) -> Result<&TeamTask, Reject> {
        let t = self.0.get(&id).ok_or(Reject::NoSuchTask(id))?;
        if t.channel != cx.channel {
            return Err(Reject::WrongChannel { task: id, channel: t.channel.clone() });
        }
        if t.status == TeamStatus::Deleted {
            return Err(Reject::TaskDeleted(id));
        }
        Ok(t)
    }

    /// Rule `team_task_create`: valid shape (title, ≥1 sub-task, room for one
    /// member per sub-task plus the coordinator), an existing non-global
    /// channel, and the whole budget escrowed from the creator.
    pub(crate) fn team_task_create(&mut self, cx: Ctx<'_>, t: &NewTeamTask, ledger: &mut Ledger) -> Result<(), Reject> {
        let total = validate_team(t)?;
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("creating team tasks"));
        }
        ledger.channel(cx.channel)?.check_accepts_new_work(cx.channel)?;
        let payer = Payer::Node(cx.author);
        ledger.escrow_from(&payer, total)?;
        let subtasks = t
            .subtasks
            .iter()
            .map(|s| SubTask {
                title: s.title.clone(),
                description: s.description.clone(),
                // Lowercased and deduplicated, so a skill is credited once.
                required_skills: s
                    .required_skills
                    .iter()
                    .map(|k| k.to_ascii_lowercase())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                reward: s.reward,
                assignee: None,
                done: false,
            })
            .collect();
        self.0.insert(
            cx.id,
            Arc::new(TeamTask {
                id: cx.id,
                channel: cx.channel.to_owned(),
                owner: cx.author,
                title: t.title.clone(),
                description: t.description.clone(),
                subtasks,
                coordinator_bonus: t.coordinator_bonus,
                max_team_size: t.max_team_size,
                coordinator: None,
                members: BTreeSet::new(),
                applicants: BTreeMap::new(),
                status: TeamStatus::Open,
                escrow: total,
                workspace: None,
                created: cx.hlc,
                updated: cx.hlc,
            }),
        );
        Ok(())
    }

    /// Rule `team_claim`: an open team task gets the author as coordinator.
    pub(crate) fn team_claim(&mut self, cx: Ctx<'_>, id: TaskId) -> Result<(), Reject> {
        let t = self.live_team(cx, id)?;
        if t.status != TeamStatus::Open {
            return Err(match t.coordinator {
                Some(c) if c != cx.author => Reject::ClaimedByOther { task: id, assignee: c },
                _ => Reject::NotClaimable { task: id, status: t.status.name() },
            });
        }
        if let Some(t) = self.team_mut(&id) {
            t.coordinator = Some(cx.author);
            t.status = TeamStatus::FormingTeam;
            t.updated = cx.hlc;
        }
        Ok(())
    }

    /// Rule `team_apply`: the team is forming and not full; the author is not
    /// the coordinator, a member or an applicant; it has a skill profile and,
    /// when skills are required, matches at least one.
    pub(crate) fn team_apply(&mut self, cx: Ctx<'_>, id: TaskId, skills: &Skills) -> Result<(), Reject> {
        let t = self.live_team(cx, id)?;
        if t.status != TeamStatus::FormingTeam {
            return Err(Reject::TeamNotForming { task: id, status: t.status.name() });
        }
        if t.coordinator == Some(cx.author) || t.members.contains(&cx.author) {
            return Err(Reject::AlreadyInTeam(id));
        }
        if t.applicants.contains_key(&cx.author) {
            return Err(Reject::AlreadyApplied(id));
        }
        if t.members.len() + 1 >= t.max_team_size as usize {
            return Err(Reject::TeamFull { task: id, max: t.max_team_size });
        }
        let skills = skills.get(&cx.author).ok_or(Reject::NoSkills)?;
        let required = team_skills(t);
        let m = skill_match(skills, &required);
        if !required.is_empty() && m == 0 {
            return Err(Reject::NoSkillMatch(id));
        }
        if let Some(t) = self.team_mut(&id) {
            t.applicants.insert(cx.author, m);
            t.updated = cx.hlc;
        }
        Ok(())
    }

    /// Rule `team_accept`: the coordinator moves an applicant into the team
    /// (if there is room); then the assignment rule runs, and when every
    /// sub-task has a member the team starts and its workspace is created.
    pub(crate) fn team_accept(
        &mut self,
        cx: Ctx<'_>,
        id: TaskId,
        applicant: NodeId,
        skills: &Skills,
        ledger: &mut Ledger,
    ) -> Result<(), Reject> {
        let t = self.live_team(cx, id)?;
        if t.coordinator != Some(cx.author) {
            return Err(Reject::NotCoordinator { task: id });
        }
        if t.status != TeamStatus::FormingTeam {
            return Err(Reject::TeamNotForming { task: id, status: t.status.name() });
        }
        if !t.applicants.contains_key(&applicant) {
            return Err(Reject::NotApplicant { task: id });
        }
        if t.members.len() + 1 >= t.max_team_size as usize {
            return Err(Reject::TeamFull { task: id, max: t.max_team_size });
        }
        let mut members = t.members.clone();
        members.insert(applicant);
        let plan = assign(&t.subtasks, &members, skills);
        let ws = workspace_name(&id);
        let Some(t) = self.team_mut(&id) else {
            return Ok(());
        };
        t.applicants.remove(&applicant);
        t.members = members;
        t.updated = cx.hlc;
        let Some(plan) = plan else {
            return Ok(());
        };
        for (st, who) in t.subtasks.iter_mut().zip(plan) {
            st.assignee = Some(who);
        }
        t.status = TeamStatus::InProgress;
        t.workspace = Some(ws.clone());
        let mut people = t.members.clone();
        people.insert(cx.author);
        // `team-` names cannot be created by `channel_create` and ids do not
        // collide, so the name is free; never overwrite a channel regardless.
        ledger.channels.entry(ws).or_insert(Channel {
            members: people,
            ..Channel::new(Some(cx.author), format!("workspace of team task {}", id.short()), cx.hlc)
        });
        Ok(())
    }

    /// Rule `subtask_complete`: the sub-task's assignee marks it done while
    /// the team is in progress. When the last one is done the escrow pays each
    /// sub-task's reward and the coordinator bonus (each minus tax, tax to the
    /// parent channel's treasury), assignees other than the owner earn task
    /// reputation (tags: the sub-task's skills that the assignee holds), and
    /// the workspace dissolves.
    // Each argument is a layer this rule reads or pays through; bundling
    // them would hide which ones it touches.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn subtask_complete(
        &mut self,
        cx: Ctx<'_>,
        id: TaskId,
        index: u8,
        skills: &Skills,
        ledger: &mut Ledger,
        params: &Params,
        policy: &mut PolicyHooks<'_>,
    ) -> Result<(), Reject> {
        let t = self.live_team(cx, id)?;
        if t.status != TeamStatus::InProgress {
            return Err(Reject::TeamNotInProgress { task: id, status: t.status.name() });
        }
        let st = t.subtasks.get(index as usize).ok_or(Reject::NoSuchSubTask { task: id, index })?;
        if st.assignee != Some(cx.author) {
            return Err(Reject::SubTaskNotYours { task: id, index });
        }
        if st.done {
            return Err(Reject::SubTaskDone { task: id, index });
        }
        let completes = t.subtasks.iter().enumerate().all(|(i, s)| s.done || i == index as usize);
        if !completes {
            if let Some(t) = self.team_mut(&id) {
                t.subtasks[index as usize].done = true;
                t.updated = cx.hlc;
            }
            return Ok(());
        }
        // The last sub-task: every payout (with its tax, read-only so far)
        // is checked before anything changes.
        let owner = t.owner;
        let channel = t.channel.clone();
        let workspace = t.workspace.clone();
        let mut shares: Vec<(NodeId, u64, Vec<String>)> =
            t.subtasks.iter().filter_map(|s| s.assignee.map(|a| (a, s.reward, s.required_skills.clone()))).collect();
        if let Some(c) = t.coordinator {
            shares.push((c, t.coordinator_bonus, Vec::new()));
        }
        let bps = params.tax_bps;
        let milli = params.task_reputation_milli;
        let mut payouts = Vec::with_capacity(shares.len() * 2);
        let mut faults = Vec::new();
        for (who, amount, _) in &shares {
            let tax = policy.view().tax(*amount, bps);
            faults.extend(tax.fault);
            let net = amount.checked_sub(tax.value).ok_or(Reject::Overflow("a sub-task reward after tax"))?;
            payouts.push((Payer::Node(*who), net));
            payouts.push((Payer::Treasury(channel.clone()), tax.value));
        }
        ledger.check_release(&payouts)?;
        if let Some(t) = self.team_mut(&id) {
            t.subtasks[index as usize].done = true;
            t.updated = cx.hlc;
            t.status = TeamStatus::Completed;
            t.escrow = 0;
        }
        policy.record_faults(faults);
        ledger.release(&payouts)?;
        for (who, amount, tags) in shares {
            // Rule `subtask_reputation_matching_skills`: reputation is
            // credited for the sub-task's skills that the assignee's profile
            // holds, not for skills it lacks (a member matching one of two
            // required skills earns tag reputation in that one only).
            let tags: Vec<String> =
                tags.into_iter().filter(|t| skills.get(&who).is_some_and(|s| s.contains(t))).collect();
            if ledger.work_earns_reputation(&who, &owner, amount, cx.hlc.ms, &params.rules) {
                ledger.credit_reputation(&who, cx.hlc.ms, milli, &tags, &params.rules);
            }
        }
        if let Some(ws) = workspace.and_then(|w| ledger.channels.get_mut(&w)) {
            ws.dissolved = Some(cx.hlc);
        }
        Ok(())
    }

    /// `task_delete` for team tasks: by the owner, any status but deleted;
    /// refunds the remaining escrow (none once completed) and dissolves a
    /// workspace.
    pub(crate) fn team_delete(&mut self, cx: Ctx<'_>, id: TaskId, ledger: &mut Ledger) -> Result<(), Reject> {
        let t = self.live_team(cx, id)?;
        if t.owner != cx.author {
            return Err(Reject::NotOwner { task: id });
        }
        let refund = t.escrow;
        let workspace = t.workspace.clone();
        ledger.release(&[(Payer::Node(cx.author), refund)])?;
        if let Some(t) = self.team_mut(&id) {
            t.escrow = 0;
            t.status = TeamStatus::Deleted;
            t.updated = cx.hlc;
        }
        if let Some(ws) = workspace.and_then(|w| ledger.channels.get_mut(&w)) {
            ws.dissolved = Some(cx.hlc);
        }
        Ok(())
    }

    /// The team tasks part of the canonical state encoding, in id order.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.0.len() as u64);
        for (id, t) in &self.0 {
            w.raw(&id.0).str(&t.channel).raw(&t.owner.0);
            w.str(&t.title).str(&t.description);
            w.u64(t.subtasks.len() as u64);
            for s in &t.subtasks {
                w.str(&s.title).str(&s.description);
                list(w, &s.required_skills);
                w.u64(s.reward);
                opt_node(w, s.assignee.as_ref());
                w.u8(s.done as u8);
            }
            w.u64(t.coordinator_bonus).u8(t.max_team_size);
            opt_node(w, t.coordinator.as_ref());
            w.u64(t.members.len() as u64);
            for m in &t.members {
                w.raw(&m.0);
            }
            w.u64(t.applicants.len() as u64);
            for (n, m) in &t.applicants {
                w.raw(&n.0).u16(*m);
            }
            w.u8(t.status as u8).u64(t.escrow);
            match &t.workspace {
                None => {
                    w.u8(0);
                }
                Some(ws) => {
                    w.u8(1).str(ws);
                }
            }
            hlc(w, t.created);
            hlc(w, t.updated);
        }
    }
}

//! Governance commands that reshape channels: `split_channel` and
//! `merge_channels`. They move tasks (and, for a merge, proposals) between
//! channels, so they are rules of the [`Ledger`] (which owns channels and
//! treasuries) that also receive the task board ([`Tasks`]) and the
//! proposals ([`Governance`]). `State` runs them when a proposal executes.
//!
//! Either command archives its source channel(s) (`archived`, with
//! `split_into` or `merged_into`), so that new work cannot land where nobody
//! looks any more: creating a task or proposal there is refused with a
//! sentence naming the channel(s) to use instead.

use crate::core::common::{Channel, Ctx, TaskStatus, WORKSPACE_PREFIX};
use crate::core::governance::Governance;
use crate::core::ledger::Ledger;
use crate::core::op::{GLOBAL_CHANNEL, OpId, SplitLogic, SplitPart, valid_channel_name};
use crate::core::tasks::Tasks;
use std::collections::{BTreeMap, BTreeSet};

impl Ledger {
    fn usable_channel(&self, name: &str) -> Result<&Channel, String> {
        if name == GLOBAL_CHANNEL {
            return Err("the global channel cannot be split or merged".to_owned());
        }
        let ch = self.channels.get(name).ok_or_else(|| format!("channel {name} does not exist"))?;
        if ch.is_closed() {
            return Err(format!("channel {name} is archived"));
        }
        Ok(ch)
    }

    fn new_channel_for(&self, cx: Ctx<'_>, name: &str, from: &str) -> Result<Option<Channel>, String> {
        if name == GLOBAL_CHANNEL || !valid_channel_name(name) {
            return Err(format!("{name:?} cannot be a destination channel"));
        }
        if name.starts_with(WORKSPACE_PREFIX) {
            return Err(format!("channel names starting with team- are reserved ({name})"));
        }
        match self.channels.get(name) {
            Some(ch) if ch.is_closed() => Err(format!("channel {name} is archived")),
            Some(_) => Ok(None),
            None => Ok(Some(Channel::new(None, format!("created from {from} by governance"), cx.hlc))),
        }
    }

    /// Command `split_channel`: moves the target's open (and auction-open)
    /// tasks to the first part whose keys match (`by_tag`: a task tag equals
    /// a key; `by_title_prefix`: the title starts with a key, ASCII
    /// case-insensitive). Missing destination channels are created with the
    /// target's members. Other tasks stay (claimed work finishes where it
    /// started). Escrow moves with its task. The target is then archived
    /// with `split_into` = the destinations in the order listed, and its
    /// treasury is divided among them (`split_divides_the_treasury`).
    pub(crate) fn split_channel(
        &mut self,
        cx: Ctx<'_>,
        tasks: &mut Tasks,
        target: &str,
        logic: SplitLogic,
        parts: &[SplitPart],
    ) -> Result<String, String> {
        let members = self.usable_channel(target)?.members.clone();
        if parts.is_empty() {
            return Err("a split needs at least one destination".to_owned());
        }
        let mut new = Vec::new();
        let mut names = BTreeSet::new();
        for part in parts {
            if part.channel == target || !names.insert(part.channel.as_str()) {
                return Err(format!("destination {} is repeated or is the target", part.channel));
            }
            if let Some(mut ch) = self.new_channel_for(cx, &part.channel, target)? {
                ch.members = members.clone();
                new.push((part.channel.clone(), ch));
            }
        }
        let mut moves: Vec<(OpId, String)> = Vec::new();
        for (id, t) in tasks.iter() {
            if t.channel != target || !matches!(t.status, TaskStatus::Open | TaskStatus::AuctionOpen) {
                continue;
            }
            let title = t.title.to_ascii_lowercase();
            let hit = parts.iter().find(|part| match logic {
                SplitLogic::ByTag => part.keys.iter().any(|k| t.tags.contains(k)),
                SplitLogic::ByTitlePrefix => part.keys.iter().any(|k| title.starts_with(&k.to_ascii_lowercase())),
            });
            if let Some(part) = hit {
                moves.push((*id, part.channel.clone()));
            }
        }
        // Checked before anything moves: each destination's treasury plus
        // its share of the target's (the remainder to the first) fits in u64.
        let n = parts.len() as u64; // ≥ 1, checked above
        let from = self.channels.get(target).map_or(0, |ch| ch.treasury);
        let (share, rest) = (from / n, from % n);
        for (i, part) in parts.iter().enumerate() {
            let has = self.channels.get(&part.channel).map_or(0, |ch| ch.treasury);
            let amount = if i == 0 { share.checked_add(rest) } else { Some(share) };
            if amount.and_then(|a| has.checked_add(a)).is_none() {
                return Err(format!("the treasury of {} would overflow", part.channel));
            }
        }
        for (name, ch) in new {
            self.channels.insert(name, ch);
        }
        let mut counts: BTreeMap<&str, u64> = parts.iter().map(|p| (p.channel.as_str(), 0)).collect();
        for (id, to) in &moves {
            if let Some(t) = tasks.task_mut(id) {
                t.channel = to.clone();
                t.updated = cx.hlc;
            }
            if let Some(n) = counts.get_mut(to.as_str()) {
                *n += 1;
            }
        }
        // Rule `split_divides_the_treasury`: an archived channel can fund
        // nothing, so its treasury goes to the destinations in equal shares
        // (the remainder to the first), in the order listed.
        let mut treasury = 0u64;
        if let Some(ch) = self.channels.get_mut(target) {
            ch.archived = true;
            ch.split_into = parts.iter().map(|p| p.channel.clone()).collect();
            treasury = std::mem::take(&mut ch.treasury);
        }
        let (share, rest) = (treasury / n, treasury % n);
        // `share * n + rest == treasury`, and the destinations' treasuries
        // plus it are part of `minted`, so no sum here can leave `u64`;
        // checked anyway, never saturated (which would destroy SP).
        for (i, part) in parts.iter().enumerate() {
            let amount = if i == 0 { share.checked_add(rest) } else { Some(share) };
            if let Some(ch) = self.channels.get_mut(&part.channel) {
                ch.treasury = amount
                    .and_then(|a| ch.treasury.checked_add(a))
                    .ok_or_else(|| format!("the treasury of {} would overflow", part.channel))?;
            }
        }
        let summary: Vec<String> = counts.iter().map(|(c, n)| format!("{n} to {c}")).collect();
        Ok(format!("split {target}: moved {}, {treasury} SP of treasury", summary.join(", ")))
    }

    /// Command `merge_channels` (`keep_all`): every live task, every
    /// proposal, the members and the treasury of each existing source move
    /// to the target (created if missing); the sources are archived with
    /// `merged_into` = the target. Unknown sources are skipped.
    pub(crate) fn merge_channels(
        &mut self,
        cx: Ctx<'_>,
        tasks: &mut Tasks,
        gov: &mut Governance,
        sources: &[String],
        target: &str,
    ) -> Result<String, String> {
        if sources.is_empty() {
            return Err("a merge needs at least one source".to_owned());
        }
        if sources.iter().any(|s| s == target) {
            return Err(format!("channel {target} is both a source and the target"));
        }
        let created = self.new_channel_for(cx, target, "a merge")?;
        let mut found = Vec::new();
        for s in sources {
            if found.contains(s) {
                continue;
            }
            match self.usable_channel(s) {
                Ok(_) => found.push(s.clone()),
                Err(_) if !self.channels.contains_key(s) => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(ch) = created {
            self.channels.insert(target.to_owned(), ch);
        }
        let mut moved = 0u64;
        let ids: Vec<OpId> = tasks
            .iter()
            .filter(|(_, t)| found.contains(&t.channel) && t.status != TaskStatus::Deleted)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(t) = tasks.task_mut(&id) {
                t.channel = target.to_owned();
                t.updated = cx.hlc;
                moved += 1;
            }
        }
        // Proposals move whatever their status: open ones keep collecting
        // votes (ops must now name the target), closed ones keep their
        // history next to the tasks they were about.
        let proposal_ids: Vec<OpId> =
            gov.proposals.iter().filter(|(_, p)| found.contains(&p.channel)).map(|(id, _)| *id).collect();
        let proposals = proposal_ids.len();
        for id in proposal_ids {
            if let Some(p) = gov.proposal_mut(&id) {
                p.channel = target.to_owned();
            }
        }
        // The sources' treasuries and the target's are disjoint parts of
        // `minted`, so their sum fits in `u64`; checked before anything
        // moves rather than saturated (which would destroy SP).
        let mut treasury = 0u64;
        for s in &found {
            let t = self.channels.get(s).map_or(0, |ch| ch.treasury);
            treasury = treasury.checked_add(t).ok_or("the merged treasury would overflow")?;
        }
        let target_treasury = self.channels.get(target).map_or(0, |ch| ch.treasury);
        let merged = target_treasury.checked_add(treasury).ok_or("the merged treasury would overflow")?;
        let mut members = BTreeSet::new();
        for s in &found {
            if let Some(ch) = self.channels.get_mut(s) {
                members.append(&mut ch.members);
                ch.treasury = 0;
                ch.archived = true;
                ch.merged_into = Some(target.to_owned());
            }
        }
        if let Some(t) = self.channels.get_mut(target) {
            t.members.append(&mut members);
            t.treasury = merged;
        }
        Ok(format!("merged {} into {target}: {moved} tasks, {proposals} proposals, {treasury} SP", found.join(", ")))
    }
}

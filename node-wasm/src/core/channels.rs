//! Channel rules: create, subscribe, unsubscribe. Channels belong to the
//! ledger (each holds a treasury), so these are rules of [`Ledger`].
//!
//! Names starting with `team-` are reserved for team workspaces (created and
//! dissolved by the team rules); a dissolved channel, or one archived by a
//! split or merge (`split_merge.rs`), takes no new members, tasks or
//! proposals.
//!
//! `global` exists from genesis, has no steward and no membership list
//! (everyone is implicitly in it). Other channels are created by an op whose
//! `channel` field names the new channel; the creator becomes its steward and
//! first member.

use crate::core::common::{Channel, Ctx, WORKSPACE_PREFIX};
use crate::core::ledger::Ledger;
use crate::core::op::GLOBAL_CHANNEL;
use crate::core::reject::Reject;

impl Ledger {
    /// Rule `channel_create`: the name must be new (`global` always exists).
    pub(crate) fn channel_create(&mut self, cx: Ctx<'_>, description: &str) -> Result<(), Reject> {
        if self.channels.contains_key(cx.channel) {
            return Err(Reject::ChannelExists(cx.channel.to_owned()));
        }
        if cx.channel.starts_with(WORKSPACE_PREFIX) {
            return Err(Reject::ReservedChannel(cx.channel.to_owned()));
        }
        let mut ch = Channel::new(Some(cx.author), description.to_owned(), cx.hlc);
        ch.members.insert(cx.author);
        self.channels.insert(cx.channel.to_owned(), ch);
        Ok(())
    }

    /// Rule `channel_subscribe`: the channel exists, is not `global`, and the
    /// author is not already a member.
    pub(crate) fn channel_subscribe(&mut self, cx: Ctx<'_>) -> Result<(), Reject> {
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("subscribing"));
        }
        let ch = self.channels.get_mut(cx.channel).ok_or_else(|| Reject::NoSuchChannel(cx.channel.to_owned()))?;
        ch.check_accepts_new_work(cx.channel)?;
        if !ch.members.insert(cx.author) {
            return Err(Reject::AlreadySubscribed(cx.channel.to_owned()));
        }
        Ok(())
    }

    /// Rule `channel_unsubscribe`: the author must be a member. The steward
    /// may leave and stays steward.
    pub(crate) fn channel_unsubscribe(&mut self, cx: Ctx<'_>) -> Result<(), Reject> {
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("unsubscribing"));
        }
        let ch = self.channels.get_mut(cx.channel).ok_or_else(|| Reject::NoSuchChannel(cx.channel.to_owned()))?;
        if !ch.members.remove(&cx.author) {
            return Err(Reject::NotSubscribed(cx.channel.to_owned()));
        }
        Ok(())
    }
}

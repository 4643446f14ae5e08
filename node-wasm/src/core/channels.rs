//! Channel rules: create, subscribe, unsubscribe.
//!
//! Names starting with `team-` are reserved for team workspaces (created and
//! dissolved by the team rules); a dissolved channel takes no new members or
//! tasks.
//!
//! `global` exists from genesis, has no steward and no membership list
//! (everyone is implicitly in it). Other channels are created by an op whose
//! `channel` field names the new channel; the creator becomes its steward and
//! first member.

use crate::core::op::GLOBAL_CHANNEL;
use crate::core::reject::Reject;
use crate::core::state::{Channel, Ctx, State};
use crate::core::teams::WORKSPACE_PREFIX;
use std::collections::BTreeSet;

impl State {
    /// Rule `channel_create`: the name must be new (`global` always exists).
    pub(crate) fn channel_create(&mut self, cx: Ctx<'_>, description: &str) -> Result<(), Reject> {
        if self.channels.contains_key(cx.channel) {
            return Err(Reject::ChannelExists(cx.channel.to_owned()));
        }
        if cx.channel.starts_with(WORKSPACE_PREFIX) {
            return Err(Reject::ReservedChannel(cx.channel.to_owned()));
        }
        self.channels.insert(
            cx.channel.to_owned(),
            Channel {
                steward: Some(cx.author),
                description: description.to_owned(),
                created: cx.hlc,
                treasury: 0,
                members: BTreeSet::from([cx.author]),
                dissolved: None,
            },
        );
        Ok(())
    }

    /// Rule `channel_subscribe`: the channel exists, is not `global`, and the
    /// author is not already a member.
    pub(crate) fn channel_subscribe(&mut self, cx: Ctx<'_>) -> Result<(), Reject> {
        if cx.channel == GLOBAL_CHANNEL {
            return Err(Reject::GlobalNotAllowed("subscribing"));
        }
        let ch = self.channels.get_mut(cx.channel).ok_or_else(|| Reject::NoSuchChannel(cx.channel.to_owned()))?;
        if ch.dissolved.is_some() {
            return Err(Reject::ChannelDissolved(cx.channel.to_owned()));
        }
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

//! Channels: creating, joining and leaving them, and the one lookup every
//! item command needs — which channel a task, team task, proposal or tool
//! lives in (an op on an item must be signed in the item's channel).

use super::{Intent, Result};
use crate::core::op::{OpBody, OpId};
use crate::core::state::State;
use crate::identity::NodeId;

/// Creates channel `name`; the creator becomes its steward.
pub fn create(name: &str, description: &str) -> Result<Intent> {
    if name.trim().is_empty() {
        return Err("give the channel a name".into());
    }
    Ok(Intent::new(name, OpBody::ChannelCreate { description: description.to_owned() }))
}

/// Joins channel `name`.
pub fn subscribe(name: &str) -> Result<Intent> {
    named(name).map(|n| Intent::new(n, OpBody::ChannelSubscribe))
}

/// Leaves channel `name`.
pub fn unsubscribe(name: &str) -> Result<Intent> {
    named(name).map(|n| Intent::new(n, OpBody::ChannelUnsubscribe))
}

fn named(name: &str) -> Result<&str> {
    if name.trim().is_empty() { Err("name the channel".into()) } else { Ok(name) }
}

/// The channel of task `id` (plain or team: they share ids and some ops).
pub fn of_task(st: &State, id: OpId) -> Result<String> {
    st.tasks
        .get(&id)
        .map(|t| t.channel.clone())
        .or_else(|| st.teams.get(&id).map(|t| t.channel.clone()))
        .ok_or_else(|| format!("no task {id} is known here"))
}

/// The channel of team task `id`.
pub fn of_team(st: &State, id: OpId) -> Result<String> {
    st.teams.get(&id).map(|t| t.channel.clone()).ok_or_else(|| format!("no team task {id} is known here"))
}

/// The channel of proposal `id`.
pub fn of_proposal(st: &State, id: OpId) -> Result<String> {
    st.gov.proposals.get(&id).map(|p| p.channel.clone()).ok_or_else(|| format!("no proposal {id} is known here"))
}

/// The channel of common tool `tool_id`.
pub fn of_tool(st: &State, tool_id: &str) -> Result<String> {
    st.tools
        .tools
        .get(tool_id)
        .map(|t| t.channel.clone())
        .ok_or_else(|| format!("no common tool {tool_id:?} is known here"))
}

/// One channel as the Channels view lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ChannelRow {
    pub name: String,
    pub description: String,
    pub steward: Option<NodeId>,
    pub members: usize,
    pub treasury: u64,
    /// Whether `me` is a member.
    pub joined: bool,
    pub dissolved: bool,
    /// Where an archived channel's work went: "split into a, b" or
    /// "merged into c" (`None` while the channel is active).
    pub archived: Option<String>,
}

/// Every channel, by name.
pub fn list(st: &State, me: &NodeId) -> Vec<ChannelRow> {
    st.ledger
        .channels
        .iter()
        .map(|(name, ch)| ChannelRow {
            name: name.clone(),
            description: ch.description.clone(),
            steward: ch.steward,
            members: ch.members.len(),
            treasury: ch.treasury,
            joined: ch.members.contains(me),
            dissolved: ch.dissolved.is_some(),
            archived: ch.archived.then(|| match &ch.merged_into {
                Some(to) => format!("merged into {to}"),
                None => format!("split into {}", ch.split_into.join(", ")),
            }),
        })
        .collect()
}

/// The channels `me` is a member of (where it may create tasks).
pub fn joined(st: &State, me: &NodeId) -> Vec<String> {
    st.ledger.channels.iter().filter(|(_, ch)| ch.members.contains(me)).map(|(n, _)| n.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Signer;
    use crate::service::testkit::World;

    #[test]
    fn refusals() {
        assert_eq!(create("  ", "x").unwrap_err(), "give the channel a name");
        assert_eq!(subscribe("").unwrap_err(), "name the channel");
        let w = World::dev();
        // The core's sentence comes back through the signer.
        let e = w.as_(1).run(|_| create("dev", "again")).unwrap_err();
        assert!(e.contains("dev"), "{e}");
        let st = w.state();
        assert!(of_task(&st, OpId::ZERO).unwrap_err().starts_with("no task 0000"));
        assert!(of_proposal(&st, OpId::ZERO).unwrap_err().starts_with("no proposal"));
        assert!(of_team(&st, OpId::ZERO).unwrap_err().starts_with("no team task"));
        assert_eq!(of_tool(&st, "x").unwrap_err(), "no common tool \"x\" is known here");
    }

    #[test]
    fn create_join_leave_and_list() {
        let w = World::dev();
        let (alice, bob) = (w.id(0), w.id(1));
        let rows = w.read(|st| list(st, &bob));
        let dev = rows.iter().find(|r| r.name == "dev").expect("dev listed");
        assert_eq!((dev.members, dev.joined, dev.steward), (2, true, Some(alice)));
        w.as_(1).run(|_| unsubscribe("dev")).expect("leave");
        assert!(w.read(|st| joined(st, &bob)).is_empty());
        assert_eq!(w.read(|st| joined(st, &alice)), vec!["dev".to_string()]);
    }
}

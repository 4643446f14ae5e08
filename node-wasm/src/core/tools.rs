//! Common tools: shared credentials paid from a channel treasury.
//!
//! A credential is encrypted once with AES-256-GCM under a fresh random data
//! key (AAD: the tool id). Rule `tool_custody`: the data key is split with
//! Shamir's scheme ([`crate::core::shamir`]) among the tool's **custodians**
//! (the validator set when it is proposed), any majority of whom can
//! rebuild it, and share `i` is sealed to custodian `i`: an ephemeral X25519
//! key agrees a secret with the custodian's published X25519 key,
//! HKDF-SHA256 (salt = ephemeral public ‖ recipient public) derives a
//! key-encryption key, and AES-256-GCM seals the 32-byte share (AAD: tool id
//! ‖ recipient node id). No member, custodian or not, holds the key itself.
//!
//! Rule `tool_grant`: when a task that requires the tool is in progress,
//! each custodian's node re-seals its share to the task's assignee in a
//! `tool_grant` op (AAD: `grant` ‖ tool id ‖ task ‖ assignee), which the fold
//! accepts only from a custodian, for the assignee of an in-progress task
//! that lists the tool. The assignee rebuilds the key from a majority of
//! grants. Everyone else, including a modified client, holds at most its own
//! share (custodians) or nothing: fewer than a majority of shares say
//! nothing about the key. Only [`seal_tool_secret`] sees the plaintext, on
//! the proposer's node; ops, the state and the snapshot hold only
//! ciphertext. Randomness is injected, so the core stays deterministic.
//!
//! Decryption is local ([`open_tool_secret`]) and guarded by three layers:
//! the tool is active, the caller is the assignee of an in-progress task, and
//! that task lists the tool; then it needs the grants.

use crate::codec::Writer;
use crate::core::common::{Channel, Ctx, TaskStatus, hlc, is_blank};
use crate::core::hlc::Hlc;
use crate::core::ledger::Ledger;
use crate::core::op::{NewTool, SealedKey, SealedSecret, TaskId, ToolType, encode_sealed_key};
use crate::core::reject::Reject;
use crate::core::reputation::DAY_MS;
use crate::core::rules::Rules;
use crate::core::shamir;
use crate::core::tasks::Task;
use crate::identity::{Identity, NodeId};
use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;

/// A tool's upkeep period (30 days of op time).
pub const UPKEEP_PERIOD_MS: u64 = 30 * DAY_MS;
const KEK_INFO: &[u8] = b"synapse-ng/tool-key/v1";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Active,
    InactiveFundingIssue,
    Deprecated,
}

impl ToolStatus {
    pub fn name(self) -> &'static str {
        match self {
            ToolStatus::Active => "active",
            ToolStatus::InactiveFundingIssue => "inactive_funding_issue",
            ToolStatus::Deprecated => "deprecated",
        }
    }
}

/// A common tool as the fold sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommonTool {
    pub tool_id: String,
    pub channel: String,
    pub description: String,
    pub tool_type: ToolType,
    pub webhook_url: String,
    pub monthly_cost_sp: u64,
    pub status: ToolStatus,
    pub acquired: Hlc,
    /// Upkeep is paid up to this op time; a `tool_upkeep` op is valid from it.
    pub paid_until_ms: u64,
    pub secret: SealedSecret,
    pub changed: Hlc,
    /// Rule `tool_grant`: per task, the shares custodians sealed to its
    /// assignee, by custodian index.
    #[serde(default, with = "grant_map")]
    pub grants: BTreeMap<TaskId, BTreeMap<u8, SealedKey>>,
}

/// The grants with the custodian index as a string key in JSON: the
/// page's serializer (JSON-compatible `serde_wasm_bindgen`) refuses
/// integer map keys, which made the whole `state()` come back `null`.
mod grant_map {
    use super::{SealedKey, TaskId};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::BTreeMap;

    type Grants = BTreeMap<TaskId, BTreeMap<u8, SealedKey>>;

    pub fn serialize<S: Serializer>(g: &Grants, s: S) -> Result<S::Ok, S::Error> {
        let text: BTreeMap<&TaskId, BTreeMap<String, &SealedKey>> =
            g.iter().map(|(t, by)| (t, by.iter().map(|(i, k)| (i.to_string(), k)).collect())).collect();
        text.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Grants, D::Error> {
        let text: BTreeMap<TaskId, BTreeMap<String, SealedKey>> = BTreeMap::deserialize(d)?;
        let mut out = Grants::new();
        for (t, by) in text {
            let mut m = BTreeMap::new();
            for (i, k) in by {
                let i: u8 = i.parse().map_err(|_| serde::de::Error::custom("a custodian index is 0-255"))?;
                m.insert(i, k);
            }
            out.insert(t, m);
        }
        Ok(out)
    }
}

impl CommonTool {
    /// Grants needed to rebuild the key: a majority of the custodians.
    pub fn threshold(&self) -> usize {
        shamir::majority(self.secret.recipients.len())
    }
}

/// The tools part of the state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tools {
    /// Published X25519 public keys.
    pub keys: BTreeMap<NodeId, [u8; 32]>,
    pub tools: BTreeMap<String, CommonTool>,
    /// SP paid out of treasuries for upkeep (they leave the economy).
    pub spent: u64,
}

fn kek(shared: &[u8; 32], ephemeral: &[u8; 32], recipient_pub: &[u8; 32]) -> [u8; 32] {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(ephemeral);
    salt[32..].copy_from_slice(recipient_pub);
    let mut out = [0u8; 32];
    // 32 bytes is always a valid HKDF-SHA256 output length.
    let _ = Hkdf::<Sha256>::new(Some(&salt), shared).expand(KEK_INFO, &mut out);
    out
}

fn key_aad(tool_id: &str, recipient: &NodeId) -> Vec<u8> {
    let mut aad = tool_id.as_bytes().to_vec();
    aad.extend_from_slice(&recipient.0);
    aad
}

/// The AAD of a share granted for `task` to `recipient`.
fn grant_aad(tool_id: &str, task: &TaskId, recipient: &NodeId) -> Vec<u8> {
    let mut aad = b"grant".to_vec();
    aad.extend_from_slice(tool_id.as_bytes());
    aad.extend_from_slice(&task.0);
    aad.extend_from_slice(&recipient.0);
    aad
}

/// Seals 32 bytes to `public` (a node's X25519 key) under `aad`.
fn seal32<R: rand_core::CryptoRngCore>(
    rng: &mut R,
    node: NodeId,
    public: &[u8; 32],
    msg: &[u8; 32],
    aad: &[u8],
) -> Option<SealedKey> {
    let eph = x25519_dalek::StaticSecret::random_from_rng(&mut *rng);
    let eph_pub = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let shared = eph.diffie_hellman(&x25519_dalek::PublicKey::from(*public)).to_bytes();
    let k = kek(&shared, &eph_pub, public);
    let mut kn = [0u8; 12];
    rng.fill_bytes(&mut kn);
    let sealed_key = Aes256Gcm::new(&k.into()).encrypt(Nonce::from_slice(&kn), Payload { msg, aad }).ok()?;
    Some(SealedKey { recipient: node, ephemeral: eph_pub, nonce: kn, sealed_key })
}

/// Opens 32 bytes sealed to `identity` under `aad`.
fn open32(identity: &Identity, sealed: &SealedKey, aad: &[u8]) -> Option<[u8; 32]> {
    let my_pub = identity.x25519_public();
    let shared = identity.x25519_agree(&sealed.ephemeral);
    let k = kek(&shared, &sealed.ephemeral, &my_pub);
    let plain = Aes256Gcm::new(&k.into())
        .decrypt(Nonce::from_slice(&sealed.nonce), Payload { msg: &sealed.sealed_key, aad })
        .ok()?;
    plain.try_into().ok()
}

/// Encrypts `plaintext` under a fresh data key and splits the key among
/// `custodians` (node id and published X25519 key; rule `tool_custody`):
/// any majority of their shares rebuilds it. Runs on the proposer's node;
/// only the result goes into an op.
pub fn seal_tool_secret<R: rand_core::CryptoRngCore>(
    rng: &mut R,
    tool_id: &str,
    plaintext: &[u8],
    custodians: &[(NodeId, [u8; 32])],
) -> Option<SealedSecret> {
    let mut data_key = [0u8; 32];
    rng.fill_bytes(&mut data_key);
    let mut nonce = [0u8; 12];
    rng.fill_bytes(&mut nonce);
    let cipher = Aes256Gcm::new(&data_key.into());
    let ciphertext =
        cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plaintext, aad: tool_id.as_bytes() }).ok()?;
    let n = custodians.len();
    let shares = shamir::split(&data_key, n, shamir::majority(n), |b| rng.fill_bytes(b))?;
    let mut sealed = Vec::with_capacity(n);
    for ((node, public), share) in custodians.iter().zip(&shares) {
        sealed.push(seal32(rng, *node, public, share, &key_aad(tool_id, node))?);
    }
    Some(SealedSecret { nonce, ciphertext, recipients: sealed })
}

/// Rule `tool_grant` (the custodian's side, local): custodian `identity`
/// opens its share of `tool_id` and seals it to `assignee`'s X25519 key for
/// `task`. Returns its custodian index and the sealed share; `None` if it is
/// no custodian of the tool or its share does not open.
pub fn grant_share<R: rand_core::CryptoRngCore>(
    rng: &mut R,
    tool: &CommonTool,
    identity: &Identity,
    task: TaskId,
    assignee: NodeId,
    assignee_key: &[u8; 32],
) -> Option<(u8, SealedKey)> {
    let me = identity.node_id();
    let index = tool.secret.recipients.iter().position(|k| k.recipient == me)?;
    let share = open32(identity, &tool.secret.recipients[index], &key_aad(&tool.tool_id, &me))?;
    let sealed = seal32(rng, assignee, assignee_key, &share, &grant_aad(&tool.tool_id, &task, &assignee))?;
    Some((u8::try_from(index).ok()?, sealed))
}

/// What the local tool functions read of the state. `State` implements it;
/// taking it as a trait keeps this layer below the state.
pub trait ToolReader {
    fn tool_state(&self) -> &Tools;
    fn tool_task(&self, id: &TaskId) -> Option<&Task>;
    fn tool_channel(&self, name: &str) -> Option<&Channel>;
    /// The validator set at op time `at_ms` (rule `validator_set`).
    fn tool_validators(&self, at_ms: u64) -> Vec<NodeId>;
}

/// Rule `tool_custody`: whom a proposer splits a tool's key among at
/// `at_ms`: the validators that have published an X25519 key, with it.
pub fn custodians(state: &impl ToolReader, at_ms: u64) -> Vec<(NodeId, [u8; 32])> {
    let keys = &state.tool_state().keys;
    state.tool_validators(at_ms).into_iter().filter_map(|n| keys.get(&n).map(|k| (n, *k))).collect()
}

/// Rule `tool_access` (local): the three layers, then decryption with this
/// node's X25519 key. Never changes state, never publishes anything.
pub fn open_tool_secret(
    state: &impl ToolReader,
    identity: &Identity,
    tool_id: &str,
    task: TaskId,
) -> Result<String, Reject> {
    let tool = state.tool_state().tools.get(tool_id).ok_or_else(|| Reject::NoSuchTool(tool_id.to_owned()))?;
    if tool.status != ToolStatus::Active {
        return Err(Reject::ToolInactive { tool: tool_id.to_owned(), status: tool.status.name() });
    }
    let me = identity.node_id();
    let t = state.tool_task(&task).ok_or(Reject::NoSuchTask(task))?;
    if t.channel != tool.channel {
        return Err(Reject::WrongChannel { task, channel: t.channel.clone() });
    }
    if t.assignee != Some(me) {
        return Err(Reject::NotAssignee { task });
    }
    if t.status != TaskStatus::InProgress {
        return Err(Reject::WrongStatus { task, status: t.status.name(), needs: TaskStatus::InProgress.name() });
    }
    if !t.required_tools.iter().any(|x| x == tool_id) {
        return Err(Reject::ToolNotRequired { task, tool: tool_id.to_owned() });
    }
    rebuild(tool, task, identity)
}

/// What a node can decrypt of `tool` for `task` with its own key and the
/// grants in the state, whatever its code checks first: the layers of
/// [`open_tool_secret`] are courtesy, this is the guarantee (rule
/// `tool_custody`). Anyone but the assignee finds no grant sealed to it; a
/// custodian holds one share, fewer than the threshold (with two or more
/// custodians).
pub fn rebuild(tool: &CommonTool, task: TaskId, identity: &Identity) -> Result<String, Reject> {
    let (tool_id, me) = (tool.tool_id.as_str(), identity.node_id());
    let fail = || Reject::ToolSecretUnavailable(tool_id.to_owned());
    // The custodians' grants for this task, opened with this node's key.
    let aad = grant_aad(tool_id, &task, &me);
    let shares: Vec<(u8, [u8; 32])> = tool
        .grants
        .get(&task)
        .into_iter()
        .flatten()
        .filter(|(_, g)| g.recipient == me)
        .filter_map(|(i, g)| Some((i.checked_add(1)?, open32(identity, g, &aad)?)))
        .collect();
    if shares.len() < tool.threshold() {
        return Err(Reject::GrantsMissing { tool: tool_id.to_owned(), have: shares.len(), need: tool.threshold() });
    }
    let data_key = shamir::combine(&shares).ok_or_else(fail)?;
    let plain = Aes256Gcm::new(&data_key.into())
        .decrypt(
            Nonce::from_slice(&tool.secret.nonce),
            Payload { msg: &tool.secret.ciphertext, aad: tool_id.as_bytes() },
        )
        .map_err(|_| fail())?;
    String::from_utf8(plain).map_err(|_| fail())
}

impl Tools {
    /// Rule `key_publish`: records (or replaces) the author's X25519 public key.
    pub(crate) fn key_publish(&mut self, cx: Ctx<'_>, x25519: [u8; 32]) -> Result<(), Reject> {
        if x25519 == [0; 32] {
            return Err(Reject::BadKey);
        }
        self.keys.insert(cx.author, x25519);
        Ok(())
    }

    /// Rule `tool_upkeep` (deadline op): the tool exists in the op's channel,
    /// is active, and its upkeep is due (`paid_until_ms` ≤ op time). The
    /// treasury pays `monthly_cost_sp` for another period; if it cannot, the
    /// tool becomes `inactive_funding_issue`.
    pub(crate) fn tool_upkeep(&mut self, cx: Ctx<'_>, tool_id: &str, ledger: &mut Ledger) -> Result<(), Reject> {
        let tool = self.tools.get(tool_id).ok_or_else(|| Reject::NoSuchTool(tool_id.to_owned()))?;
        if tool.channel != cx.channel {
            return Err(Reject::ToolWrongChannel { tool: tool_id.to_owned(), channel: tool.channel.clone() });
        }
        if tool.status != ToolStatus::Active {
            return Err(Reject::ToolInactive { tool: tool_id.to_owned(), status: tool.status.name() });
        }
        if cx.hlc.ms < tool.paid_until_ms {
            return Err(Reject::UpkeepNotDue { tool: tool_id.to_owned(), due_ms: tool.paid_until_ms });
        }
        let cost = tool.monthly_cost_sp;
        let paid = self.pay_upkeep(ledger, cx.channel, cost);
        if let Some(t) = self.tools.get_mut(tool_id) {
            if paid {
                // An op time, not SP: saturating at the end of time means
                // "paid for ever", which pairs with no other counter.
                t.paid_until_ms = t.paid_until_ms.saturating_add(UPKEEP_PERIOD_MS);
            } else {
                t.status = ToolStatus::InactiveFundingIssue;
            }
            t.changed = cx.hlc;
        }
        Ok(())
    }

    /// Takes `cost` from a channel treasury (it leaves the economy, counted
    /// in `spent`); false (nothing taken) if short. `spent` is checked before
    /// the treasury moves (it is part of conservation, so it must never
    /// saturate while the treasury pays the full cost); it cannot overflow,
    /// as it never exceeds `minted`.
    fn pay_upkeep(&mut self, ledger: &mut Ledger, channel: &str, cost: u64) -> bool {
        let Some(spent) = self.spent.checked_add(cost) else {
            return false;
        };
        if !ledger.spend_treasury(channel, cost) {
            return false;
        }
        self.spent = spent;
        true
    }

    /// Rule `tool_grant` (the fold's side): `cx.author` is custodian
    /// `index` of an active tool of the op's channel; the task is in that
    /// channel, in progress, lists the tool, was created by a member (rule
    /// `member`: a fresh key cannot make itself a task that unlocks the
    /// tool), and the grant is sealed to its assignee; once per custodian
    /// and task.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tool_grant(
        &mut self,
        cx: Ctx<'_>,
        tool_id: &str,
        task: Option<&Task>,
        index: u8,
        grant: &SealedKey,
        ledger: &Ledger,
        rules: &Rules,
    ) -> Result<(), Reject> {
        let tool = self.tools.get(tool_id).ok_or_else(|| Reject::NoSuchTool(tool_id.to_owned()))?;
        if tool.channel != cx.channel {
            return Err(Reject::ToolWrongChannel { tool: tool_id.to_owned(), channel: tool.channel.clone() });
        }
        if tool.status != ToolStatus::Active {
            return Err(Reject::ToolInactive { tool: tool_id.to_owned(), status: tool.status.name() });
        }
        if tool.secret.recipients.get(usize::from(index)).map(|k| k.recipient) != Some(cx.author) {
            return Err(Reject::NotCustodian { tool: tool_id.to_owned() });
        }
        let t = task.ok_or(Reject::BadGrant("no such task"))?;
        if t.channel != tool.channel
            || t.status != TaskStatus::InProgress
            || !t.required_tools.iter().any(|x| x == tool_id)
        {
            return Err(Reject::BadGrant("the task is not in progress in the tool's channel with the tool required"));
        }
        if !ledger.is_member(&t.owner, cx.hlc.ms, rules) {
            return Err(Reject::BadGrant("the task's creator is not a member, so its tasks unlock no tool"));
        }
        if t.assignee != Some(grant.recipient) {
            return Err(Reject::BadGrant("a grant goes to the task's assignee only"));
        }
        if tool.grants.get(&t.id).is_some_and(|g| g.contains_key(&index)) {
            return Err(Reject::BadGrant("this custodian already granted its share for this task"));
        }
        let id = t.id;
        if let Some(tool) = self.tools.get_mut(tool_id) {
            tool.grants.entry(id).or_default().insert(index, grant.clone());
        }
        Ok(())
    }

    /// Command `acquire_common_tool`. Rule `tool_custody`: the key's shares
    /// go to custodians, each validator-eligible at execution (`rules`).
    pub(crate) fn acquire_common_tool(
        &mut self,
        cx: Ctx<'_>,
        t: &NewTool,
        ledger: &mut Ledger,
        rules: &Rules,
    ) -> Result<String, String> {
        let ch = ledger.channels.get(&t.channel).ok_or_else(|| format!("channel {} does not exist", t.channel))?;
        if ch.is_closed() {
            return Err(format!("channel {} is archived", t.channel));
        }
        if t.tool_id.is_empty() || is_blank(&t.tool_id) {
            return Err("the tool id is empty".to_owned());
        }
        if self.tools.contains_key(&t.tool_id) {
            return Err(format!("tool {} already exists", t.tool_id));
        }
        if t.tool_type == ToolType::Webhook && t.webhook_url.is_empty() {
            return Err("a webhook tool needs a URL".to_owned());
        }
        if t.secret.ciphertext.is_empty() || t.secret.recipients.is_empty() {
            return Err("the tool has no sealed credential".to_owned());
        }
        let mut seen = std::collections::BTreeSet::new();
        for k in &t.secret.recipients {
            if !seen.insert(k.recipient) {
                return Err(format!("recipient {}… is listed twice", k.recipient.short()));
            }
            if !self.keys.contains_key(&k.recipient) {
                return Err(format!("recipient {}… has not published an X25519 key", k.recipient.short()));
            }
            if !ledger.accounts.get(&k.recipient).is_some_and(|a| a.is_validator_eligible(cx.hlc.ms, rules)) {
                return Err(format!(
                    "recipient {}… cannot be a custodian: custodians are validator-eligible members",
                    k.recipient.short()
                ));
            }
        }
        if ch.treasury < t.monthly_cost_sp {
            return Err(format!(
                "the treasury of channel {} has {} SP but the first month costs {} SP",
                t.channel, ch.treasury, t.monthly_cost_sp
            ));
        }
        if !self.pay_upkeep(ledger, &t.channel, t.monthly_cost_sp) {
            return Err(format!("the treasury of channel {} cannot pay {} SP", t.channel, t.monthly_cost_sp));
        }
        self.tools.insert(
            t.tool_id.clone(),
            CommonTool {
                tool_id: t.tool_id.clone(),
                channel: t.channel.clone(),
                description: t.description.clone(),
                tool_type: t.tool_type,
                webhook_url: t.webhook_url.clone(),
                monthly_cost_sp: t.monthly_cost_sp,
                status: ToolStatus::Active,
                acquired: cx.hlc,
                paid_until_ms: cx.hlc.ms.saturating_add(UPKEEP_PERIOD_MS),
                secret: t.secret.clone(),
                changed: cx.hlc,
                grants: BTreeMap::new(),
            },
        );
        Ok(format!("tool {} acquired for {}; first month paid ({} SP)", t.tool_id, t.channel, t.monthly_cost_sp))
    }

    fn tool_in(&self, channel: &str, tool_id: &str) -> Result<&CommonTool, String> {
        let t = self.tools.get(tool_id).ok_or_else(|| format!("tool {tool_id} does not exist"))?;
        if t.channel != channel {
            return Err(format!("tool {tool_id} belongs to channel {}", t.channel));
        }
        Ok(t)
    }

    /// Command `deprecate_common_tool` (credentials are kept, unusable).
    pub(crate) fn deprecate_common_tool(
        &mut self,
        cx: Ctx<'_>,
        channel: &str,
        tool_id: &str,
    ) -> Result<String, String> {
        let t = self.tool_in(channel, tool_id)?;
        if t.status == ToolStatus::Deprecated {
            return Ok(format!("tool {tool_id} was already deprecated"));
        }
        let previous = t.status.name();
        if let Some(t) = self.tools.get_mut(tool_id) {
            t.status = ToolStatus::Deprecated;
            t.changed = cx.hlc;
        }
        Ok(format!("tool {tool_id}: {previous} -> deprecated"))
    }

    /// Command `reactivate_common_tool`: a tool suspended for lack of funds
    /// pays a month from its treasury and becomes active again.
    pub(crate) fn reactivate_common_tool(
        &mut self,
        cx: Ctx<'_>,
        channel: &str,
        tool_id: &str,
        ledger: &mut Ledger,
    ) -> Result<String, String> {
        let t = self.tool_in(channel, tool_id)?;
        if t.status != ToolStatus::InactiveFundingIssue {
            return Err(format!("tool {tool_id} is {}, not inactive_funding_issue", t.status.name()));
        }
        let cost = t.monthly_cost_sp;
        if !self.pay_upkeep(ledger, channel, cost) {
            return Err(format!("the treasury of channel {channel} cannot pay {cost} SP"));
        }
        if let Some(t) = self.tools.get_mut(tool_id) {
            t.status = ToolStatus::Active;
            t.paid_until_ms = cx.hlc.ms.saturating_add(UPKEEP_PERIOD_MS);
            t.changed = cx.hlc;
        }
        Ok(format!("tool {tool_id} reactivated; {cost} SP paid"))
    }

    /// The tools part of the canonical state encoding.
    pub(crate) fn encode_canonical(&self, w: &mut Writer) {
        w.u64(self.spent).u64(self.keys.len() as u64);
        for (n, k) in &self.keys {
            w.raw(&n.0).raw(k);
        }
        w.u64(self.tools.len() as u64);
        for (id, tool) in &self.tools {
            w.str(id).str(&tool.tool_id).str(&tool.channel).str(&tool.description);
            w.u8(tool.tool_type as u8).str(&tool.webhook_url).u64(tool.monthly_cost_sp).u8(tool.status as u8);
            hlc(w, tool.acquired);
            w.u64(tool.paid_until_ms);
            let s = &tool.secret;
            w.raw(&s.nonce).bytes(&s.ciphertext).u64(s.recipients.len() as u64);
            for k in &s.recipients {
                encode_sealed_key(w, k);
            }
            hlc(w, tool.changed);
            w.u64(tool.grants.len() as u64);
            for (task, by) in &tool.grants {
                w.raw(&task.0).u64(by.len() as u64);
                for (i, g) in by {
                    w.u8(*i);
                    encode_sealed_key(w, g);
                }
            }
        }
    }
}

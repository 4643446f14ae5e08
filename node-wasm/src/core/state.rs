//! The replicated state: a pure function of the ops folded so far, made of
//! layers that each own their data, rules and canonical encoding:
//!
//! | field | layer (module) | rules |
//! | --- | --- | --- |
//! | `ledger` | `ledger`, `channels`, `split_merge` | accounts, escrow, channels and treasuries |
//! | `upgrades` | `upgrades` | policy modules, `module_piece`, `code_upgrade` |
//! | `tasks` | `tasks`, `auction` | tasks and auctions |
//! | `teams`, `skills` | `teams` | team tasks and skill profiles |
//! | `tools` | `tools` | keys and common tools |
//! | `gov` | `governance` | proposals, votes, validators, execution log |
//!
//! This module only composes them: [`State::apply`] dispatches each op body
//! to its layer's rule, passing the other layers a rule needs as arguments,
//! and [`State::state_hash`] concatenates the layers' encodings in a fixed
//! order. Running the commands of executed proposals is in `commands.rs`,
//! the read-only dry run of a policy module in `dry_run.rs`.
//!
//! Every map is a `BTreeMap`, so iteration (and therefore every decision and
//! the canonical hash) is in key order on every replica. No floats: SP are
//! `u64`, reputation is milli-points. Rule handlers check everything before
//! they change anything, so a refused op leaves the state exactly as it was
//! (apart from the author's first-op mint, which happens whatever the op does).

use crate::codec::Writer;
use crate::core::economy::Params;
use crate::core::genesis::{Genesis, GenesisHash, ticket_valid};
use crate::core::governance::{self, Execution, Governance, Proposal, Tally};
use crate::core::hlc::Hlc;
use crate::core::ledger::Ledger;
use crate::core::op::{Op, OpBody, OpId, TaskId};
use crate::core::reject::Reject;
use crate::core::teams::{Skills, Teams};
use crate::core::tools::{ToolReader, Tools};
use crate::core::upgrade::ModuleHash;
use crate::core::upgrades::{CompiledModules, PolicyHooks, Upgrades};
use crate::identity::NodeId;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

// The types that lived here before the layers, at their old paths.
pub use crate::core::common::{Channel, Ctx, TaskStatus};
pub use crate::core::ledger::Account;
pub use crate::core::tasks::{Auction, AuctionStatus, Bid, Task, Tasks};

/// The whole derived state. Equality is plain structural equality: nothing
/// outside the replicated data (such as the compiled-module cache) lives here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The network this state belongs to (its genesis hash).
    #[serde(with = "genesis_hex")]
    pub genesis: GenesisHash,
    pub params: Params,
    /// Accounts, channels, escrow and minted SP (flattened in the JSON).
    #[serde(flatten)]
    pub ledger: Ledger,
    pub tasks: Tasks,
    /// Team (composite) tasks.
    pub teams: Teams,
    /// Skill profiles (lowercased).
    pub skills: Skills,
    /// Proposals, validators, the execution log, config version, schemas.
    pub gov: Governance,
    /// Published X25519 keys and common tools.
    pub tools: Tools,
    /// Policy modules, the active policy versions and their history.
    pub upgrades: Upgrades,
    pub applied: u64,
    pub rejected: u64,
}

impl Default for State {
    fn default() -> State {
        State::genesis()
    }
}

/// The genesis hash as hex in JSON.
mod genesis_hex {
    use crate::core::genesis::GenesisHash;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &GenesisHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_hex())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<GenesisHash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        GenesisHash::parse(&text).ok_or_else(|| serde::de::Error::custom("expected a 64-hex genesis hash"))
    }
}

impl State {
    /// The state before any op of the default network
    /// ([`Genesis::default`]): only the `global` channel exists.
    pub fn genesis() -> State {
        State::from_genesis(&Genesis::default())
    }

    /// The state before any op of a network with every safeguard off
    /// ([`Genesis::open`]): tests of other features.
    pub fn open() -> State {
        State::from_genesis(&Genesis::open("test"))
    }

    /// The state before any op of the network `g` names: its parameters and
    /// rules, and an account for each founder (minted its initial SP).
    pub fn from_genesis(g: &Genesis) -> State {
        let params = g.params();
        let mut ledger = Ledger::genesis();
        for f in &g.founders {
            // At most 64 founders with at most 10^6 SP each: no overflow.
            if ledger.mint_if_new(*f, Hlc::ZERO, params.initial_sp).is_ok()
                && let Some(a) = ledger.accounts.get_mut(f)
            {
                a.founder = true;
            }
        }
        State {
            genesis: g.hash(),
            params,
            ledger,
            tasks: Tasks::default(),
            teams: Teams::default(),
            skills: Skills::default(),
            gov: Governance::default(),
            tools: Tools::default(),
            upgrades: Upgrades::default(),
            applied: 0,
            rejected: 0,
        }
    }

    /// Folds one op. The author is minted its initial SP at its first op
    /// (whatever that op does, unless `minted` would overflow, which refuses
    /// the op); then the op's rule runs. `Err` means the op
    /// has no effect and says why. `modules` is the folding replica's
    /// compiled-module cache (any cache gives the same result).
    pub fn apply(&mut self, id: OpId, op: &Op, modules: &CompiledModules) -> Result<(), Reject> {
        // Rule `anonymous_vote`: the fresh key that carries it is neither
        // admitted nor minted anything.
        if let OpBody::AnonymousVote { proposal, yes, ring, signature } = &op.body {
            let cx = Ctx { id, author: op.author, hlc: op.hlc, channel: &op.channel };
            let r = self.gov.anonymous_vote(cx, op.seq, *proposal, *yes, *ring, signature);
            match r {
                Ok(()) => self.applied += 1,
                Err(_) => self.rejected += 1,
            }
            return r;
        }
        match self.admit(op) {
            // Not admitted, a bad ticket, or `minted` would overflow: no
            // account, and the op does nothing.
            Err(r) => {
                self.rejected += 1;
                return Err(r);
            }
            // The op was the admission: that is its whole effect.
            Ok(true) => {
                self.applied += 1;
                return Ok(());
            }
            Ok(false) => {}
        }
        let cx = Ctx { id, author: op.author, hlc: op.hlc, channel: &op.channel };
        let (ledger, params) = (&mut self.ledger, &self.params);
        let mut policy = PolicyHooks::new(&mut self.upgrades, modules);
        let r = match &op.body {
            OpBody::ChannelCreate { description } => ledger.channel_create(cx, description),
            OpBody::ChannelSubscribe => ledger.channel_subscribe(cx),
            OpBody::ChannelUnsubscribe => ledger.channel_unsubscribe(cx),
            OpBody::TaskCreate(t) => self.tasks.task_create(cx, t, ledger),
            OpBody::TaskClaim { task } => self.tasks.task_claim(cx, *task),
            OpBody::TaskStart { task } => self.tasks.task_start(cx, *task),
            OpBody::TaskComplete { task } => self.tasks.task_complete(cx, *task, ledger, params, &mut policy),
            OpBody::TaskDelete { task } if self.teams.contains_key(task) => self.teams.team_delete(cx, *task, ledger),
            OpBody::TaskDelete { task } => self.tasks.task_delete(cx, *task, ledger),
            OpBody::Bid { task, amount, estimated_days } => self.tasks.bid(cx, *task, *amount, *estimated_days),
            OpBody::AuctionClose { task } => self.tasks.auction_close(cx, *task, ledger, &mut policy),
            OpBody::SkillsSet { skills } => self.skills.skills_set(cx, skills),
            OpBody::TeamTaskCreate(t) => self.teams.team_task_create(cx, t, ledger),
            OpBody::TeamClaim { task } => self.teams.team_claim(cx, *task),
            OpBody::TeamApply { task } => self.teams.team_apply(cx, *task, &self.skills),
            OpBody::TeamAccept { task, applicant } => {
                self.teams.team_accept(cx, *task, *applicant, &self.skills, ledger)
            }
            OpBody::SubTaskComplete { task, index } => {
                self.teams.subtask_complete(cx, *task, *index, &self.skills, ledger, params, &mut policy)
            }
            OpBody::ProposalCreate(p) => self.gov.proposal_create(cx, p, ledger, params),
            OpBody::Vote { proposal, yes } => self.gov.vote(cx, *proposal, *yes, None, ledger, params),
            OpBody::LinkedVote { proposal, yes, link } => {
                self.gov.vote(cx, *proposal, *yes, Some(link), ledger, params)
            }
            OpBody::VotingKeyPublish { key, proof } => self.gov.voting_key_publish(cx, *key, proof),
            OpBody::Evidence { first, second } => crate::core::immune::equivocation_evidence(cx, first, second, ledger),
            // Folded before admission, above.
            OpBody::AnonymousVote { .. } => Err(Reject::AnonymousNotFresh),
            OpBody::ProposalClose { proposal } => self.gov.proposal_close(cx, *proposal, ledger, params, &mut policy),
            OpBody::ProposalExpire { proposal } => self.gov.proposal_expire(cx, *proposal, ledger, params, &mut policy),
            OpBody::Ratify { proposal } => {
                let run = self.gov.ratify(cx, *proposal, params);
                self.execute(cx, run, modules)
            }
            OpBody::KeyPublish { x25519 } => self.tools.key_publish(cx, *x25519),
            OpBody::ToolUpkeep { tool_id } => self.tools.tool_upkeep(cx, tool_id, ledger),
            OpBody::ToolGrant { tool_id, task, index, grant } => {
                let t = self.tasks.get(task).map(|t| &**t);
                self.tools.tool_grant(cx, tool_id, t, *index, grant, ledger, &params.rules)
            }
            OpBody::ModulePiece { module, index, count, bytes } => {
                policy.upgrades.module_piece(cx, *module, *index, *count, bytes)
            }
            // Admitted above; a second ticket is refused.
            OpBody::Admit { .. } => Err(Reject::AlreadyAdmitted),
            // Rule `checkpoint_vote`: counted by the replica, not the state.
            OpBody::Checkpoint(_) => Ok(()),
        };
        match r {
            Ok(()) => self.applied += 1,
            Err(_) => self.rejected += 1,
        }
        r
    }

    /// Rule `admission_ticket`: with `admission_bits = 0` an author's first
    /// op admits it (and mints its initial SP); otherwise only an `admit`
    /// op with a valid ticket does, and every other op of an author without
    /// an account is refused. An `admit` that admits applies (`Ok` from
    /// [`State::apply`]); one from an admitted author is refused. `Ok(true)`:
    /// this op admitted its author and does nothing else.
    fn admit(&mut self, op: &Op) -> Result<bool, Reject> {
        if self.ledger.accounts.contains_key(&op.author) {
            return Ok(false);
        }
        let bits = self.params.rules.admission_bits;
        if bits > 0 {
            let OpBody::Admit { nonce } = op.body else { return Err(Reject::NotAdmitted) };
            if !ticket_valid(&self.genesis, &op.author, nonce, bits) {
                return Err(Reject::BadTicket { bits });
            }
        }
        self.ledger.mint_if_new(op.author, op.hlc, self.params.initial_sp)?;
        Ok(matches!(op.body, OpBody::Admit { .. }))
    }

    /// Runs the command a governance rule returned, if any (`commands.rs`),
    /// and records it in the execution log.
    fn execute(
        &mut self,
        cx: Ctx<'_>,
        run: Result<Option<Execution>, Reject>,
        modules: &CompiledModules,
    ) -> Result<(), Reject> {
        if let Some(run) = run? {
            let outcome = self.run_command(cx, run.proposal, &run.command, modules);
            self.gov.record_execution(cx, run, outcome);
        }
        Ok(())
    }

    /// Rule `vote_reputation` outside a vote op (tests and tools): see
    /// [`Ledger::credit_public_vote`].
    pub fn credit_public_vote(&mut self, voter: NodeId, at: Hlc) {
        self.ledger.credit_public_vote(voter, at, &self.params);
    }

    pub fn balance(&self, node: &NodeId) -> u64 {
        self.ledger.balance(node)
    }

    pub fn treasury(&self, channel: &str) -> u64 {
        self.ledger.treasury(channel)
    }

    /// Rule `vote_outcome` for a reader (no fold): see
    /// [`governance::tally_with_faults`]. Uses a cold module cache, which
    /// gives the same result as the fold's.
    pub fn tally(&self, p: &Proposal, at_ms: u64) -> Tally {
        let modules = CompiledModules::default();
        governance::tally_with_faults(p, at_ms, &self.ledger.accounts, &self.params.rules, self.upgrades.view(&modules))
            .0
    }

    /// Rule `validator_set` at op time `at_ms` with the current config.
    pub fn compute_validators(&self, at_ms: u64) -> Vec<NodeId> {
        governance::compute_validators(&self.ledger.accounts, self.params.validator_set_size, at_ms, &self.params.rules)
    }

    /// Rule `auction_score` for a reader: see [`crate::core::auction::auction_winner`].
    pub fn auction_winner(&self, t: &Task, at_ms: u64) -> (Option<(NodeId, u64)>, Vec<ModuleHash>) {
        let modules = CompiledModules::default();
        crate::core::auction::auction_winner(t, at_ms, &self.ledger.accounts, self.upgrades.view(&modules))
    }

    /// SP conservation across the layers: balances + treasuries + escrow +
    /// tool upkeep paid == minted, and the ledger's escrow total equals the
    /// escrow held by tasks and team tasks.
    pub fn sp_conserved(&self) -> bool {
        let l = &self.ledger;
        let balances: u128 = l.accounts.values().map(|a| a.balance as u128).sum();
        let treasuries: u128 = l.channels.values().map(|c| c.treasury as u128).sum();
        let escrow: u128 = self.tasks.values().map(|t| t.escrow as u128).sum::<u128>()
            + self.teams.values().map(|t| t.escrow as u128).sum::<u128>();
        escrow == l.escrow as u128 && balances + treasuries + escrow + self.tools.spent as u128 == l.minted as u128
    }

    /// SHA-256 over a canonical binary encoding of the whole state (map
    /// entries in key order, every field length-prefixed or fixed-width).
    /// Independent of serde and of platform, so replicas compare exactly.
    pub fn state_hash(&self) -> [u8; 32] {
        let mut w = Writer::with_capacity(1024);
        self.encode_canonical(&mut w);
        Sha256::new().chain_update(b"synapse-ng/state/v1").chain_update(w.finish()).finalize().into()
    }

    /// The layers' encodings in their historical order (changing the order
    /// changes every state hash): header, ledger, tasks, teams, skills, the
    /// governance params, governance, tools, upgrades.
    fn encode_canonical(&self, w: &mut Writer) {
        let p = &self.params;
        w.u64(p.initial_sp)
            .u64(p.tax_bps)
            .u64(p.task_reputation_milli)
            .u64(p.vote_reputation_milli)
            .u64(self.ledger.minted)
            .u64(self.ledger.escrow)
            .u64(self.applied)
            .u64(self.rejected);
        self.ledger.encode_canonical(w);
        self.tasks.encode_canonical(w);
        self.teams.encode_canonical(w);
        self.skills.encode_canonical(w);
        w.u64(p.proposal_min_voting_seconds).u64(p.proposal_auto_close_after_seconds).u64(p.validator_set_size);
        self.gov.encode_canonical(w);
        self.tools.encode_canonical(w);
        self.upgrades.encode_canonical(w);
        w.raw(&self.genesis.0);
        p.rules.encode(w);
        w.u64(p.net_target_degree);
    }
}

impl ToolReader for State {
    fn tool_state(&self) -> &Tools {
        &self.tools
    }
    fn tool_task(&self, id: &TaskId) -> Option<&Task> {
        self.tasks.get(id).map(|t| &**t)
    }
    fn tool_channel(&self, name: &str) -> Option<&Channel> {
        self.ledger.channels.get(name)
    }
    fn tool_validators(&self, at_ms: u64) -> Vec<NodeId> {
        self.compute_validators(at_ms)
    }
}

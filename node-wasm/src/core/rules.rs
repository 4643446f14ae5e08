//! The rules a network fixes at its genesis and never changes: who counts
//! (admission, membership, validator eligibility), how much counts (quorum,
//! the floors config changes cannot go below) and what earns reputation.
//!
//! They are not config keys: a `config_change` cannot reach them, so a
//! captured governance cannot remove the safeguards that make capture hard.
//! A network that wants other rules starts from another genesis (another
//! network id). See "Governance → Who counts" in `docs/PROTOCOL.md`.

use serde::{Deserialize, Serialize};

/// One day of op time in seconds.
const DAY_SECONDS: u64 = 86_400;

/// The largest reputation a rule may name (10^9 milli-points = 10^6
/// points): far above anything a network earns, and exact as a JS number.
pub const MAX_REPUTATION_RULE_MILLI: u64 = 1_000_000_000;

/// The fixed rules of one network (part of its genesis record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Rule `admission_ticket`: leading zero bits the SHA-256 of an
    /// identity's admission ticket needs (0: no ticket, the first op admits).
    pub admission_bits: u8,
    /// `proposal_min_voting_seconds` cannot be set below this.
    pub voting_floor_seconds: u64,
    /// Rule `validator_floor`: `validator_set_size` cannot be set below this,
    /// and ratification needs a majority of at least this many validators
    /// even when fewer are eligible.
    pub validator_floor: u64,
    /// Rule `quorum`: counted votes must reach this share (basis points) of
    /// the weight of every member at the close.
    pub quorum_bps: u64,
    /// Rule `member`: reputation (milli-points, at op time) from which an
    /// admitted identity is a member: its votes count and it counts toward
    /// the quorum. Reputation decays, so members are the recently active.
    pub member_reputation_milli: u64,
    /// Rule `validator_eligible`: reputation a member needs to be a validator.
    pub validator_reputation_milli: u64,
    /// Rule `validator_eligible`: and the age of its account (op time since
    /// its admission), in seconds.
    pub validator_age_seconds: u64,
    /// Rule `paid_work_reputation`: a completed task earns its assignee
    /// reputation only if its reward is at least this (SP) and whoever paid
    /// for it is a member other than the assignee.
    pub min_paid_reward: u64,
    /// Rule `daily_reputation_cap`: reputation one identity can earn per day
    /// of op time (milli-points), however many tasks or votes it does.
    pub daily_reputation_cap_milli: u64,
    /// Rule `epoch`: the length of one finality epoch in seconds (0: no
    /// finality, ops stay revisable forever; only test networks do that).
    /// Validators sign the state at the end of each epoch one epoch after
    /// it ended (`docs/PROTOCOL.md` "Finality").
    #[serde(default = "default_epoch_seconds")]
    pub epoch_seconds: u64,
}

/// The default epoch: one minute. Finality then lags real time by one to
/// two minutes, and a validator signs 1,440 checkpoints a day.
pub const DEFAULT_EPOCH_SECONDS: u64 = 60;

fn default_epoch_seconds() -> u64 {
    DEFAULT_EPOCH_SECONDS
}

impl Default for Rules {
    /// The safe defaults: what a network gets when its genesis says nothing.
    fn default() -> Rules {
        Rules {
            admission_bits: 24,
            voting_floor_seconds: 3_600,
            validator_floor: 4,
            quorum_bps: 3_000,
            member_reputation_milli: 5_000,
            validator_reputation_milli: 20_000,
            validator_age_seconds: 7 * DAY_SECONDS,
            min_paid_reward: 10,
            daily_reputation_cap_milli: 30_000,
            epoch_seconds: DEFAULT_EPOCH_SECONDS,
        }
    }
}

impl Rules {
    /// Rules with every safeguard off: for tests of other features and for
    /// private experiments. Never a default: a network gets these only from
    /// a genesis that names them.
    pub fn open() -> Rules {
        Rules {
            admission_bits: 0,
            voting_floor_seconds: 0,
            validator_floor: 1,
            quorum_bps: 0,
            member_reputation_milli: 0,
            validator_reputation_milli: 0,
            validator_age_seconds: 0,
            min_paid_reward: 0,
            // No cap in practice (10^6 points a day), and exact in a JS
            // number, which `u64::MAX` is not (the state is shown to JS).
            daily_reputation_cap_milli: MAX_REPUTATION_RULE_MILLI,
            epoch_seconds: 0,
        }
    }

    /// Rule `member`, given whether the identity is a founder and its
    /// `_total` reputation already decayed to the op time.
    pub fn is_member(&self, founder: bool, total_milli: u64) -> bool {
        founder || total_milli >= self.member_reputation_milli
    }

    /// Checks the rules themselves (a genesis file is input): `Err` says
    /// which field is out of its range.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, u64, u64, u64); 10] = [
            ("admission_bits", u64::from(self.admission_bits), 0, 40),
            ("voting_floor_seconds", self.voting_floor_seconds, 0, 365 * DAY_SECONDS),
            ("validator_floor", self.validator_floor, 1, 1_000),
            ("quorum_bps", self.quorum_bps, 0, 10_000),
            ("validator_age_seconds", self.validator_age_seconds, 0, 365 * DAY_SECONDS),
            ("min_paid_reward", self.min_paid_reward, 0, 1_000_000),
            ("member_reputation_milli", self.member_reputation_milli, 0, MAX_REPUTATION_RULE_MILLI),
            ("validator_reputation_milli", self.validator_reputation_milli, 0, MAX_REPUTATION_RULE_MILLI),
            ("daily_reputation_cap_milli", self.daily_reputation_cap_milli, 0, MAX_REPUTATION_RULE_MILLI),
            ("epoch_seconds", self.epoch_seconds, 0, DAY_SECONDS),
        ];
        for (name, v, lo, hi) in checks {
            if v < lo || v > hi {
                return Err(format!("rules.{name} = {v} is out of range: it must be at least {lo} and at most {hi}"));
            }
        }
        Ok(())
    }

    /// The rule-set's canonical bytes (part of the genesis hash and of the
    /// state hash).
    pub fn encode(&self, w: &mut crate::codec::Writer) {
        w.u8(self.admission_bits)
            .u64(self.voting_floor_seconds)
            .u64(self.validator_floor)
            .u64(self.quorum_bps)
            .u64(self.member_reputation_milli)
            .u64(self.validator_reputation_milli)
            .u64(self.validator_age_seconds)
            .u64(self.min_paid_reward)
            .u64(self.daily_reputation_cap_milli)
            .u64(self.epoch_seconds);
    }
}

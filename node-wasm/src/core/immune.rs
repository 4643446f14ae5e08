//! The immune system's fold rules: objective misbehaviour, proven by
//! evidence every node can check, answered by a fixed penalty. Nothing
//! here is voted on.
//!
//! Rule **equivocation_evidence**: an `evidence` op quotes two signed ops
//! of one author at one seq with different contents (each valid under
//! `verify_strict`). The first such evidence in the fold order slashes the
//! author: its reputation drops to zero (every tag) and it is not
//! validator-eligible for [`EQUIVOCATION_BAN_MS`] from the evidence's op
//! time. Once per identity; later evidence is refused
//! (`already_penalized`). Anyone may publish it; its author gains nothing.
//!
//! What is *not* provable, and so has no evidence op: a peer relaying ops
//! with bad signatures (DataChannel frames carry no signature of the relay,
//! so a third party cannot check who sent them; each node scores and
//! graylists such a peer locally), and a reused admission ticket (a ticket
//! is proof of work over the author's own key, so it cannot be reused by
//! another key at all).

use crate::core::common::Ctx;
use crate::core::ledger::Ledger;
use crate::core::op::SignedOp;
use crate::core::reject::Reject;
use crate::core::reputation::Reputation;

/// How long an equivocator is not validator-eligible: 30 days.
pub const EQUIVOCATION_BAN_MS: u64 = 30 * 86_400_000;

/// Rule `equivocation_evidence`.
pub fn equivocation_evidence(cx: Ctx<'_>, first: &[u8], second: &[u8], ledger: &mut Ledger) -> Result<(), Reject> {
    let check = |b: &[u8]| {
        SignedOp::decode(b).and_then(SignedOp::verify).map_err(|_| Reject::BadEvidence("an op does not verify"))
    };
    let (a, b) = (check(first)?, check(second)?);
    let (oa, ob) = (a.op(), b.op());
    if oa.author != ob.author {
        return Err(Reject::BadEvidence("the ops have different authors"));
    }
    if oa.seq != ob.seq {
        return Err(Reject::BadEvidence("the ops are at different seqs"));
    }
    if a.id() == b.id() {
        return Err(Reject::BadEvidence("the two ops are the same op"));
    }
    let offender = oa.author;
    let account = ledger.accounts.get_mut(&offender).ok_or(Reject::NoAccount(offender))?;
    if account.slashed_at_seq.is_some() {
        return Err(Reject::AlreadyPenalized(offender));
    }
    account.slashed_at_seq = Some(oa.seq);
    account.reputation = Reputation::new(cx.hlc.ms);
    account.banned_until_ms = cx.hlc.ms.saturating_add(EQUIVOCATION_BAN_MS);
    Ok(())
}

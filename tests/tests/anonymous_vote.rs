//! Anonymous votes between four real browser nodes on the real rendezvous:
//! every node publishes its voting key; two members vote anonymously (a
//! ring signature carried by a fresh key through the stem phase) and one
//! publicly; every node shows the same tally, with no voter named for the
//! anonymous ones. A modified client's second anonymous vote is refused
//! by the fold on every node. Then that client signs two ops at one seq:
//! the evidence reaches every node, which slashes it alike.

use e2e::{Browser, NodePage, Rendezvous, knows_proposal, serial, wait_all, wait_full_mesh};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_votes_tallied_alike_a_double_vote_refused_and_an_equivocator_slashed_everywhere() {
    let _serial = serial().await;
    let rdv = Rendezvous::start();
    let browser = Browser::start().await;
    // B acts as a modified client: it signs a second anonymous vote that
    // its own rules refuse, to show what honest nodes do with it.
    let (a, b, c, d) = tokio::join!(
        browser.open_node(&rdv, "profile=av1"),
        browser.open_node(&rdv, "profile=av2&debug_unchecked=1"),
        browser.open_node(&rdv, "profile=av3"),
        browser.open_node(&rdv, "profile=av4"),
    );
    let nodes: [&NodePage; 4] = [&a, &b, &c, &d];
    wait_full_mesh(&nodes).await;
    wait_all(
        &nodes,
        "every node's voting key published",
        "Object.keys(window.synapse.state().state.gov.voting_keys).length",
        |v| v == &json!(4),
    )
    .await;

    let p: String = a
        .eval(
            "window.synapse.propose('global', {kind: 'generic', title: 'anonymous ballot', description: 'ring test'})",
        )
        .await;
    for n in &nodes {
        knows_proposal(n, &p).await;
    }
    let ring = format!("window.synapse.state().state.gov.proposals['{p}'].ballot");
    let members: Value = a.eval(&format!("{ring}.rings.map(r => r.members.length)")).await;
    assert_eq!(members, json!([4]), "one ring of the four members, fixed at open");

    // Two anonymous votes and one public one.
    let vote_anon = "return window.synapse.voteAnonymously(arguments[0], arguments[1]);";
    let b_vote: String = b.call(vote_anon, vec![json!(p), json!(true)]).await;
    let c_vote: String = c.call(vote_anon, vec![json!(p), json!(false)]).await;
    let _: String = d.call("return window.synapse.vote(arguments[0], true);", vec![json!(p)]).await;
    let tally = format!("window.synapse.proposals().find(r => r.proposal.id === '{p}').tally");
    let seen = wait_all(
        &nodes,
        "two anonymous votes and one public vote tallied on every node",
        &format!("(t => [t.anonymous.total, t.anonymous.yes, t.anonymous.no, t.details.length])({tally})"),
        |v| v == &json!([2, 1, 1, 1]),
    )
    .await;
    assert_eq!(seen, json!([2, 1, 1, 1]));
    // No anonymous voter is named: the only public voter is D, and the
    // carriers of the two votes (held by every node) are fresh keys that
    // got no account.
    let d_id: String = d.eval("window.synapse.id()").await;
    let voters: Value = a.eval(&format!("Object.keys(window.synapse.state().state.gov.proposals['{p}'].votes)")).await;
    assert_eq!(voters, json!([d_id]));
    for n in &nodes {
        for carrier_op in [&b_vote, &c_vote] {
            let held: bool = n.call("return window.synapse.hasOp(arguments[0]);", vec![json!(carrier_op)]).await;
            assert!(held, "every node holds the carrier op {carrier_op}");
        }
        let accounts: usize = n.eval("Object.keys(window.synapse.state().state.accounts).length").await;
        assert_eq!(accounts, 4, "carriers get no account");
    }
    let by_tier: Value = c.eval(&format!("{tally}.anonymous.by_tier")).await;
    assert_eq!(by_tier, json!({"novice": [1, 1]}));

    // An honest client refuses a second vote before signing anything.
    let again = c.try_call(vote_anon, vec![json!(p), json!(true)]).await;
    assert!(again.is_err_and(|e| e.contains("already voted")), "an honest page refuses a double vote");
    // The modified client signs one anyway: every node's fold refuses it.
    let double: String = b.call(vote_anon, vec![json!(p), json!(false)]).await;
    wait_all(
        &nodes,
        "the double vote refused on every node",
        &format!(
            "[window.synapse.state().rejected.filter(r => r.op === '{double}').map(r => r.code), \
              ({tally}).anonymous.total, ({tally}).anonymous.no]"
        ),
        |v| v == &json!([["already_voted"], 2, 1]),
    )
    .await;
    // The immune system: B earns reputation (a public, linked vote on a
    // second proposal), then equivocates. Some node publishes the evidence
    // and every node applies the same penalty.
    let q: String = a.eval("window.synapse.propose('global', {kind: 'generic', title: 'second'})").await;
    knows_proposal(&b, &q).await;
    let _: String = b.call("return window.synapse.vote(arguments[0], true);", vec![json!(q)]).await;
    let b_id: String = b.eval("window.synapse.id()").await;
    let account = format!("window.synapse.state().state.accounts['{b_id}']");
    wait_all(&nodes, "B's vote credited everywhere", &format!("{account}.reputation.total > 0"), |v| v == &json!(true))
        .await;
    let fork: String = b.eval("window.synapse.debugEquivocate()").await;
    assert_eq!(fork.len(), 64);
    let slashed = wait_all(
        &nodes,
        "the equivocator slashed on every node",
        &format!("(a => [a.slashed_at_seq !== null, a.reputation.total, a.banned_until_ms > Date.now()])({account})"),
        |v| v == &json!([true, 0, true]),
    )
    .await;
    assert_eq!(slashed, json!([true, 0, true]));
    let evidence: usize = a
        .eval("Object.values(window.synapse.state().state.accounts).filter(a => a.slashed_at_seq !== null).length")
        .await;
    assert_eq!(evidence, 1, "one identity slashed");
}

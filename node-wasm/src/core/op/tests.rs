use super::*;
use crate::codec::DecodeError;
use crate::core::hlc::Hlc;
use crate::core::upgrade::Policy;
use crate::identity::{Identity, NodeId};

fn sample_bodies() -> Vec<OpBody> {
    let t = OpId([9; 32]);
    vec![
        OpBody::ChannelCreate { description: "dev".into() },
        OpBody::ChannelSubscribe,
        OpBody::ChannelUnsubscribe,
        OpBody::TaskCreate(NewTask {
            schema: TaskSchema::TaskV2,
            title: "Fix the bug ✓".into(),
            description: "d".into(),
            reward: 0,
            tags: vec!["rust".into(), "wasm".into()],
            required_tools: vec!["gh".into()],
            funding: Funding::Treasury,
            auction: Some(AuctionTerms { max_reward: 100, deadline_ms: 99 }),
        }),
        OpBody::TaskCreate(NewTask {
            schema: TaskSchema::TaskV1,
            title: "t".into(),
            description: String::new(),
            reward: 5,
            tags: vec![],
            required_tools: vec![],
            funding: Funding::Creator,
            auction: None,
        }),
        OpBody::TaskClaim { task: t },
        OpBody::TaskStart { task: t },
        OpBody::TaskComplete { task: t },
        OpBody::TaskDelete { task: t },
        OpBody::Bid { task: t, amount: 3, estimated_days: 2 },
        OpBody::AuctionClose { task: t },
        OpBody::SkillsSet { skills: vec!["rust".into(), "ui".into()] },
        OpBody::TeamTaskCreate(NewTeamTask {
            title: "team".into(),
            description: "d".into(),
            subtasks: vec![NewSubTask {
                title: "s".into(),
                description: String::new(),
                required_skills: vec!["rust".into()],
                reward: 7,
            }],
            coordinator_bonus: 3,
            max_team_size: 4,
        }),
        OpBody::TeamClaim { task: t },
        OpBody::TeamApply { task: t },
        OpBody::TeamAccept { task: t, applicant: NodeId([5; 32]) },
        OpBody::SubTaskComplete { task: t, index: 2 },
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Generic,
            title: "p".into(),
            description: String::new(),
            tags: vec!["python".into()],
            command: None,
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::ConfigChange,
            title: "c".into(),
            description: "d".into(),
            tags: vec![],
            command: Some(Command::ConfigChange { key: "tax_bps".into(), value: ConfigValue::Int(300) }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "b".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::ConfigChange { key: "x".into(), value: ConfigValue::Bool(true) }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "t".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::ConfigChange { key: "x".into(), value: ConfigValue::Text("v".into()) }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::NetworkOperation,
            title: "s".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::SplitChannel {
                target: "dev".into(),
                logic: SplitLogic::ByTitlePrefix,
                parts: vec![SplitPart { channel: "dev-ui".into(), keys: vec!["UI:".into()] }],
            }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "m".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::MergeChannels { sources: vec!["a".into(), "b".into()], target: "c".into() }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "u".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::UpdateSchema { name: "x".into(), definition: "{}".into() }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::CodeUpgrade,
            title: "w".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::CodeUpgrade { module_sha256: [4; 32], policy: Policy::Tax }),
        }),
        OpBody::Vote { proposal: t, yes: true },
        OpBody::Vote { proposal: t, yes: false },
        OpBody::ProposalClose { proposal: t },
        OpBody::ProposalExpire { proposal: t },
        OpBody::Ratify { proposal: t },
        OpBody::KeyPublish { x25519: [3; 32] },
        OpBody::ToolUpkeep { tool_id: "gh".into() },
        OpBody::ModulePiece { module: [5; 32], index: 1, count: 2, bytes: vec![0, 97, 115, 109] },
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "tool".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::AcquireCommonTool(NewTool {
                channel: "dev".into(),
                tool_id: "gh".into(),
                description: "d".into(),
                tool_type: ToolType::Webhook,
                webhook_url: "http://127.0.0.1/hook".into(),
                monthly_cost_sp: 5,
                secret: SealedSecret {
                    nonce: [1; 12],
                    ciphertext: vec![1, 2, 3],
                    recipients: vec![SealedKey {
                        recipient: NodeId([2; 32]),
                        ephemeral: [3; 32],
                        nonce: [4; 12],
                        sealed_key: vec![5; SEALED_KEY_BYTES],
                    }],
                },
            })),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::NetworkOperation,
            title: "dep".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::DeprecateCommonTool { channel: "dev".into(), tool_id: "gh".into() }),
        }),
        OpBody::ProposalCreate(NewProposal {
            kind: ProposalKind::Command,
            title: "re".into(),
            description: String::new(),
            tags: vec![],
            command: Some(Command::ReactivateCommonTool { channel: "dev".into(), tool_id: "gh".into() }),
        }),
    ]
}

#[test]
fn op_round_trips_and_verifies() {
    let me = Identity::from_seed([1; 32]);
    for (i, body) in sample_bodies().into_iter().enumerate() {
        let seq = i as u64 + 1;
        let prev = if seq == 1 { OpId::ZERO } else { OpId([1; 32]) };
        let op = SignedOp::create(&me, seq, prev, Hlc::new(10, 2), "dev", body).unwrap();
        let back = SignedOp::decode(op.bytes()).unwrap();
        assert_eq!(back.op(), op.op());
        assert_eq!(back.id(), op.id());
        assert_eq!(back.id(), op_id(op.bytes()));
        back.verify().unwrap();
    }
}

/// The JS API hands bodies in as JSON (serde): every body round-trips.
#[test]
fn op_bodies_round_trip_through_json() {
    for body in sample_bodies() {
        let json = serde_json::to_string(&body).unwrap();
        let back: OpBody = serde_json::from_str(&json).unwrap();
        assert_eq!(back, body, "{json}");
    }
    let json = r#"{"type":"proposal_create","kind":"config_change","title":"t","description":"","tags":[],
            "command":{"operation":"config_change","key":"tax_bps","value":{"type":"int","value":300}}}"#;
    let body: OpBody = serde_json::from_str(json).unwrap();
    assert!(matches!(body, OpBody::ProposalCreate(NewProposal { kind: ProposalKind::ConfigChange, .. })));
}

#[test]
fn op_signature_binds_every_byte() {
    let me = Identity::from_seed([1; 32]);
    let op = SignedOp::create(&me, 1, OpId::ZERO, Hlc::new(1, 0), "dev", OpBody::ChannelSubscribe).unwrap();
    let bytes = op.bytes().to_vec();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 1;
        if let Ok(d) = SignedOp::decode(&b) {
            assert!(d.verify().is_err(), "flip at byte {i} still verified");
        }
    }
}

#[test]
fn op_decoding_is_strict() {
    let me = Identity::from_seed([1; 32]);
    let op = SignedOp::create(&me, 1, OpId::ZERO, Hlc::new(1, 0), "dev", OpBody::ChannelSubscribe).unwrap();
    let bytes = op.bytes();
    // Trailing byte inside the payload (before the signature).
    let mut b = bytes[..bytes.len() - 64].to_vec();
    b.push(0);
    b.extend_from_slice(op.signature());
    assert!(SignedOp::decode(&b).is_err());
    // Unknown version.
    let mut b = bytes.to_vec();
    b[0] = 2;
    assert_eq!(SignedOp::decode(&b), Err(OpError::Decode(DecodeError::UnknownVersion(2))));
    // Too large.
    assert!(matches!(SignedOp::decode(&vec![0; MAX_OP_BYTES + 1]), Err(OpError::TooLarge(_))));
    // seq 0 and non-zero prev at seq 1 cannot even be built.
    assert!(SignedOp::create(&me, 0, OpId::ZERO, Hlc::ZERO, "a", OpBody::ChannelSubscribe).is_err());
    assert!(SignedOp::create(&me, 1, OpId([1; 32]), Hlc::ZERO, "a", OpBody::ChannelSubscribe).is_err());
    // Bad channel names.
    for name in ["", "Dev", "a b", &"x".repeat(65)] {
        assert!(SignedOp::create(&me, 1, OpId::ZERO, Hlc::ZERO, name, OpBody::ChannelSubscribe).is_err());
    }
    // Over-long lists.
    let body = OpBody::TaskCreate(NewTask {
        schema: TaskSchema::TaskV1,
        title: "t".into(),
        description: String::new(),
        reward: 0,
        tags: vec!["x".into(); MAX_TAGS + 1],
        required_tools: vec![],
        funding: Funding::Creator,
        auction: None,
    });
    assert!(SignedOp::create(&me, 1, OpId::ZERO, Hlc::ZERO, "a", body).is_err());
}

#[test]
fn op_decoder_never_panics_on_garbage() {
    // A tiny xorshift so the test needs no RNG crate.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let me = Identity::from_seed([1; 32]);
    let seeds: Vec<Vec<u8>> = sample_bodies()
        .into_iter()
        .map(|b| SignedOp::create(&me, 2, OpId([3; 32]), Hlc::new(5, 0), "c", b).unwrap().bytes().to_vec())
        .collect();
    for i in 0..20_000 {
        let mut b = seeds[i % seeds.len()].clone();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            let pos = (next() as usize) % b.len();
            b[pos] = next() as u8;
        }
        if next() % 8 == 0 {
            let cut = (next() as usize) % b.len();
            b.truncate(cut);
        }
        if let Ok(op) = SignedOp::decode(&b) {
            let _ = op.verify();
        }
    }
}

// Types of `window.synapse`, the Synapse-NG node's JS API (README, "JS API").
//
// Hand-written, and the single source: the wasm build emits this file into
// the generated bindings next to the `SynapseNode` class, and a native test
// (`node-wasm/src/service/dts_tests.rs`) checks that it declares every field
// of a populated `state()` snapshot and every method the binding defines.
// Numbers are JSON numbers (SP amounts, times in ms, counters); ids are hex.

/** A node id or op id (or module hash): 64 lowercase hex characters. */
export type Hex64 = string;
/** Milliseconds since the Unix epoch (op time). */
export type EpochMs = number;
/** A hybrid logical clock reading: wall `ms` and a `logical` tie-breaker. */
export interface Hlc { ms: EpochMs; logical: number; }

// ---------------------------------------------------------------- events --

/** `on`/`off` events: `change` after any visible change, or one domain. */
export type SynapseEvent = "change" | "tasks" | "governance" | "economy" | "channels" | "tools" | "upgrades" | "network" | "agent";

// ------------------------------------------------------- action arguments --

/** A replaceable policy (docs/UPGRADES.md). */
export type Policy = "vote_weight" | "auction_score" | "tax";
export interface AuctionTerms { max_reward: number; deadline_ms: EpochMs; }
/** `createTask`'s argument (unknown fields are refused). */
export interface TaskSpec {
  title: string; description?: string; reward?: number; tags?: string[];
  required_tools?: string[]; funding?: Funding; auction?: AuctionTerms;
}
export interface SubTaskSpec { title: string; description?: string; required_skills?: string[]; reward?: number; }
/** `createTeamTask`'s argument: the whole budget (rewards + bonus) is escrowed. */
export interface TeamTaskSpec {
  title: string; description?: string; subtasks: SubTaskSpec[];
  coordinator_bonus?: number; max_team_size: number;
}
export type ConfigValue = { type: "int"; value: number } | { type: "bool"; value: boolean } | { type: "text"; value: string };
export type ToolType = "api_key" | "webhook";
/** A tool secret: encrypted once, its data key sealed to each recipient. No plaintext. */
export interface SealedSecret { nonce: number[]; ciphertext: number[]; recipients: SealedKey[]; }
export interface SealedKey { recipient: Hex64; ephemeral: number[]; nonce: number[]; sealed_key: number[]; }
/** A governance command (what an approved proposal executes). */
export type Command =
  | { operation: "config_change"; key: string; value: ConfigValue }
  | { operation: "split_channel"; target: string; logic: "by_tag" | "by_title_prefix"; parts: { channel: string; keys: string[] }[] }
  | { operation: "merge_channels"; sources: string[]; target: string }
  | { operation: "update_schema"; name: string; definition: string }
  | { operation: "code_upgrade"; module_sha256: Hex64; policy: Policy }
  | { operation: "acquire_common_tool"; channel: string; tool_id: string; description: string; tool_type: ToolType;
      webhook_url: string; monthly_cost_sp: number; secret: SealedSecret }
  | { operation: "deprecate_common_tool"; channel: string; tool_id: string }
  | { operation: "reactivate_common_tool"; channel: string; tool_id: string };
export type ProposalKind = "generic" | "config_change" | "command" | "network_operation" | "code_upgrade";
/** `propose`'s argument. */
export interface ProposalSpec { kind: ProposalKind; title: string; description?: string; tags?: string[]; command?: Command; }
/** `proposeTool`'s argument; `secret` is sealed here, never sent in clear.
 *  `recipients` defaults to the channel's members (on `global`, every node
 *  with a published key); each must have published a key. */
export interface ToolSpec {
  tool_id: string; tool_type: ToolType; secret: string; webhook_url?: string;
  monthly_cost_sp?: number; description?: string; recipients?: Hex64[]; title?: string;
}
/** `proposeUpgrade`'s argument: `module` 64 zeros = back to the built-in policy. */
export interface UpgradeSpec { title: string; description?: string; tags?: string[]; module: Hex64; policy: Policy; }
/** Any op body, e.g. `{type: "task_claim", task}` (docs/PROTOCOL.md, Operations). */
export type OpBody = { type: string; [field: string]: unknown };
export interface ImportOptions { replace?: boolean; }

// ------------------------------------------------------------ read models --

export interface ExampleModule { name: string; policy: Policy; sha256: Hex64; size: number; }
export interface PublishedModule { module: Hex64; size: number; pieces: number; pieces_sent: number; }
export interface DryRunChange { subject: Hex64; title: string; status: string; before: string; after: string; }
export interface DryRunSample { input: string; before: string; after: string; }
/** `dryRunModule`'s report: `error` set when the module fails a load check. */
export interface DryRun {
  module: Hex64; policy: Policy; size: number; current: Hex64;
  error: { code: string; message: string } | null; faults: number;
  changes: DryRunChange[]; samples: DryRunSample[];
}
/** `schemas()`: one schema with its fields (`error` when a governance definition is unusable). */
export interface SchemaInfo {
  name: string; version: number; source: "built_in" | "governance"; error: string | null;
  fields: { name: string; type: "string" | "integer" | "list[string]" | "object" | "enum"; required: boolean;
            default?: unknown; min: number | null; max: number | null; values: string[] | null }[];
}
/** `validate(schema, value)`: every problem at once, and the value with defaults when ok. */
export interface SchemaCheck { ok: boolean; errors: { field: string; message: string }[]; value: Record<string, unknown> | null; }
/** `teamWaitingFor`: the sub-task a forming team still lacks a qualified member for. */
export interface TeamWaitingFor { index: number; title: string; required_skills: string[]; sentence: string; }
/** `channels()`: one channel; `joined` says whether this node is a member. */
export interface ChannelRow {
  name: string; description: string; steward: Hex64 | null; members: number; treasury: number;
  joined: boolean; dissolved: boolean;
  /** Where an archived channel's work went ("split into a, b", "merged into c"); null while active. */
  archived: string | null;
}
/** `proposals()`: a proposal with its final tally, or the live one while open. */
/** `ratification_quorum`: ratifications needed; `closable_in_ms`/`deadline_in_ms`: time left until a close may end the vote and until the deadline (0: now). */
export interface ProposalRow { proposal: Proposal; tally: Tally; ratification_quorum: number; closable_in_ms: number; deadline_in_ms: number; }
/** `accounts()`: balance and reputation (milli-points, decayed to now; per tag). */
export interface AccountRow { id: Hex64; balance: number; reputation: number; tags: [string, number][]; }
/** `economy()`: network-wide SP totals. */
export interface EconomyTotals { minted: number; escrow: number; tools_spent: number; tax_bps: number; conserved: boolean; }
/** `tools()`: a common tool and this node's in-progress tasks that may use it (`[task id, title]`). */
export interface ToolRow {
  tool_id: string; channel: string; tool_type: ToolType; status: ToolStatus; monthly_cost_sp: number;
  paid_until_ms: EpochMs; description: string; my_tasks: [Hex64, string][];
}

// ---------------------------------------------------------------- network --

export interface StorageStatus {
  ok: boolean; problem: "unavailable" | "full" | "write_failed" | "read_failed" | null;
  error: string | null; memory_only: boolean; unsaved: number; uncommitted: number;
}
/** Whether this node may sign now (`state: "ready"`), and if not, why. */
export type ChainStatus = { sentence: string | null; head: number } & (
  | { state: "ready" }
  | { state: "waiting"; need: { for: "ops" | "peer_ops"; seq: number } | { for: "peer_view" }; deadline_ms: number | null }
  | { state: "conflict"; seq: number }
  | { state: "forked"; seq: number });
export interface RendezvousServer { state: "connecting" | "connected" | "disconnected"; url: string; last_error: string | null; directory: Hex64[]; }
/** Every rendezvous server at once: the best state, the first connected
 *  server's URL, the latest error, the union of the directories. */
export interface RendezvousStatus { state: "connecting" | "connected" | "disconnected"; url: string; last_error: string | null; directory: Hex64[]; servers: RendezvousServer[]; }
/** `status().ice`: the STUN/TURN servers in use (URLs only), where they came
 *  from, the browser's ICE errors and, when they cannot work, why. */
export interface IceStatus {
  source: "page" | "rendezvous" | "none"; policy: "all" | "relay"; servers: string[];
  errors: { url: string; code: number; text: string; count: number }[]; sentence: string | null;
}
/** An `RTCIceServer` for `setIceServers`; TURN URLs need both credentials. */
export interface IceServerInit { urls: string | string[]; username?: string; credential?: string; }
export interface NodeStatus { id: Hex64; profile: string; rendezvous: RendezvousStatus; peers: Hex64[]; storage: StorageStatus; chain: ChainStatus; ice: IceStatus; network: NetworkStatus; admission: AdmissionStatus; finality: FinalityStatus; }
/** `status().finality`: epochs and the last final checkpoint, what this node stores, and snapshot sync. */
export interface FinalityStatus extends Finality {
  storage: {
    /** `prune` (default: ops a final checkpoint covers are dropped) or `archive` (`?history=archive`). */
    history: "prune" | "archive";
    ops_held: number; ops_pruned: number;
    /** Bytes of the checkpoint saved in IndexedDB (record + state snapshot). */
    checkpoint_bytes: number; saved_epoch: number | null;
    /** At start: stored ops the checkpoint covers (not verified), and the checkpoint started from. */
    ops_skipped_at_load: number; loaded_epoch: number | null;
    /** Checkpoints adopted from peers (snapshot join or catch-up). */
    snapshot_joins: number;
    /** `[received, total]` bytes of a checkpoint being fetched. */
    fetching: [number, number] | null;
    /** Why the last fetched checkpoint, or the saved one at start, was refused. */
    last_refusal: string | null;
    /** The router's message bytes and index entries. */
    router_bytes: number; router_index: number;
  };
  sync: { parts_served: number; asks_refused: number; parts_received: number; bad_parts: number; timeouts: number };
}
/** Which network this node is on: the genesis its rendezvous serves (`source: "served"`) or the default one. */
export interface NetworkStatus {
  /** Hex SHA-256 of the genesis record: the network id. */
  genesis: string; name: string; source: "served" | "default";
  /** Why the served genesis was not used, if it was not. */
  problem: string | null;
  /** The last peer refused for being on another network, with why. */
  refused_peer: string | null;
  rules: Rules;
}
/** `admission()`: this identity's admission ticket (rule `admission_ticket`). */
export interface AdmissionStatus {
  /** `not_needed`: the network asks no ticket; `computing`: searching (proof
   *  of work); `publishing`: found, its `admit` op is being stored and
   *  published; `admitted`: this identity has an account. */
  state: "not_needed" | "computing" | "publishing" | "admitted";
  /** Leading zero bits the network's rules ask for. */
  bits: number;
  /** Nonces tried so far. */
  tried: number;
  /** `2^bits`: tries needed on average. */
  expected: number;
  /** `min(99, tried·100/expected)` while computing, 100 after. */
  percent: number;
  /** Hashes per second while computing (0 otherwise or before the first report). */
  rate: number;
  /** About how many seconds the search still needs at this rate, or null. */
  seconds_left: number | null;
}
export interface LedgerStats {
  ops_created: number; ops_received: number; ops_invalid: number; ops_future: number; ops_loaded: number; ops_load_skipped: number;
  ops_fetched: number; ops_refetched: number; ops_committed: number; ops_conflicted: number;
  store_errors: number; last_store_error: string | null;
  storage_error: string | null;
  /** This node's anonymous votes sent into the stem phase; peers' anonymous votes on proposals not known here yet. */
  anonymous_votes_sent: number; anonymous_votes_early: number;
}
/** `health_targets`: what a node measures itself against (docs/PROTOCOL.md, "Immune system"). */
export interface HealthTargets { min_peers: number; max_latency_ms: number; max_loss_bps: number; max_ops_per_min: number; }
export type HealthProblem = "low_connectivity" | "high_latency" | "message_loss" | "overload";
export interface HealthReport {
  targets: HealthTargets;
  /** One per problem: the last cycle's measure (null: nothing to measure), its target, and for how many cycles it missed. */
  vitals: { problem: HealthProblem; current: number | null; target: number; ok: boolean; streak: number }[];
  open_remedies: [Hex64, string][];
  /** A problem whose remedy this node will propose when its rank comes up. */
  pending: HealthProblem | null;
  net_target_degree: number;
}
/** The optional agent (README, "The optional agent"). */
export type AgentKind = "claim" | "bid" | "vote" | "create_task";
export interface AgentConfig {
  enabled?: boolean;
  /** An OpenAI-compatible base URL, e.g. `http://localhost:11434/v1`; none: the rule-based policy. */
  endpoint?: string | null; model?: string; api_key?: string | null;
  allowed?: AgentKind[]; auto?: AgentKind[];
  /** At least 100. */ reserve_sp?: number;
  /** 1 to 30. */ max_bid_percent?: number;
  cycle_seconds?: number;
}
export type AgentAction =
  | { kind: "claim"; task: Hex64 }
  | { kind: "bid"; task: Hex64; amount: number; estimated_days: number }
  | { kind: "vote"; proposal: Hex64; yes: boolean }
  | { kind: "create_task"; channel: string; title: string; reward: number; tags: string[] };
export type AgentSuggestionStatus =
  | { status: "pending" } | { status: "refused"; why: string } | { status: "done"; op: Hex64 }
  | { status: "failed"; why: string } | { status: "dismissed" } | { status: "stale"; why: string };
export interface AgentSuggestion {
  id: number; action: AgentAction | null; kind: string; reason: string; source: "rules" | "model";
  status: AgentSuggestionStatus; at_ms: number; automatic: boolean;
}
export interface AgentStatus {
  config: Required<Omit<AgentConfig, "api_key">>; has_api_key: boolean; source: "rules" | "model" | null;
  model_problem: string | null; cycles: number; busy: boolean; next_cycle_ms: number; suggestions: AgentSuggestion[];
}
export interface AgentDraft {
  wat: string; size: number; bytes: Uint8Array; dry_run: DryRun;
  proposal: { title: string; description: string; tags: string[]; module: Hex64; policy: Policy };
}
export interface PubsubStats { router: Record<string, number>; mesh: Record<string, Hex64[]>; ledger: LedgerStats; }
export type CandidateType = "host" | "srflx" | "prflx" | "relay";
export interface PeerState {
  id: Hex64; state: "connecting" | "handshaking" | "proven"; connection: string; polite: boolean; rtt_ms: number | null;
  /** Candidate types of the pair in use, here and at the peer, once known. */
  candidate: CandidateType | null; remote_candidate: CandidateType | null;
}
export interface Hello { from: Hex64; text: string; via: Hex64; at_ms: number; }
export interface Timings { node_started_ms: number; first_channel_open_ms: number | null; first_peer_proven_ms: number | null; }

// --------------------------------------------------------------- snapshot --

/** `state()`: the replicated state and how this node holds the op log. */
export interface Snapshot {
  /** Hex SHA-256 of the canonical state (equal on nodes holding the same ops). */
  state_hash: string;
  clock: Hlc;
  state: State;
  /** Authors that signed two ops at one seq: their ops from that seq on are excluded. */
  equivocators: { author: Hex64; seq: number; ops: Hex64[] }[];
  /** Ops that broke a rule at their place in the order (kept, without effect). */
  rejected: RejectedOp[];
  /** `late`: ops refused by rule `late_op` (dated before the last final checkpoint, not in it). */
  counts: { stored: number; applied: number; rejected: number; pending: number; excluded: number; invalid: number; held: number; late: number };
  /** Epochs and the last final checkpoint (docs/PROTOCOL.md, "Finality"). */
  finality: Finality;
}
/** Finality as this node sees it. Null fields: nothing final yet. */
export interface Finality {
  /** False on networks whose rules turn finality off (`epoch_seconds` 0). */
  enabled: boolean;
  epoch_seconds: number;
  /** The epoch validators sign now. */
  current_epoch: number | null;
  final_epoch: number | null;
  /** End of the last final epoch, op-time ms: older ops not in it are late. */
  final_end_ms: EpochMs | null;
  final_state_hash: string | null;
  final_signers: number;
  /** Ops refused as late (rule late_op) since this page started. */
  late_ops: number;
  /** Validators seen signing two different checkpoints for one epoch. */
  double_votes: number;
  /** Quorum-signed checkpoints whose state this node computes otherwise (never finalized). */
  state_mismatches: number;
  /** Why the newest signed epoch is not final here yet. */
  waiting: string | null;
}
export interface RejectedOp { op: Hex64; author: Hex64; seq: number; hlc: Hlc; kind: string; code: string; reason: string; }

/** The deterministic state every node folds from the same ops. */
export interface State {
  /** Hex SHA-256 of the network's genesis record: the network's id. */
  genesis: string;
  params: Params;
  accounts: Record<Hex64, Account>;
  channels: Record<string, Channel>;
  tasks: Record<Hex64, Task>;
  teams: Record<Hex64, TeamTask>;
  /** Skill profiles, lowercased. */
  skills: Record<Hex64, string[]>;
  gov: Governance;
  tools: Tools;
  upgrades: Upgrades;
  /** All SP ever minted. */
  minted: number;
  /** SP held in escrow by every task. */
  escrow: number;
  /** Ops applied and rejected by the fold. */
  applied: number;
  rejected: number;
}
/** The configurable parameters (changed by `config_change` proposals). */
export interface Params {
  initial_sp: number; tax_bps: number; task_reputation_milli: number; vote_reputation_milli: number;
  proposal_min_voting_seconds: number; proposal_auto_close_after_seconds: number; validator_set_size: number;
  /** Peers each node aims to keep (governance key; the immune system's remedies raise it). */
  net_target_degree: number;
  /** Fixed by the genesis; no config change reaches them. */
  rules: Rules;
}
/** The network's fixed rules (see docs/PROTOCOL.md, "Who counts"). */
export interface Rules {
  /** Leading zero bits of an admission ticket's hash (0: no ticket). */
  admission_bits: number;
  voting_floor_seconds: number; validator_floor: number;
  /** Counted votes needed, in basis points of every member's weight. */
  quorum_bps: number;
  member_reputation_milli: number; validator_reputation_milli: number; validator_age_seconds: number;
  /** A completed task earns reputation only from this reward up, paid by a member. */
  min_paid_reward: number;
  daily_reputation_cap_milli: number;
  /** Finality epoch length (0: no finality). */
  epoch_seconds: number;
}
export interface Account {
  /** Rule `equivocation_evidence`: the seq at which it was proven to equivocate (its penalty applied), or null. */
  slashed_at_seq: number | null;
  /** Not validator-eligible before this op time (a penalty's ban), 0 if never banned. */
  banned_until_ms: EpochMs;
  balance: number; reputation: Reputation; joined: Hlc;
  /** Listed in the genesis: a member and validator-eligible from the start. */
  founder: boolean;
  /** Reputation credited on op-time day `earned_day` (rule `daily_reputation_cap`). */
  earned_day: number; earned_today_milli: number;
}
/** Reputation in milli-points as of `anchor_ms` (it decays with time), total and per tag. */
export interface Reputation { total: number; tags: Record<string, number>; anchor_ms: EpochMs; }
export interface Channel {
  steward: Hex64 | null; description: string; created: Hlc; treasury: number; members: Hex64[]; dissolved: Hlc | null;
  /** Split or merged away: refuses new tasks, proposals and members. */
  archived: boolean;
  /** The channels a split created, in the order the split listed them. */
  split_into: string[];
  /** The channel a merge moved its tasks and proposals to. */
  merged_into: string | null;
}
export type Funding = "creator" | "treasury";
export type TaskStatus = "open" | "auction_open" | "claimed" | "in_progress" | "completed" | "deleted";
export interface Task {
  id: Hex64; channel: string; owner: Hex64; funding: Funding; schema: "task_v1" | "task_v2";
  title: string; description: string; tags: string[]; required_tools: string[];
  reward: number; escrow: number; status: TaskStatus; assignee: Hex64 | null;
  auction: Auction | null; created: Hlc; updated: Hlc;
}
export interface Auction {
  terms: AuctionTerms;
  bids: Record<Hex64, { amount: number; estimated_days: number; at: Hlc }>;
  status: { status: "open" } | { status: "awarded"; winner: Hex64; amount: number } | { status: "reopened" };
}
export type TeamStatus = "open" | "forming_team" | "in_progress" | "completed" | "deleted";
export interface SubTask {
  title: string; description: string; required_skills: string[]; reward: number; assignee: Hex64 | null; done: boolean;
}
export interface TeamTask {
  id: Hex64; channel: string; owner: Hex64; title: string; description: string; subtasks: SubTask[];
  coordinator_bonus: number; max_team_size: number; coordinator: Hex64 | null; members: Hex64[];
  /** Applicant → skill match (per-mille) when it applied. */
  applicants: Record<Hex64, number>;
  status: TeamStatus; escrow: number; workspace: string | null; created: Hlc; updated: Hlc;
}
export type ProposalStatus = "open" | "closed" | "pending_ratification" | "executed" | "failed";
/** `counted`: a member's vote; other votes are shown and never counted. */
export interface VoteDetail { voter: Hex64; yes: boolean; reputation_milli: number; weight_milli: number; tags_matched: string[]; counted: boolean; }
/** Counted weights; `quorum_weight_milli` of `eligible_weight_milli` (all members) must vote. */
export interface Tally {
  yes_weight_milli: number; no_weight_milli: number; eligible_weight_milli: number; quorum_weight_milli: number;
  outcome: "approved" | "rejected" | "pending" | "no_quorum"; details: VoteDetail[];
  /** The anonymous ballot; its weights (tier 1.0 / 1.5 / 2.0) are in the two weights above too. `by_tier`: tier → [yes, no]. */
  anonymous: AnonymousTally;
}
export interface AnonymousTally {
  total: number; yes: number; no: number; yes_weight_milli: number; no_weight_milli: number;
  by_tier: Record<"novice" | "intermediate" | "expert", [number, number]>;
}
export type Tier = "novice" | "intermediate" | "expert";
/** A proposal's anonymous ballot: rings of voting keys fixed when it opened, votes by key image (no voter named). */
export interface Ballot {
  rings: { tier: Tier; members: Hex64[] }[];
  /** Ring members by identity: the ring each is in (whose public votes must be linked). */
  ring_of: Record<Hex64, number>;
  /** Anonymous votes by key image. */
  anonymous: Record<Hex64, { yes: boolean; ring: number }>;
  /** Key images of ring members that voted publicly. */
  public_images: Hex64[];
}
export interface Proposal {
  id: Hex64; channel: string; proposer: Hex64; kind: ProposalKind; title: string; description: string; tags: string[];
  command: Command | null; created: Hlc;
  /** A close is valid from this op time; votes count up to `deadline_ms`. */
  closable_ms: EpochMs; deadline_ms: EpochMs;
  votes: Record<Hex64, boolean>; status: ProposalStatus; tally: Tally | null; closed: Hlc | null;
  closed_automatically: boolean; validators: Hex64[]; ratifications: Hex64[]; execution: number | null;
  ballot: Ballot;
}
export interface ExecEntry {
  index: number; proposal: Hex64; command: Command; op: Hex64; at: Hlc; ratified_by: Hex64[];
  result: { success: boolean; message: string };
}
export interface Governance {
  proposals: Record<Hex64, Proposal>;
  validators: Hex64[];
  execution_log: ExecEntry[];
  config_version: number;
  /** Schemas installed by `update_schema`, by name. */
  schemas: Record<string, { version: number; definition: string; updated: Hlc }>;
  /** Each identity's voting key (Ristretto, for anonymous votes). */
  voting_keys: Record<Hex64, Hex64>;
}
export type ToolStatus = "active" | "inactive_funding_issue" | "deprecated";
export interface CommonTool {
  tool_id: string; channel: string; description: string; tool_type: ToolType; webhook_url: string;
  monthly_cost_sp: number; status: ToolStatus; acquired: Hlc; paid_until_ms: EpochMs;
  /** The credential, encrypted; its key split among the custodians (`secret.recipients`), a majority of whom rebuild it. */
  secret: SealedSecret; changed: Hlc;
  /** Per task id, the custodians' shares sealed to the task's assignee, by custodian index (rule `tool_grant`). */
  grants: Record<Hex64, Record<string, SealedKey>>;
}
export interface Tools {
  /** Published X25519 public keys (32 bytes each). */
  keys: Record<Hex64, number[]>;
  tools: Record<string, CommonTool>;
  /** SP paid out of treasuries for upkeep. */
  spent: number;
}
export interface Upgrades {
  /** The module in force per policy (absent: the built-in one); faults per module. */
  policies: { active: { vote_weight?: Hex64; auction_score?: Hex64; tax?: Hex64 }; fallbacks: Record<Hex64, number> };
  modules: Record<Hex64, { size: number; assembled_by: Hex64; assembled_at: Hlc }>;
  /** Incomplete modules: module → author → pieces received. */
  pending: Record<Hex64, Record<Hex64, { count: number; received: number[] }>>;
  /** Assemblies whose bytes did not hash to the announced module. */
  corrupt: Record<Hex64, number>;
  history: { policy: Policy; module: Hex64; previous: Hex64; proposal: Hex64; execution: number; at: Hlc }[];
}

// ----------------------------------------------------------------- the API --

/** `window.synapse`. Actions resolve with the op id once the op is stored and
 *  published, and reject with an `Error` saying which rule it would break. */
export interface Synapse {
  // network
  id(): Hex64;
  peers(): Hex64[];
  peerStates(): PeerState[];
  sendHello(text: string): Promise<number>;
  hellos(): Hello[];
  status(): NodeStatus;
  admission(): AdmissionStatus;
  setIceServers(servers: IceServerInit[]): Promise<boolean>;
  stats(): Record<string, number>;
  timings(): Timings;
  closePeer(id: Hex64): Promise<boolean>;
  sendBlob(id: Hex64, len: number): Promise<boolean>;
  pubsubStats(): PubsubStats;
  // the op log
  state(): Snapshot;
  stateHash(): string;
  act(channel: string, body: OpBody): Promise<Hex64>;
  opSeenAt(id: Hex64): number | undefined;
  hasOp(id: Hex64): boolean;
  schemas(): SchemaInfo[];
  validate(name: string, value: unknown): SchemaCheck;
  // channels
  createChannel(name: string, description?: string | null): Promise<Hex64>;
  subscribe(name: string): Promise<Hex64>;
  unsubscribe(name: string): Promise<Hex64>;
  channels(): ChannelRow[];
  // tasks
  createTask(channel: string, spec: TaskSpec): Promise<Hex64>;
  claimTask(task: Hex64): Promise<Hex64>;
  startTask(task: Hex64): Promise<Hex64>;
  completeTask(task: Hex64): Promise<Hex64>;
  deleteTask(task: Hex64): Promise<Hex64>;
  bid(task: Hex64, amount: number, estimated_days: number): Promise<Hex64>;
  closeAuction(task: Hex64): Promise<Hex64>;
  tasks(): Task[];
  // teams
  setSkills(skills: string[]): Promise<Hex64>;
  createTeamTask(channel: string, spec: TeamTaskSpec): Promise<Hex64>;
  claimTeam(task: Hex64): Promise<Hex64>;
  applyTeam(task: Hex64): Promise<Hex64>;
  acceptMember(task: Hex64, applicant: Hex64): Promise<Hex64>;
  teamWaitingFor(task: Hex64): TeamWaitingFor | null;
  completeSubTask(task: Hex64, index: number): Promise<Hex64>;
  // governance
  propose(channel: string, spec: ProposalSpec): Promise<Hex64>;
  vote(proposal: Hex64, yes: boolean): Promise<Hex64>;
  /** Votes without naming this identity (a ring signature over the proposal's ring, carried by a fresh key through the
   * stem phase). Refused when this identity is not in the proposal's rings or already voted on it. Resolves with the
   * carrier op's id as soon as it is sent; `hasOp(id)` turns true when it comes back by gossip and is folded. */
  voteAnonymously(proposal: Hex64, yes: boolean): Promise<Hex64>;
  /** Tests only (`?debug_unchecked=1` pages): signs a second, different op at this node's head seq (an equivocation). */
  debugEquivocate(): Hex64;
  /** The immune system from this node: vital signs against targets, open remedy proposals (tagged `immune_system`). */
  health(): HealthReport;
  /** Replaces this node's health targets. */
  setHealthTargets(targets: HealthTargets): void;
  closeProposal(proposal: Hex64): Promise<Hex64>;
  ratify(proposal: Hex64): Promise<Hex64>;
  expireProposal(proposal: Hex64): Promise<Hex64>;
  proposals(): ProposalRow[];
  // economy
  accounts(): AccountRow[];
  economy(): EconomyTotals;
  // tools
  publishKey(): Promise<Hex64>;
  proposeTool(channel: string, spec: ToolSpec): Promise<Hex64>;
  useTool(tool: string, task: Hex64): Promise<string | { status: number }>;
  toolUpkeep(tool_id: string): Promise<Hex64>;
  tools(): ToolRow[];
  // upgrades
  exampleModules(): ExampleModule[];
  exampleModule(name: string): Uint8Array | undefined;
  publishModule(bytes: Uint8Array): Promise<PublishedModule>;
  dryRunModule(bytes: Uint8Array, policy: Policy): DryRun;
  proposeUpgrade(channel: string, spec: UpgradeSpec): Promise<Hex64>;
  // the optional agent
  /** Configures the agent (off by default); throws on settings looser than the guardrails. */
  agentConfigure(config: AgentConfig): void;
  agent(): AgentStatus;
  /** Runs a cycle now; resolves once it ends. */
  agentRun(): Promise<AgentStatus>;
  /** Checks pending suggestion `id` against the guardrails again, then signs it. */
  agentApprove(id: number): Promise<Hex64>;
  agentDismiss(id: number): void;
  /** Drafts a policy module through the endpoint, compiles and dry-runs it; publishes nothing. */
  agentDraftModule(description: string, policy: Policy): Promise<AgentDraft>;
  // events
  on(event: SynapseEvent, callback: () => void): () => void;
  off(event: SynapseEvent, callback: () => void): boolean;
  onChange(callback: () => void): void;
  // identity
  exportIdentity(): Promise<string>;
  importIdentity(text: string, options?: ImportOptions | null): Promise<Hex64>;
}

declare global {
  interface Window { synapse?: Synapse; }
}

//! Team (composite) tasks: create one with sub-tasks, coordinate it, apply
//! with a skill profile, accept applicants, complete sub-tasks.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use crate::fmt::{list, sp, who};
use leptos::prelude::*;
use node_wasm::core::teams::TeamStatus;
use node_wasm::service::Domain;
use node_wasm::service::teams::{self as service, SubTaskSpec, TeamTaskSpec};

/// Parses sub-task lines `title | skill, skill | reward`.
fn parse_subtasks(text: &str) -> Result<Vec<SubTaskSpec>, String> {
    let mut out = vec![];
    for (i, line) in text.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        let title = parts.first().copied().unwrap_or_default().to_string();
        let skills = parts.get(1).map(|s| list(s)).unwrap_or_default();
        let reward = sp(parts.get(2).copied().unwrap_or_default(), &format!("the reward of sub-task {}", i + 1))?;
        out.push(SubTaskSpec { title, description: String::new(), required_skills: skills, reward });
    }
    if out.is_empty() {
        return Err("add at least one sub-task line: title | skills | reward".into());
    }
    Ok(out)
}

#[component]
pub fn TeamsSection() -> impl IntoView {
    let c = ctx();
    let teams = Memo::new(move |_| c.read(Domain::Tasks, service::live));
    let my_skills = Memo::new(move |_| c.read(Domain::Tasks, |st| service::skills_of(st, &c.me)));
    let skills = RwSignal::new(String::new());
    let set_skills = Action::new();
    let channel = RwSignal::new(String::new());
    let title = RwSignal::new(String::new());
    let subtasks = RwSignal::new(String::new());
    let bonus = RwSignal::new(String::new());
    let size = RwSignal::new("4".to_string());
    let create = Action::new();
    let act = Action::new();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (ch, ti, su, bo, si) = (
            channel.get_untracked(),
            title.get_untracked(),
            subtasks.get_untracked(),
            bonus.get_untracked(),
            size.get_untracked(),
        );
        create.run(move || {
            let spec = TeamTaskSpec {
                title: ti.trim().to_string(),
                description: String::new(),
                subtasks: parse_subtasks(&su)?,
                coordinator_bonus: sp(&bo, "the coordinator bonus")?,
                max_team_size: si.trim().parse().map_err(|_| "team size must be a number from 2 to 32".to_string())?,
            };
            c.run(|_| service::create(ch.trim(), spec))?;
            Ok("Team task created; its budget is in escrow.".into())
        });
    };
    view! {
        <section class="card" aria-labelledby="h-teams">
            <h2 id="h-teams">"Teams " <span class="count">{move || teams.with(Vec::len)}</span></h2>
            <form class="row" on:submit=move |ev: leptos::ev::SubmitEvent| {
                ev.prevent_default();
                let s = list(&skills.get_untracked());
                set_skills.run(move || { c.run(|_| Ok(service::set_skills(s)))?; Ok("Skill profile saved.".into()) });
            }>
                <label for="skills" class="grow">"Your skills " <span class="muted">{move || format!("(now: {})", my_skills.get())}</span></label>
                <input id="skills" type="text" placeholder="rust, design" prop:value=move || skills.get() on:input=move |ev| skills.set(event_target_value(&ev)) />
                <Submit action=set_skills label="Save skills" />
            </form>
            <Feedback action=set_skills />
            <details>
                <summary>"New team task"</summary>
                <form id="team-form" class="fields" on:submit=submit>
                    <Field label="Channel" id="team-channel" value=channel required=true list="my-channels" />
                    <Field label="Title" id="team-title" value=title required=true />
                    <Field label="Coordinator bonus (SP)" id="team-bonus" value=bonus numeric=true />
                    <Field label="Max team size" id="team-size" value=size numeric=true />
                    <label class="wide">"Sub-tasks, one per line: title | skills | reward"
                        <textarea id="team-subtasks" rows="3" prop:value=move || subtasks.get() on:input=move |ev| subtasks.set(event_target_value(&ev))></textarea></label>
                    <Submit action=create label="Create team task" />
                </form>
                <Feedback action=create />
            </details>
            <Feedback action=act id="team-feedback" />
            <ul class="plain teams" id="teams">
                {move || teams.get().into_iter().map(|t| {
                    let me = c.me;
                    let id = t.id;
                    let forming = t.status == TeamStatus::FormingTeam;
                    let coordinator = t.coordinator == Some(me);
                    let applied = t.applicants.contains_key(&me) || t.members.contains(&me);
                    view! {
                        <li class="team" data-team=id.to_text()>
                            <strong>{t.title.clone()}</strong>
                            <span class="muted">{format!(" · {} · {} · {} SP in escrow · coordinator {}",
                                t.channel, t.status.name().replace('_', " "), t.escrow,
                                t.coordinator.map(|x| who(&x, &me)).unwrap_or_else(|| "none yet".into()))}</span>
                            <div class="actions">
                                {(t.status == TeamStatus::Open).then(|| view! {
                                    <button type="button" class="small" on:click=move |_| act.run(move || { c.run(|st| service::claim(st, id))?; Ok("You coordinate this team.".into()) })>"Coordinate"</button>
                                })}
                                {(forming && !coordinator && !applied).then(|| view! {
                                    <button type="button" class="small" on:click=move |_| act.run(move || { c.run(|st| service::apply(st, id))?; Ok("Applied.".into()) })>"Apply"</button>
                                })}
                            </div>
                            <p class="muted">"Members: " {t.members.iter().map(|m| who(m, &me)).collect::<Vec<_>>().join(", ")}</p>
                            {forming.then(|| c.peek_state(|st| service::waiting_for(st, id))).flatten().map(|w| view! {
                                <p class="muted team-waiting">{w.sentence}</p>
                            })}
                            {(!t.applicants.is_empty()).then(|| view! {
                                <p>"Applicants: "
                                    {t.applicants.iter().map(|(a, m)| {
                                        let a = *a;
                                        view! {
                                            <span class="applicant"><code>{who(&a, &me)}</code> {format!(" match {}‰ ", m)}
                                                {(forming && coordinator).then(|| view! {
                                                    <button type="button" class="small" on:click=move |_| act.run(move || { c.run(|st| service::accept(st, id, a))?; Ok("Applicant accepted.".into()) })>"Accept"</button>
                                                })}
                                            </span>
                                        }
                                    }).collect_view()}
                                </p>
                            })}
                            <ol class="subtasks">
                                {t.subtasks.iter().enumerate().map(|(i, s)| {
                                    let index = i as u32;
                                    let mine = s.assignee == Some(me) && !s.done && t.status == TeamStatus::InProgress;
                                    view! {
                                        <li>
                                            {s.title.clone()} <span class="muted">{format!(" · {} SP · {} · {}", s.reward,
                                                if s.required_skills.is_empty() { "any skills".to_string() } else { s.required_skills.join(", ") },
                                                s.assignee.map(|a| who(&a, &me)).unwrap_or_else(|| "unassigned".into()))}</span>
                                            {s.done.then(|| view! { <span class="badge st-completed">"done"</span> })}
                                            {mine.then(|| view! {
                                                <button type="button" class="small" on:click=move |_| act.run(move || { c.run(|st| service::complete_subtask(st, id, index))?; Ok("Sub-task done.".into()) })>"Mark done"</button>
                                            })}
                                        </li>
                                    }
                                }).collect_view()}
                            </ol>
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}

//! The Channels view: every channel with its steward, members and treasury;
//! create one; join or leave.

use crate::action::{Action, Feedback, Submit};
use crate::ctx::ctx;
use crate::field::Field;
use crate::fmt::who;
use leptos::prelude::*;
use node_wasm::service::{Domain, channels};

#[component]
pub fn ChannelsView() -> impl IntoView {
    let c = ctx();
    let rows = Memo::new(move |_| c.read_all(&[Domain::Channels, Domain::Economy], |st| channels::list(st, &c.me)));
    let name = RwSignal::new(String::new());
    let desc = RwSignal::new(String::new());
    let create = Action::new();
    let on_create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, d) = (name.get_untracked().trim().to_string(), desc.get_untracked());
        create.run(move || {
            c.run(|_| channels::create(&n, &d))?;
            name.set(String::new());
            desc.set(String::new());
            Ok(format!("Channel {n} created; you are its steward."))
        });
    };
    let membership = Action::new();

    view! {
        <section class="card" aria-labelledby="h-new-channel">
            <h2 id="h-new-channel">"New channel"</h2>
            <form id="channel-form" on:submit=on_create class="fields">
                <Field label="Name" id="channel-name" value=name required=true />
                <Field label="Description" id="channel-description" value=desc />
                <Submit action=create label="Create channel" id="channel-create" />
            </form>
            <Feedback action=create id="channel-feedback" />
        </section>
        <section class="card" aria-labelledby="h-channels">
            <h2 id="h-channels">"Channels " <span class="count">{move || rows.with(Vec::len)}</span></h2>
            <Feedback action=membership id="membership-feedback" />
            <div class="scroll-x"><table id="channels">
                <thead><tr><th scope="col">"Channel"</th><th scope="col">"Steward"</th><th scope="col">"Members"</th><th scope="col">"Treasury"</th><th scope="col">"You"</th></tr></thead>
                <tbody>
                    <For each=move || rows.get() key=|r| (r.name.clone(), r.joined, r.members, r.treasury, r.dissolved, r.archived.clone()) let:r>
                        {
                            let name = r.name.clone();
                            let joined = r.joined;
                            let toggle = move |_| {
                                let n = name.clone();
                                membership.run(move || {
                                    if joined {
                                        c.run(|_| channels::unsubscribe(&n))?;
                                        Ok(format!("You left {n}."))
                                    } else {
                                        c.run(|_| channels::subscribe(&n))?;
                                        Ok(format!("You joined {n}."))
                                    }
                                });
                            };
                            view! {
                                <tr data-channel=r.name.clone()>
                                    <td><strong>{r.name.clone()}</strong> <span class="muted">" " {r.description.clone()}</span>
                                        {r.dissolved.then(|| view! { <span class="badge">"dissolved"</span> })}
                                        {r.archived.clone().map(|to| view! { <span class="badge archived" title="archived: no new tasks, proposals or members">"archived: " {to}</span> })}</td>
                                    <td>{r.steward.map(|s| who(&s, &c.me)).unwrap_or_else(|| "–".into())}</td>
                                    <td class="num">{r.members}</td>
                                    <td class="num">{r.treasury} " SP"</td>
                                    <td>
                                        <button type="button" class=if joined { "secondary leave" } else { "join" }
                                            disabled=move || membership.pending()
                                            aria-label=format!("{} {}", if joined { "Leave" } else { "Join" }, r.name)
                                            on:click=toggle>
                                            {if joined { "Leave" } else { "Join" }}
                                        </button>
                                    </td>
                                </tr>
                            }
                        }
                    </For>
                </tbody>
            </table></div>
        </section>
    }
}

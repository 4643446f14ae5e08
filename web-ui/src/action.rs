//! Running a user action and showing what happened next to it.
//!
//! Every form and button owns an [`Action`]: it is marked pending (the
//! button is disabled and says so) before the work runs, and afterwards it
//! holds either a short confirmation or the core's sentence saying why the
//! op was refused. [`Feedback`] renders it in plain words, as a live region
//! so screen readers announce it.

use leptos::prelude::*;
use std::time::Duration;

/// What the last run of an action did.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Status {
    #[default]
    Idle,
    Pending,
    Done(String),
    Failed(String),
}

/// One action's state (`Copy`, so views and handlers share it freely).
#[derive(Clone, Copy)]
pub struct Action {
    pub status: RwSignal<Status>,
}

impl Default for Action {
    fn default() -> Self {
        Action::new()
    }
}

impl Action {
    pub fn new() -> Action {
        Action { status: RwSignal::new(Status::Idle) }
    }

    pub fn pending(&self) -> bool {
        self.status.with(|s| matches!(s, Status::Pending))
    }

    /// Marks the action pending, lets the browser paint that, then runs
    /// `work` (signing an op takes a few ms; a webhook call much longer).
    pub fn run(&self, work: impl FnOnce() -> Result<String, String> + 'static) {
        if self.pending() {
            return;
        }
        let status = self.status;
        status.set(Status::Pending);
        set_timeout(
            move || {
                status.set(match work() {
                    Ok(m) => Status::Done(m),
                    Err(e) => Status::Failed(e),
                })
            },
            Duration::from_millis(0),
        );
    }

    /// Like [`Action::run`] for asynchronous work.
    pub fn run_async<F>(&self, work: F)
    where
        F: std::future::Future<Output = Result<String, String>> + 'static,
    {
        if self.pending() {
            return;
        }
        let status = self.status;
        status.set(Status::Pending);
        wasm_bindgen_futures::spawn_local(async move {
            let r = work.await;
            status.set(match r {
                Ok(m) => Status::Done(m),
                Err(e) => Status::Failed(e),
            });
        });
    }
}

/// The outcome line of an action; `id` lets tests find it.
#[component]
pub fn Feedback(action: Action, #[prop(optional, into)] id: Option<String>) -> impl IntoView {
    view! {
        <p class="feedback" id=id role="status" aria-live="polite">
            {move || match action.status.get() {
                Status::Idle => ().into_any(),
                Status::Pending => view! { <span class="pending">"Working…"</span> }.into_any(),
                Status::Done(m) => view! { <span class="ok">{m}</span> }.into_any(),
                Status::Failed(e) => view! { <span class="error">"Refused: " {e}</span> }.into_any(),
            }}
        </p>
    }
}

/// A submit button that is disabled and relabelled while its action runs.
#[component]
pub fn Submit(
    action: Action,
    #[prop(into)] label: String,
    #[prop(optional, into)] id: Option<String>,
) -> impl IntoView {
    view! {
        <button type="submit" id=id disabled=move || action.pending() aria-busy=move || action.pending().to_string()>
            {move || if action.pending() { "Working…".to_string() } else { label.clone() }}
        </button>
    }
}

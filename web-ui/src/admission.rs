//! A new identity's admission (rule `admission_ticket`): while the page
//! searches for its ticket or publishes it, a bar above the views shows the
//! proof of work's progress and about how long it still needs (from the
//! measured hash rate, `service::admission::progress_sentence`); it
//! disappears once the identity is admitted.

use crate::ctx::ctx;
use leptos::prelude::*;
use node_wasm::service::Domain;
use node_wasm::service::admission::progress_sentence;

/// The progress bar, shown while computing or publishing.
#[component]
pub fn AdmissionBar() -> impl IntoView {
    let c = ctx();
    move || {
        // Phase and percentage changes come as network changes; the clock
        // refreshes the time left in between.
        c.track(Domain::Network);
        c.now.track();
        let s = c.ledger.with_value(node_wasm::runtime::admission::status);
        progress_sentence(&s).map(|text| {
            let percent = s.percent;
            view! {
                <div class="admission" id="admission" role="status">
                    <p>{text}</p>
                    <progress max="100" value=percent.to_string()
                        aria-label="Admission proof of work">{format!("{percent} %")}</progress>
                </div>
            }
        })
    }
}

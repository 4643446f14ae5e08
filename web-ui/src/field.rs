//! A labelled text input bound to a signal.
//!
//! Why a component: every `view!` element with its own closures is compiled
//! into its own render code; the app has ~30 inputs, and one shared
//! (type-erased) implementation keeps the wasm smaller than 30 copies.

use leptos::prelude::*;

/// `<label>{label} <input id=… type=… …></label>`, the input's value kept in
/// `value`.
#[component]
pub fn Field(
    #[prop(into)] label: String,
    #[prop(into)] id: String,
    value: RwSignal<String>,
    /// `text` (default), `url` or `password`.
    #[prop(optional)]
    kind: Option<&'static str>,
    /// Whole numbers only (numeric keyboard on phones).
    #[prop(optional)]
    numeric: bool,
    #[prop(optional)] required: bool,
    /// Spans the whole form row.
    #[prop(optional)]
    wide: bool,
    #[prop(optional, into)] placeholder: Option<String>,
    /// Id of a `<datalist>` of suggestions.
    #[prop(optional, into)]
    list: Option<String>,
) -> AnyView {
    view! {
        <label class=if wide { "wide" } else { "" }>
            {label}
            <input id=id type=kind.unwrap_or("text") required=required placeholder=placeholder list=list
                inputmode=numeric.then_some("numeric") autocomplete=(kind == Some("password")).then_some("off")
                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
        </label>
    }
    .into_any()
}

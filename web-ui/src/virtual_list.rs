//! A virtualized list: fixed row height, one scroll container, and only the
//! rows in view (plus an overscan margin) in the DOM.
//!
//! Why: the tasks board must stay responsive with 10,000 tasks. Rendering
//! them all would create ~100,000 DOM nodes and make every change re-lay
//! out the page. Here the window of visible rows is computed from
//! `scrollTop` in a memo that only changes when the first visible row
//! changes, so scrolling within a row does no work at all; two spacer
//! elements stand in for the rows above and below, keeping the scrollbar
//! true to the full list.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

/// Rows rendered above and below the visible ones.
const OVERSCAN: usize = 6;

/// The rows `[start, end)` to render for a viewport.
pub fn window(scroll_top: f64, viewport: f64, row_height: f64, len: usize) -> (usize, usize) {
    if len == 0 || row_height <= 0.0 {
        return (0, 0);
    }
    let first = (scroll_top.max(0.0) / row_height).floor() as usize;
    let visible = (viewport.max(row_height) / row_height).ceil() as usize + 1;
    let start = first.saturating_sub(OVERSCAN).min(len);
    let end = (first + visible + OVERSCAN).min(len);
    (start, end.max(start))
}

/// Renders `items` as fixed-height rows inside a scroll container of
/// at most `height_px` (shrunk to fit short lists; capped to 70 % of the
/// viewport height by CSS).
#[component]
pub fn VirtualList<T, F, V>(
    /// The full list (only a window of it is rendered).
    #[prop(into)]
    items: Signal<Vec<T>>,
    /// Row height in CSS pixels; rows must not be taller.
    row_height: f64,
    height_px: f64,
    /// Renders one row.
    render: F,
    /// The scroll container's id.
    #[prop(into)]
    id: String,
    /// Shown when the list is empty.
    #[prop(into)]
    empty: String,
) -> impl IntoView
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let scroll_top = RwSignal::new(0.0f64);
    let viewport = RwSignal::new(height_px);
    let len = Memo::new(move |_| items.with(Vec::len));
    let range = Memo::new(move |_| window(scroll_top.get(), viewport.get(), row_height, len.get()));
    let on_scroll = move |ev: leptos::ev::Event| {
        if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::Element>().ok()) {
            viewport.set(el.client_height() as f64);
            scroll_top.set(el.scroll_top() as f64);
        }
    };
    view! {
        <div class="vlist" id=id tabindex="0" role="list"
            style:height=move || format!("{}px", (len.get() as f64 * row_height + 2.0).clamp(row_height, height_px))
            on:scroll=on_scroll>
            <div class="spacer" style:height=move || format!("{}px", range.get().0 as f64 * row_height)></div>
            {move || {
                let (start, end) = range.get();
                let render = render.clone();
                let rows: Vec<T> = items.with(|v| v.get(start..end).map(<[T]>::to_vec).unwrap_or_default());
                rows.into_iter()
                    .map(move |item| view! { <div class="vrow" role="listitem" style=format!("height:{row_height}px")>{render(item)}</div> })
                    .collect_view()
            }}
            <div class="spacer" style:height=move || format!("{}px", (len.get() - range.get().1.min(len.get())) as f64 * row_height)></div>
            {
                let empty = empty.clone();
                move || (len.get() == 0).then(|| view! { <p class="muted empty">{empty.clone()}</p> })
            }
        </div>
    }
}

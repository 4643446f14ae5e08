//! Driving the page's UI like a user: hash routes, typing into labelled
//! inputs, clicking buttons, reading what the page shows, screenshots.

use crate::browser::NodePage;
use crate::paths::workspace_dir;
use crate::wait::wait_until;
use fantoccini::Locator;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Default wait for something to appear on the page.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// What a screenshot looks like, for "not blank" checks.
#[derive(Debug, Clone, Copy)]
pub struct PixelStats {
    pub width: u32,
    pub height: u32,
    /// Distinct colours (RGB, counted up to 4096).
    pub colours: usize,
    /// Share of pixels that differ from the most common colour.
    pub foreground: f64,
}

/// Decodes a PNG and measures it. Panics if it is not a PNG.
pub fn pixel_stats(png_bytes: &[u8]) -> PixelStats {
    let decoder = png::Decoder::new(png_bytes);
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("a PNG frame");
    let channels = info.color_type.samples();
    let data = &buf[..info.buffer_size()];
    let mut counts: std::collections::HashMap<[u8; 3], usize> = std::collections::HashMap::new();
    let mut total = 0usize;
    for px in data.chunks_exact(channels) {
        let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0], px[0], px[0]] };
        if counts.len() < 4096 || counts.contains_key(&rgb) {
            *counts.entry(rgb).or_default() += 1;
        }
        total += 1;
    }
    let top = counts.values().copied().max().unwrap_or(0);
    PixelStats {
        width: info.width,
        height: info.height,
        colours: counts.len(),
        foreground: 1.0 - top as f64 / total.max(1) as f64,
    }
}

/// Where screenshots go: `$CARGO_TARGET_DIR/e2e-screenshots`, default
/// `<workspace>/target/e2e-screenshots`.
pub fn screenshot_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) if !t.is_empty() => PathBuf::from(t),
        _ => workspace_dir().join("target"),
    };
    let dir = target.join("e2e-screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

impl NodePage {
    /// Shows view `route` (`#network`, `#tasks`, ...) and waits until it is
    /// mounted.
    pub async fn show(&self, route: &str) {
        let _: bool = self.call("location.hash = '#' + arguments[0]; return true;", vec![json!(route)]).await;
        let what = format!("{}: view {route} to show", self.label());
        wait_until(UI_TIMEOUT, &what, async || {
            let v: Option<String> =
                self.eval("document.querySelector('main') && document.querySelector('main').dataset.view").await;
            if v.as_deref() == Some(route) { Ok(()) } else { Err(v) }
        })
        .await;
    }

    /// Waits until `css` matches an element and returns its text (or
    /// `None` while absent).
    pub async fn text_of(&self, css: &str) -> Option<String> {
        self.call("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;", vec![json!(css)])
            .await
    }

    /// Waits until the text of `css` satisfies `ok`, and returns it.
    pub async fn wait_text(&self, css: &str, ok: impl Fn(&str) -> bool) -> String {
        let what = format!("{}: text of {css}", self.label());
        wait_until(UI_TIMEOUT, &what, async || match self.text_of(css).await {
            Some(t) if ok(&t) => Ok(t),
            other => Err(other),
        })
        .await
    }

    /// Clears the input `css` and types `text` into it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.wait_element(css).await;
        el.clear().await.unwrap_or_else(|e| panic!("{}: cannot clear {css}: {e}", self.label()));
        el.send_keys(text).await.unwrap_or_else(|e| panic!("{}: cannot type into {css}: {e}", self.label()));
    }

    /// Chooses `value` in the `<select>` `css` (as a user would, firing
    /// `change`).
    pub async fn choose(&self, css: &str, value: &str) {
        let el = self.wait_element(css).await;
        el.select_by_value(value)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot choose {value} in {css}: {e}", self.label()));
    }

    /// Waits until `css` is present and enabled, then clicks it.
    pub async fn click_on(&self, css: &str) {
        let what = format!("{}: {css} to be clickable", self.label());
        let el = wait_until(UI_TIMEOUT, &what, async || match self.client().find(Locator::Css(css)).await {
            Ok(el) if el.is_enabled().await.unwrap_or(false) => Ok(el),
            Ok(_) => Err("disabled".to_string()),
            Err(e) => Err(e.to_string()),
        })
        .await;
        el.click().await.unwrap_or_else(|e| panic!("{}: cannot click {css}: {e}", self.label()));
    }

    async fn wait_element(&self, css: &str) -> fantoccini::elements::Element {
        let what = format!("{}: {css} to appear", self.label());
        wait_until(UI_TIMEOUT, &what, async || self.client().find(Locator::Css(css)).await.map_err(|e| e.to_string()))
            .await
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        self.client().screenshot().await.unwrap_or_else(|e| panic!("{}: screenshot failed: {e}", self.label()))
    }

    /// Resizes the browser window (CSS pixels).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client()
            .set_window_size(width, height)
            .await
            .unwrap_or_else(|e| panic!("{}: cannot resize to {width}x{height}: {e}", self.label()));
    }
}

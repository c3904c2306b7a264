#![recursion_limit = "256"]
//! The GridShare dashboard, shared by the server and the browser.
//!
//! - The server (feature `ssr`, in `gridshare-web`) loads a page's data, renders the page to
//!   HTML with [`render`], and puts the data in the document as JSON.
//! - The browser (feature `hydrate`, built for wasm32 by `scripts/build-ui.sh`) reads that JSON
//!   back and hydrates the same components ([`hydrate`]): the page works before the script
//!   arrives, and its controls come alive after.
//!
//! Charts are SVG computed in [`chart`]; numbers are written by [`format`].

pub mod chart;
pub mod format;
pub mod pages;

pub use pages::Page;

/// The element the pages render into.
pub const ROOT_ID: &str = "app";
/// The element holding the page's data as JSON.
pub const DATA_ID: &str = "gs-page";
/// Where the browser part is served: `/pkg/gridshare_ui.js` and `/pkg/gridshare_ui_bg.wasm`.
pub const PKG_PATH: &str = "/pkg";

/// The stylesheet, inlined in every page.
pub const STYLE: &str = include_str!("style.css");

/// A whole HTML document for `page`. `hydrate`: include the script that hydrates it (leave it
/// out when the browser part is not built: the page still works, without its live controls).
#[cfg(feature = "ssr")]
pub fn render(page: &Page, hydrate: bool) -> String {
    use leptos::prelude::*;
    let owner = Owner::new_root(Some(std::sync::Arc::new(hydration_context::SsrSharedContext::new())));
    let body = owner.with(|| pages::view(page.clone()).to_html());
    let data = serde_json::to_string(page)
        .unwrap_or_else(|_| "null".into())
        .replace("</", "<\\/");
    let title = escape(&page.title());
    // a page that changes on its own reloads itself, unless its script is there to update it
    // in place (then only with scripting off)
    let refresh = page
        .refresh_seconds()
        .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
        .map(|m| {
            if hydrate {
                format!("<noscript>{m}</noscript>")
            } else {
                m
            }
        })
        .unwrap_or_default();
    let script = if hydrate {
        format!(
            "<script type=\"module\">import init, {{ hydrate }} from '{PKG_PATH}/gridshare_ui.js';\
             init({{ module_or_path: '{PKG_PATH}/gridshare_ui_bg.wasm' }}).then(() => hydrate());</script>"
        )
    } else {
        String::new()
    };
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title>{refresh}<link rel=\"icon\" href=\"data:,\"><style>{STYLE}</style></head>\
         <body><div id=\"{ROOT_ID}\">{body}</div>\
         <script id=\"{DATA_ID}\" type=\"application/json\">{data}</script>{script}</body></html>"
    )
}

#[cfg(feature = "ssr")]
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The browser's entry point: reads the page's data and hydrates the server's HTML.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    use wasm_bindgen::JsCast;
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let page: Option<Page> = document
        .get_element_by_id(DATA_ID)
        .and_then(|e| e.text_content())
        .and_then(|t| serde_json::from_str(&t).ok());
    let root = document
        .get_element_by_id(ROOT_ID)
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    match (page, root) {
        (Some(page), Some(root)) => {
            leptos::mount::hydrate_from(root.clone(), move || pages::view(page)).forget();
            // for people and tests: the controls are live from here on
            let _ = root.set_attribute("data-hydrated", "true");
        }
        _ => web_sys::console::warn_1(&"GridShare: no page data to hydrate".into()),
    }
}

//! What every page shares: who is logged in, the header and the last action's result, the login
//! and error pages, reading prices as people type them, and following the server from the browser.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::MicroPerKwh;

use crate::format::price;

/// Who is logged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The participant they act for.
    pub participant: u64,
    /// The participant's name.
    pub name: String,
    /// homeowner, installer, operator, trader or admin.
    pub role: String,
}

/// The result of the last action, shown on top of the page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// It worked.
    pub ok: bool,
    /// What happened.
    pub text: String,
}

/// The login form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginData {
    /// The name tried, to fill in again.
    pub username: String,
    /// Why the last try failed.
    pub error: Option<String>,
}

/// Something went wrong; said so a person can act on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorData {
    /// Logged in, if so.
    pub session: Option<Session>,
    /// HTTP status.
    pub status: u16,
    /// Short title.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
}

#[component]
pub(super) fn Header(session: Option<Session>) -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/">"GridShare"</a>
            {session.map(|s| view! {
                <nav>
                    <span class="who">{s.name.clone()} " · " {s.role.clone()}</span>
                    <form method="post" action="/logout"><button class="link" type="submit">"Log out"</button></form>
                </nav>
            })}
        </header>
    }
}

/// The last action's result: a status, or an alert.
#[component]
pub(super) fn FlashLine(flash: Option<Flash>) -> impl IntoView {
    flash.map(|f| {
        view! {
            <p class=if f.ok { "ok" } else { "error" } role=if f.ok { "status" } else { "alert" }>{f.text}</p>
        }
    })
}

#[component]
pub(super) fn LoginPage(data: LoginData) -> impl IntoView {
    view! {
        <Header session=None/>
        <main class="narrow">
            <h1>"Log in"</h1>
            <p class="muted">"Homeowners, installers, grid operators and traders log in here."</p>
            {data.error.map(|e| view! { <p class="error" role="alert">{e}</p> })}
            <form method="post" action="/login" class="card form">
                <label>"User name" <input name="username" autocomplete="username" required value=data.username/></label>
                <label>"Password" <input name="password" type="password" autocomplete="current-password" required/></label>
                <button type="submit">"Log in"</button>
            </form>
        </main>
    }
}

#[component]
pub(super) fn ErrorPage(data: ErrorData) -> impl IntoView {
    view! {
        <Header session=data.session.clone()/>
        <main class="narrow">
            <h1>{data.title.clone()}</h1>
            <p class="error" role="alert" data-status=data.status>{data.message.clone()}</p>
            <p><a href="/">"Back to my dashboard"</a></p>
        </main>
    }
}

/// A time in ms (market time) as `25 Nov 10:15`.
pub(super) fn at_ms(ms: i64) -> String {
    crate::format::when_ms(ms)
}

/// A signal holding `data` that, in the browser, follows the server while `live(data)`: polls
/// `url(data)` every `every_ms` (at most `tries` times) and takes each answer, until one is no
/// longer live.
pub(super) fn followed<T>(
    data: T,
    url: impl Fn(&T) -> String + 'static,
    every_ms: i32,
    tries: u32,
    live: fn(&T) -> bool,
) -> ReadSignal<T>
where
    T: Clone + serde::de::DeserializeOwned + Send + Sync + 'static,
{
    let (value, set_value) = signal(data);
    #[cfg(feature = "hydrate")]
    Effect::new(move |_| {
        let v = value.get_untracked();
        if live(&v) {
            poll_json(url(&v), every_ms, tries, move |json| {
                let Ok(next) = serde_json::from_value::<T>(json) else {
                    return false;
                };
                let done = !live(&next);
                set_value.set(next);
                done
            });
        }
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_value, url, every_ms, tries, live);
    value
}

/// Polls `url` (GET, JSON, with the session cookie) every `every_ms` until `on` says it is done
/// or `tries` polls have gone.
#[cfg(feature = "hydrate")]
pub(super) fn poll_json(url: String, every_ms: i32, tries: u32, on: impl FnMut(serde_json::Value) -> bool + 'static) {
    use std::cell::{Cell, RefCell};
    use std::rc::Rc;
    use wasm_bindgen::JsCast;
    use wasm_bindgen::closure::Closure;
    let Some(window) = web_sys::window() else { return };
    let left = Rc::new(Cell::new(tries));
    let handle = Rc::new(Cell::new(0));
    let on = Rc::new(RefCell::new(on));
    let (left_t, handle_t, window_t) = (left.clone(), handle.clone(), window.clone());
    let tick = Closure::<dyn FnMut()>::new(move || {
        if left_t.get() == 0 {
            window_t.clear_interval_with_handle(handle_t.get());
            return;
        }
        left_t.set(left_t.get() - 1);
        let Ok(xhr) = web_sys::XmlHttpRequest::new() else {
            return;
        };
        if xhr.open_with_async("GET", &url, true).is_err() {
            return;
        }
        let (xhr_l, on_l, left_l) = (xhr.clone(), on.clone(), left_t.clone());
        let onload = Closure::once_into_js(move || {
            if xhr_l.status() != Ok(200) {
                return;
            }
            let Ok(Some(text)) = xhr_l.response_text() else { return };
            let Ok(v) = serde_json::from_str(&text) else { return };
            if (on_l.borrow_mut())(v) {
                left_l.set(0);
            }
        });
        xhr.set_onload(Some(onload.unchecked_ref()));
        let _ = xhr.send();
    });
    if let Ok(h) =
        window.set_interval_with_callback_and_timeout_and_arguments_0(tick.as_ref().unchecked_ref(), every_ms)
    {
        handle.set(h);
    }
    // the timer lives until it clears itself
    tick.forget();
}

/// Parses a price typed in €/kWh (`0.123`, `0,123`) into µ/kWh, checking it against the tick.
pub fn parse_price(text: &str, tick: MicroPerKwh) -> Result<MicroPerKwh, String> {
    let tick = tick.0;
    let t = text.trim().replace(',', ".");
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    let negative = whole.starts_with('-');
    let whole = whole.trim_start_matches('-');
    if whole.is_empty() && frac.is_empty() {
        return Err("give a price in € per kWh, e.g. 0.120".into());
    }
    if !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) || frac.len() > 6 {
        return Err(format!("{text:?} is not a price in € per kWh (e.g. 0.120)"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "the price is too large".to_owned())?
    };
    let micro = whole
        .checked_mul(1_000_000)
        .and_then(|w| w.checked_add(format!("{frac:0<6}").parse::<i64>().ok()?))
        .ok_or_else(|| "the price is too large".to_owned())?;
    let micro = if negative { -micro } else { micro };
    if tick > 0 && micro % tick != 0 {
        return Err(format!("prices go in steps of {}", price(MicroPerKwh(tick))));
    }
    Ok(MicroPerKwh(micro))
}

/// A gateway's bond state in words, as the pages show it.
pub fn bond_words(state: Option<&str>) -> &'static str {
    match state {
        Some("bonded") => "bonded",
        Some("unbonded") => "below the minimum bond: earns no uptime or solar rewards",
        Some("not_required") => "no bond required yet",
        _ => "not read from chain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_as_people_type_them() {
        assert_eq!(parse_price("0.120", MicroPerKwh(1_000)), Ok(MicroPerKwh(120_000)));
        assert_eq!(parse_price(" 0,5 ", MicroPerKwh(1_000)), Ok(MicroPerKwh(500_000)));
        assert_eq!(parse_price("1", MicroPerKwh(1_000)), Ok(MicroPerKwh(1_000_000)));
        assert_eq!(parse_price("-0.05", MicroPerKwh(1_000)), Ok(MicroPerKwh(-50_000)));
        assert!(
            parse_price("0.1234", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("steps of €0.001/kWh")
        );
        assert!(
            parse_price("abc", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("not a price")
        );
        assert!(parse_price("", MicroPerKwh(1_000)).is_err());
        assert!(
            parse_price("99999999999999", MicroPerKwh(1_000))
                .unwrap_err()
                .contains("too large")
        );
    }
}

//! The installer's pages: their gateways and devices, commissioning a gateway, and a gateway's
//! remote check.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use gridshare_domain::W;
use gridshare_domain::wire::CheckResult;

use super::common::{Flash, FlashLine, Header, Session, at_ms, followed};
use crate::format::power;

/// A device behind a gateway, as last heard of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRow {
    /// Its name in the gateway's configuration.
    pub name: String,
    /// grid meter, PV inverter, battery…
    pub kind: String,
    /// ok, fault, unreachable…
    pub status: String,
    /// good, suspect, estimated.
    pub quality: String,
    /// Power, W.
    pub power_w: Option<i64>,
}

/// One of the installer's gateways.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GatewayRow {
    /// Gateway id.
    pub id: u64,
    /// The home.
    pub owner: u64,
    /// Its feeder node.
    pub node: u32,
    /// Seconds (market time) since its last reading; none if it never sent one.
    pub last_reading_s: Option<i64>,
    /// Its devices.
    pub devices: Vec<DeviceRow>,
    /// Its latest remote check: (id, how it went).
    pub last_check: Option<(u64, String)>,
    /// Its bond as last read from chain: `bonded`, `unbonded`, `not_required` (no minimum yet);
    /// none when not read.
    #[serde(default)]
    pub bond: Option<String>,
}

impl GatewayRow {
    /// Online: a reading within the last five minutes.
    pub fn online(&self) -> bool {
        self.last_reading_s.is_some_and(|s| s <= 300)
    }

    /// Its devices' problems, in words.
    pub fn problems(&self) -> Vec<String> {
        self.devices
            .iter()
            .filter(|d| d.status != "ok" || d.quality != "good")
            .map(|d| format!("{}: {} ({})", d.name, d.status, d.quality))
            .collect()
    }
}

/// The installer's page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallerData {
    /// Who.
    pub session: Session,
    /// Their gateways.
    pub gateways: Vec<GatewayRow>,
    /// The last action's result.
    pub flash: Option<Flash>,
}

/// An installer's remote check of a gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckData {
    /// Who.
    pub session: Session,
    /// The check (the API's shape, so a poll can update it).
    pub check: CheckRow,
}

/// A check as the API gives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRow {
    /// Its number.
    pub id: u64,
    /// The gateway.
    pub gateway: u64,
    /// When it was asked (ms, market time).
    pub requested_at: i64,
    /// `waiting`, `answered` or `no_answer`.
    pub state: String,
    /// When the answer came (ms).
    #[serde(default)]
    pub answered_at: Option<i64>,
    /// What the gateway read.
    #[serde(default)]
    pub result: Option<CheckResult>,
}

impl CheckRow {
    /// In words: how it went.
    pub fn summary(&self) -> String {
        match (&self.result, self.state.as_str()) {
            (Some(r), _) => {
                let failed = r.devices.iter().filter(|d| !d.ok()).count();
                match (r.devices.len(), failed) {
                    (0, _) => "The gateway answered, but it has no devices configured.".to_owned(),
                    (n, 0) => format!("All {n} devices answered every point."),
                    (n, f) => format!("{f} of {n} devices could not be read fully: see the errors below."),
                }
            }
            (None, "no_answer") => format!(
                "Gateway {} did not answer within a minute. It is offline or cannot reach the market: check its power and network, then run the check again.",
                self.gateway
            ),
            _ => format!("Asking gateway {}…", self.gateway),
        }
    }
}

/// Seconds as "12 s", "4 min", "3 h".
fn age(s: i64) -> String {
    match s {
        ..=0 => "just now".into(),
        1..=119 => format!("{s} s ago"),
        120..=7_199 => format!("{} min ago", s / 60),
        _ => format!("{} h ago", s / 3_600),
    }
}

#[component]
pub(super) fn InstallerPage(data: InstallerData) -> impl IntoView {
    let (key_text, set_key_text) = signal(String::new());
    let key_problem = move || {
        let k = key_text.get();
        let k = k.trim().trim_start_matches("0x");
        if k.is_empty() {
            return None;
        }
        if !k.chars().all(|c| c.is_ascii_hexdigit()) {
            return Some("a public key is hexadecimal (from `gateway keygen`)".to_owned());
        }
        match k.len() {
            66 | 130 => None,
            n => Some(format!("a public key has 66 or 130 hex digits, this one {n}")),
        }
    };
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <h1>"My gateways"</h1>
            <FlashLine flash=data.flash.clone()/>
            <section class="card" id="gateways">
                <div class="scroll">
                    <table>
                        <thead><tr><th>"Gateway"</th><th>"Home"</th><th>"Node"</th><th>"State"</th><th>"Last reading"</th><th>"Bond"</th><th>"Devices"</th><th>"Problems"</th><th>"Remote check"</th></tr></thead>
                        <tbody>
                            {data.gateways.iter().map(|g| {
                                let problems = g.problems();
                                view! {
                                    <tr class="gateway" data-id=g.id data-online=if g.online() { "yes" } else { "no" }>
                                        <td>{g.id}</td><td>{g.owner}</td><td>{g.node}</td>
                                        <td class=if g.online() { "state on" } else { "state off" }>{if g.online() { "online" } else { "offline" }}</td>
                                        <td>{g.last_reading_s.map_or_else(|| "never".to_owned(), age)}</td>
                                        <td class=match g.bond.as_deref() { Some("unbonded") => "bad", _ => "" }>{super::common::bond_words(g.bond.as_deref())}</td>
                                        <td>{g.devices.iter().map(|d| format!("{} ({}{})", d.name, d.kind, d.power_w.map(|w| format!(", {}", power(W(w)))).unwrap_or_default())).collect::<Vec<_>>().join("; ")}</td>
                                        <td class=if problems.is_empty() { "" } else { "bad" }>{if problems.is_empty() { "none".to_owned() } else { problems.join("; ") }}</td>
                                        <td>
                                            <form method="post" action=format!("/installer/gateways/{}/check", g.id)>
                                                <button type="submit" class="small">"Run check"</button>
                                            </form>
                                            {g.last_check.clone().map(|(id, how)| view! {
                                                <a class="small" href=format!("/installer/gateways/{}/checks/{id}", g.id)>"last: " {how}</a>
                                            })}
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                {data.gateways.is_empty().then(|| view! { <p class="muted">"You have not commissioned a gateway yet."</p> })}
            </section>
            <section class="card" id="commission">
                <h2>"Commission a gateway"</h2>
                <form method="post" action="/installer/gateways" class="form">
                    <label>"Gateway id (its configuration's gateway.id)" <input name="id" inputmode="numeric" required/></label>
                    <label>"Home (participant id)" <input name="owner" inputmode="numeric" required/></label>
                    <label>"Public key (printed by gateway keygen)"
                        <input name="public_key" required on:input=move |ev| set_key_text.set(event_target_value(&ev))/>
                    </label>
                    <label>"Feeder node (empty: the home's)" <input name="node" inputmode="numeric"/></label>
                    <p class="error" role="alert" class:hidden=move || key_problem().is_none()>{move || key_problem().unwrap_or_default()}</p>
                    <button type="submit" disabled=move || key_problem().is_some()>"Commission"</button>
                </form>
            </section>
        </main>
    }
}

#[component]
pub(super) fn CheckPage(data: CheckData) -> impl IntoView {
    // the answer usually comes within seconds: follow it
    let check = followed(
        data.check.clone(),
        |c| format!("/api/v1/gateways/{}/checks/{}", c.gateway, c.id),
        1_000,
        90,
        |c| c.state == "waiting",
    );
    let gateway = data.check.gateway;
    view! {
        <Header session=Some(data.session.clone())/>
        <main>
            <p><a href="/installer">"← My gateways"</a></p>
            <h1>"Check of gateway " {gateway}</h1>
            {move || {
                let c = check.get();
                view! {
                    <section class="card" id="check" data-state=c.state.clone()>
                        <p class="muted">"Asked " {at_ms(c.requested_at)} " UTC"
                            {c.answered_at.map(|t| format!(", answered {} UTC", at_ms(t)))}</p>
                        <p class=match c.state.as_str() { "waiting" => "loading", "no_answer" => "bad", _ => "" }>{c.summary()}</p>
                        {c.result.clone().map(|r| view! {
                            <p class="muted small">
                                "Gateway software " {r.software.clone()} " · "
                                {match r.outbox {
                                    0 => "nothing waiting to be sent · ".to_owned(),
                                    1 => "1 message waiting to be sent · ".to_owned(),
                                    n => format!("{n} messages waiting to be sent · "),
                                }}
                                {match r.preferences_version {
                                    Some(v) => format!("homeowner's preferences version {v}"),
                                    None => "no homeowner's preferences yet".to_owned(),
                                }}
                            </p>
                        })}
                    </section>
                    {c.result.map(|r| r.devices.into_iter().map(|d| {
                        let ok = d.ok();
                        view! {
                            <section class="card device" data-device=d.device.to_string() data-ok=if ok { "yes" } else { "no" }>
                                <h2>{d.device.to_string()} " · " {d.model.clone()}</h2>
                                <p class="muted small">{d.address.clone()} " · read in " {d.elapsed_ms} " ms"
                                    {(d.not_shown > 0).then(|| format!(" · {} more points read, not shown (a check fits in one message)", d.not_shown))}</p>
                                <div class="scroll">
                                    <table>
                                        <thead><tr><th>"Point"</th><th>"Value"</th><th>"Problem"</th></tr></thead>
                                        <tbody>
                                            {d.points.into_iter().map(|p| {
                                                let failed = p.error.is_some();
                                                let value = match (p.value, failed) {
                                                    (Some(v), _) => format!("{v} {}", p.unit),
                                                    (None, true) => "—".to_owned(),
                                                    (None, false) => "not implemented".to_owned(),
                                                };
                                                view! {
                                                    <tr class="point" data-ok=if failed { "no" } else { "yes" }>
                                                        <td>{p.name}</td>
                                                        <td>{value}</td>
                                                        <td class=if failed { "bad" } else { "" }>{p.error.unwrap_or_default()}</td>
                                                    </tr>
                                                }
                                            }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            </section>
                        }
                    }).collect_view())}
                    <form method="post" action=format!("/installer/gateways/{gateway}/check")>
                        <button type="submit" disabled=c.state == "waiting">"Run the check again"</button>
                    </form>
                }
            }}
        </main>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_says_how_it_went() {
        use gridshare_domain::DeviceId;
        use gridshare_domain::wire::{DeviceCheck, DeviceKind, PointCheck};
        let point = |error: Option<&str>| PointCheck {
            name: "power".into(),
            value: error.is_none().then(|| "812".to_owned()),
            unit: "W".into(),
            error: error.map(str::to_owned),
        };
        let device = |error| DeviceCheck {
            device: DeviceId::new("meter").unwrap(),
            kind: DeviceKind::GridMeter,
            model: "Eastron SDM630".into(),
            address: "127.0.0.1:502 unit 1".into(),
            elapsed_ms: 20,
            points: vec![point(None), point(error)],
            not_shown: 0,
        };
        let row = |state: &str, devices: Option<Vec<DeviceCheck>>| CheckRow {
            id: 1,
            gateway: 7,
            requested_at: 0,
            state: state.into(),
            answered_at: None,
            result: devices.map(|devices| CheckResult {
                check_id: 1,
                software: "0.1.0".into(),
                outbox: 0,
                preferences_version: None,
                devices,
            }),
        };
        assert_eq!(row("waiting", None).summary(), "Asking gateway 7…");
        assert!(
            row("no_answer", None)
                .summary()
                .contains("did not answer within a minute")
        );
        assert_eq!(
            row("answered", Some(vec![device(None), device(None)])).summary(),
            "All 2 devices answered every point."
        );
        assert!(
            row("answered", Some(vec![device(None), device(Some("timeout"))]))
                .summary()
                .starts_with("1 of 2 devices")
        );
        assert!(row("answered", Some(vec![])).summary().contains("no devices"));
    }
}

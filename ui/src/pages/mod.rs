//! The pages: what each needs (serialisable, so the server can hand the same data to the browser
//! for hydration) and how it looks, one module per role and one for what they share.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

mod common;
mod home;
mod installer;
mod network;
mod operator;
mod slashing;
mod trader;

// one flat path per item (`gridshare_ui::pages::HomeData`): the server builds the pages' data without
// needing to know which role's module a type lives in
pub use common::{ErrorData, Flash, LoginData, Session, parse_price};
pub use home::{
    Balance, Corrections, DEFAULT_PREFERENCES, Energy, EpochRewardRow, HomeData, PowerNow, PreferenceAnswer,
    PreferencesData, TradeRow, VoteRow, check_preferences,
};
pub use installer::{CheckData, CheckRow, DeviceRow, GatewayRow, InstallerData};
pub use network::{
    AdminData, AdminGatewayRow, EpochRow, GovernedRow, NetworkData, ParameterRow, ParticipantRow, ProposalRow, RulesRow,
};
pub use operator::{EventData, EventRow, FeederRow, OperatorData, ReportRow};
pub use slashing::{SlashRow, explanation};
pub use trader::{KeyRow, Level, OrderRow, TraderData};

use common::{ErrorPage, LoginPage};
use home::HomePage;
use installer::{CheckPage, InstallerPage};
use network::{AdminPage, NetworkPage};
use operator::{EventPage, OperatorPage};
use trader::TraderPage;

/// Every page, with its data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "page", content = "data", rename_all = "snake_case")]
pub enum Page {
    /// `/login`.
    Login(LoginData),
    /// `/home/{participant}`.
    Home(Box<HomeData>),
    /// `/trader`.
    Trader(Box<TraderData>),
    /// `/installer`.
    Installer(Box<InstallerData>),
    /// `/operator`.
    Operator(Box<OperatorData>),
    /// `/operator/events/{id}`.
    Event(Box<EventData>),
    /// `/installer/gateways/{id}/checks/{check}`.
    Check(Box<CheckData>),
    /// `/network`: the reward epochs, public.
    Network(Box<NetworkData>),
    /// `/admin`.
    Admin(Box<AdminData>),
    /// Any error.
    Error(ErrorData),
}

impl Page {
    /// Seconds after which the page reloads itself (a running event's live view).
    pub fn refresh_seconds(&self) -> Option<u32> {
        match self {
            Self::Event(e) if matches!(e.status.as_str(), "scheduled" | "active") => Some(3),
            _ => None,
        }
    }

    /// The document title.
    pub fn title(&self) -> String {
        match self {
            Self::Login(_) => "Log in · GridShare".into(),
            Self::Home(d) => format!("{} · GridShare", d.session.name),
            Self::Trader(d) => format!("Trading · {} · GridShare", d.session.name),
            Self::Operator(_) => "Feeder · GridShare".into(),
            Self::Installer(_) => "Gateways · GridShare".into(),
            Self::Event(d) => format!("Event {} · GridShare", d.id),
            Self::Check(d) => format!("Check of gateway {} · GridShare", d.check.gateway),
            Self::Network(_) => "Network · GridShare".into(),
            Self::Admin(_) => "Administration · GridShare".into(),
            Self::Error(e) => format!("{} · GridShare", e.title),
        }
    }
}

/// The page's view.
pub fn view(page: Page) -> AnyView {
    match page {
        Page::Login(d) => view! { <LoginPage data=d/> }.into_any(),
        Page::Home(d) => view! { <HomePage data=*d/> }.into_any(),
        Page::Trader(d) => view! { <TraderPage data=*d/> }.into_any(),
        Page::Operator(d) => view! { <OperatorPage data=*d/> }.into_any(),
        Page::Installer(d) => view! { <InstallerPage data=*d/> }.into_any(),
        Page::Event(d) => view! { <EventPage data=*d/> }.into_any(),
        Page::Check(d) => view! { <CheckPage data=*d/> }.into_any(),
        Page::Network(d) => view! { <NetworkPage data=*d/> }.into_any(),
        Page::Admin(d) => view! { <AdminPage data=*d/> }.into_any(),
        Page::Error(d) => view! { <ErrorPage data=d/> }.into_any(),
    }
}

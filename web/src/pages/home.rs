//! The homeowner's page (`GET /home/{participant}`): balance and its corrections, energy traded
//! today and this month (and against the utility), power now, trades, rewards, the trading
//! preferences form (`POST /home/{participant}/preferences`), and, when one of the home's gateways
//! was stopped for equivocation, what happened in plain words with the evidence.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gridshare_domain::{ParticipantId, Timestamp};
use gridshare_storage::readings::BucketSize;
use gridshare_storage::{gateways, market as trades_db, participants};
use gridshare_ui::Page;
use gridshare_ui::pages::{Balance, Energy, HomeData, PreferenceAnswer, PreferencesData, Session, TradeRow, VoteRow};
use serde::Deserialize;

use super::{DAY_MS, Homeowner, PageQuery, SignedIn, back_with, error_page, html, session_of};
use crate::auth::{Principal, Role};
use crate::{AppState, balances, dr};

fn energy(
    trades: &[(gridshare_domain::wire::TradeReport, Option<u64>)],
    me: ParticipantId,
    tariff: Option<(i64, i64)>,
) -> Energy {
    use gridshare_domain::{Micro, Wh};
    let (mut bought, mut sold, mut paid, mut received, mut saved) = (0i64, 0i64, 0i64, 0i64, 0i64);
    for (t, _) in trades {
        let q = t.quantity.0;
        if t.buyer == me {
            bought += q;
            let cost = q * (t.price.0 + t.grid_fee.0) / 1_000;
            paid += cost;
            if let Some((import, _)) = tariff {
                saved += q * import / 1_000 - cost;
            }
        }
        if t.seller == me {
            sold += q;
            let got = q * t.price.0 / 1_000;
            received += got;
            if let Some((_, export)) = tariff {
                saved += got - q * export / 1_000;
            }
        }
    }
    Energy {
        bought_wh: Wh(bought),
        sold_wh: Wh(sold),
        paid: Micro(paid),
        received: Micro(received),
        saved: tariff.map(|_| Micro(saved)),
        utility: None,
    }
}

/// The utility's tariffs (import, export) "saved against the utility" is counted with: those the
/// community governs once it has changed a parameter (the version in force at `now`), else the
/// configured ones.
async fn tariff_in_force(
    db: &gridshare_storage::Db,
    configured: Option<(i64, i64)>,
    now: gridshare_domain::Timestamp,
) -> Result<Option<(i64, i64)>, gridshare_storage::StorageError> {
    let Some(v) = gridshare_storage::parameters::in_force(db, now).await? else {
        return Ok(configured);
    };
    if v.version == 0 {
        return Ok(configured);
    }
    let value = |key: &str| -> Result<Option<i64>, gridshare_storage::StorageError> {
        Ok(v.value(key)?.and_then(|x| i64::try_from(x).ok()))
    };
    Ok(match (value("importTariff")?, value("exportTariff")?) {
        (Some(import), Some(export)) => Some((import, export)),
        _ => configured,
    })
}

/// Energy drawn from and fed to the utility beyond the home's local trades, per bucket of
/// `bucket_ms` that has ended by `now` and has grid readings, as settlement counts it: the metered
/// net (mean grid power × the bucket's length) less the traded net (bought − sold) of the trades
/// delivered in it. Buckets without readings count as traded (no deviation). `None` when there is
/// no such bucket.
fn utility_energy(
    grid: &[(i64, i64)],
    trades: &[(gridshare_domain::wire::TradeReport, Option<u64>)],
    me: ParticipantId,
    bucket_ms: i64,
    now: Timestamp,
) -> Option<(gridshare_domain::Wh, gridshare_domain::Wh)> {
    let (mut from, mut to, mut any) = (0i64, 0i64, false);
    for &(start, mean_w) in grid.iter().filter(|(start, _)| start + bucket_ms <= now.0) {
        any = true;
        let metered = mean_w * bucket_ms / 3_600_000;
        let traded: i64 = trades
            .iter()
            .filter(|(t, _)| t.interval.start().0.div_euclid(bucket_ms) * bucket_ms == start)
            .map(|(t, _)| {
                let q = t.quantity.0;
                (if t.buyer == me { q } else { 0 }) - (if t.seller == me { q } else { 0 })
            })
            .sum();
        let deviation = metered - traded;
        if deviation > 0 {
            from += deviation;
        } else {
            to -= deviation;
        }
    }
    any.then_some((gridshare_domain::Wh(from), gridshare_domain::Wh(to)))
}

/// `GET /home/{participant}`: the homeowner's page. Only the home itself (and an admin) may open it.
pub async fn home(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    SignedIn { who, .. }: SignedIn<Homeowner>,
    Query(q): Query<PageQuery>,
) -> Response {
    let session = session_of(&state, &who).await;
    if who.participant.0 != id && who.role != Role::Admin {
        return error_page(
            &state,
            session,
            StatusCode::FORBIDDEN,
            "Not your home",
            "This page belongs to another household; you can only see your own.",
        );
    }
    match home_data(&state, &who, ParticipantId(id), session.clone()).await {
        Ok(mut data) => {
            data.flash = q.flash();
            html(&state, StatusCode::OK, &Page::Home(Box::new(data)))
        }
        Err(e) => super::not_loaded(&state, session, "This page could not be loaded", &e),
    }
}

async fn home_data(
    state: &AppState,
    who: &Principal,
    home: ParticipantId,
    session: Option<Session>,
) -> Result<HomeData, crate::ApiError> {
    let db = state.db()?;
    let p = participants::get(db, home).await?;
    if p.role != "homeowner" {
        return Err(crate::ApiError::not_found(format!(
            "participant {} is not a home",
            home.0
        )));
    }
    let now = state.clock.now();
    let day_start = Timestamp(now.0 - now.0.rem_euclid(DAY_MS));
    let month_start = month_start(now);
    // the page shows the home's own numbers: act as the home (an admin may look at any)
    let as_home = Principal {
        participant: home,
        role: Role::Homeowner,
        scopes: who.scopes.clone(),
        key: None,
    };
    let b = balances::balance_of(state, &as_home).await?;
    let month = trades_db::trades_of_participant_since(db, home, month_start, 5_000).await?;
    let today: Vec<_> = month
        .iter()
        .filter(|(t, _)| t.interval.start().0 >= day_start.0)
        .cloned()
        .collect();
    let rewards = dr::rewards_of(state, &as_home).await?;
    let posted: std::collections::BTreeMap<u64, bool> = gridshare_storage::epochs::list(db, 20)
        .await?
        .into_iter()
        .map(|e| (e.epoch, e.posted_tx.is_some()))
        .collect();
    let epochs = gridshare_storage::epochs::rewards_of(db, home, 5)
        .await?
        .into_iter()
        .map(|r| gridshare_ui::pages::EpochRewardRow {
            epoch: r.epoch,
            local_renewable: gridshare_domain::Micro(r.local_renewable),
            demand_response: gridshare_domain::Micro(r.demand_response),
            uptime: gridshare_domain::Micro(r.uptime),
            reward: gridshare_domain::Micro(r.reward),
            cumulative: gridshare_domain::Micro(r.cumulative),
            on_chain: posted.get(&r.epoch).copied().unwrap_or(false),
        })
        .collect();
    let homes_gateways: Vec<gateways::Gateway> = gateways::active(db)
        .await?
        .into_iter()
        .filter(|g| g.owner == home)
        .collect();
    // the home's grid power per quarter hour this month (summed over its gateways): today's for
    // the chart, all of it for the energy drawn from and fed to the utility
    let mut month_power: std::collections::BTreeMap<i64, i64> = std::collections::BTreeMap::new();
    for g in &homes_gateways {
        for (t, w) in
            gridshare_storage::readings::grid_power_buckets(db, g.id, BucketSize::Quarter, month_start, now).await?
        {
            *month_power.entry(t.0).or_default() += w.0;
        }
    }
    let month_power: Vec<(i64, i64)> = month_power.into_iter().collect();
    let grid_power: Vec<(i64, i64)> = month_power.iter().copied().filter(|(t, _)| *t >= day_start.0).collect();
    let quarter = BucketSize::Quarter.millis();
    // the flows at the last reading of each of the home's devices
    let mut power_now: Option<gridshare_ui::pages::PowerNow> = None;
    for g in &homes_gateways {
        for r in gridshare_storage::readings::latest_per_device(db, g.id, now).await? {
            let p = power_now.get_or_insert_with(Default::default);
            let w = r.sample.power_w.map_or(0, |w| w.0);
            match r.sample.kind {
                gridshare_domain::wire::DeviceKind::GridMeter => p.grid_w = w,
                gridshare_domain::wire::DeviceKind::PvInverter => p.pv_w = w,
                gridshare_domain::wire::DeviceKind::Battery => p.battery_w = w,
                gridshare_domain::wire::DeviceKind::EvCharger => p.ev_w = w,
                gridshare_domain::wire::DeviceKind::SubMeter => {}
            }
            if p.at.as_str() < r.sample.at.0.to_string().as_str() || p.at.is_empty() {
                p.at = r.sample.at.0.to_string();
            }
        }
    }
    let tariff = tariff_in_force(db, state.tariff, now).await?;
    Ok(HomeData {
        session: session.unwrap_or(Session {
            participant: home.0,
            name: p.name.clone(),
            role: "homeowner".into(),
        }),
        balance: Balance {
            account: b.account,
            settled: gridshare_domain::Micro(b.settled),
            pending: gridshare_domain::Micro(b.pending),
            on_chain: b.on_chain.map(gridshare_domain::Micro),
            corrections: corrections(db, home, month_start).await?,
        },
        today: Energy {
            utility: utility_energy(&grid_power, &today, home, quarter, now),
            ..energy(&today, home, tariff)
        },
        month: Energy {
            utility: utility_energy(&month_power, &month, home, quarter, now),
            ..energy(&month, home, tariff)
        },
        trades: month
            .iter()
            .take(50)
            .map(|(t, batch)| TradeRow {
                id: t.trade_id.0,
                interval: t.interval.to_string(),
                bought: t.buyer == home,
                quantity_wh: t.quantity,
                price: t.price,
                grid_fee: t.grid_fee,
                batch: *batch,
            })
            .collect(),
        rewards: gridshare_domain::Micro(rewards.iter().map(|r| r.amount).sum()),
        reward_count: rewards.len(),
        epochs,
        grid_power,
        power_now,
        preferences: preferences_data(
            crate::remote::view_of(state, home, &homes_gateways.iter().map(|g| g.id).collect::<Vec<_>>()).await?,
        ),
        flash: None,
        at: now.to_rfc3339(),
        stopped: gridshare_storage::evidence::list(db, Some(home), 20)
            .await?
            .iter()
            .map(|e| super::slash_row(e, true))
            .collect(),
        votes: votes(db, home).await?,
        bonds: {
            let states = gateways::bond_states(db).await?;
            homes_gateways
                .iter()
                .map(|g| (g.id.0, states.get(&g.id).cloned()))
                .collect()
        },
        own_wallet: p.evm_address.clone(),
    })
}

/// The proposals a home sees: those whose vote is not over, and those it voted on, newest first,
/// each with the home's vote.
async fn votes(db: &gridshare_storage::Db, home: ParticipantId) -> Result<Vec<VoteRow>, crate::ApiError> {
    use gridshare_storage::parameters;
    let mine = parameters::votes_of(db, home, 50).await?;
    Ok(parameters::proposals(db, 20)
        .await?
        .iter()
        .filter_map(|p| {
            let vote = mine.iter().find(|v| v.proposal == p.id);
            let open = matches!(p.state.as_str(), "waiting" | "pending" | "active");
            (open || vote.is_some()).then(|| VoteRow {
                proposal: p.id,
                description: p.description.clone(),
                changes: super::network::changes_in_words(&p.changes),
                state: p.state.clone(),
                support: vote
                    .and_then(|v| crate::governance::Support::from_number(v.support).map(|s| s.name().to_owned())),
                vote_state: vote.map(|v| v.state.clone()),
                weight: vote
                    .and_then(|v| v.weight.as_deref()?.parse().ok())
                    .map(gridshare_domain::Micro),
                error: vote.and_then(|v| v.error.clone()),
            })
        })
        .collect())
}

/// The household itself only: an admin may look at a home, not act for it (set its preferences,
/// vote with its rewards). The 403 page saying `why`, for anyone but home `id`'s own homeowner.
async fn household_only(state: &AppState, who: &Principal, id: u64, why: &str) -> Option<Response> {
    if who.participant.0 == id && who.role == Role::Homeowner {
        return None;
    }
    let session = session_of(state, who).await;
    Some(error_page(state, session, StatusCode::FORBIDDEN, "Not your home", why))
}

/// The homeowner's vote, as the form sends it.
#[derive(Debug, Deserialize)]
pub struct VoteForm {
    proposal: u64,
    support: crate::governance::Support,
}

/// `POST /home/{id}/votes`: the household votes on a proposal (the service casts it from the
/// home's account when the vote opens); back to the page with what happened.
pub async fn vote(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    SignedIn { who, .. }: SignedIn<Homeowner>,
    Form(f): Form<VoteForm>,
) -> Response {
    let page = format!("/home/{id}");
    if let Some(refused) = household_only(&state, &who, id, "Only the household itself votes with its rewards.").await {
        return refused;
    }
    match crate::governance::request_vote(&state, &who, f.proposal, f.support).await {
        Ok(_) => back_with(
            &page,
            true,
            &format!(
                "You voted {} on proposal {}. The service casts it from your account when the vote opens.",
                f.support.name(),
                f.proposal
            ),
            Some("governance"),
        ),
        Err(e) => back_with(&page, false, &format!("Not voted: {}.", e.message), Some("governance")),
    }
}

/// The home's intervals since `from` settled on an estimate, and their true-ups.
async fn corrections(
    db: &gridshare_storage::Db,
    home: ParticipantId,
    from: Timestamp,
) -> Result<gridshare_ui::pages::Corrections, crate::ApiError> {
    let mut c = gridshare_ui::pages::Corrections::default();
    for p in gridshare_storage::positions::of_participant(db, home, None, 3_000).await? {
        if p.settled.interval_start < from {
            break;
        }
        match (p.settled.estimated, p.true_up) {
            (false, _) => {}
            (true, None) => c.awaiting += 1,
            (true, Some(t)) => {
                c.trued_up += 1;
                c.total = gridshare_domain::Micro(c.total.0.saturating_add(t.cash.0));
            }
        }
    }
    Ok(c)
}

fn preferences_data(v: crate::remote::PreferencesView) -> PreferencesData {
    PreferencesData {
        updated_at: v.preferences.as_ref().map(|p| p.updated_at),
        set: v.preferences.map(|p| gridshare_domain::wire::TradingPreferences {
            version: p.version,
            min_sell_price: gridshare_domain::MicroPerKwh(p.min_sell_price),
            max_buy_price: gridshare_domain::MicroPerKwh(p.max_buy_price),
            battery_reserve_percent: p.battery_reserve_percent,
        }),
        gateways: v
            .gateways
            .into_iter()
            .map(|g| PreferenceAnswer {
                gateway: g.gateway,
                state: g.state,
                version: g.version,
                reason: g.reason,
                at: g.at,
            })
            .collect(),
    }
}

/// The preferences form.
#[derive(Debug, Deserialize)]
pub struct PreferencesForm {
    min_sell_price: String,
    max_buy_price: String,
    battery_reserve_percent: String,
}

/// `POST /home/{participant}/preferences`: checks the form as the page did, stores the
/// preferences and sends them to the home's gateways; back to the page with what happened.
pub async fn preferences(
    State(state): State<AppState>,
    Path(id): Path<u64>,
    SignedIn { who, .. }: SignedIn<Homeowner>,
    Form(f): Form<PreferencesForm>,
) -> Response {
    let page = format!("/home/{id}");
    let back = |ok: bool, text: String| back_with(&page, ok, &text, Some("preferences"));
    if let Some(refused) = household_only(
        &state,
        &who,
        id,
        "Only the household itself sets its trading preferences.",
    )
    .await
    {
        return refused;
    }
    let p =
        match gridshare_ui::pages::check_preferences(&f.min_sell_price, &f.max_buy_price, &f.battery_reserve_percent) {
            Ok(p) => p,
            Err(e) => return back(false, format!("Not saved. {e}.")),
        };
    let body = crate::remote::PreferencesBody {
        min_sell_price: p.min_sell_price.0,
        max_buy_price: p.max_buy_price.0,
        battery_reserve_percent: p.battery_reserve_percent,
    };
    match crate::remote::set(&state, who.participant, &body).await {
        Ok(v) if v.gateways.is_empty() => back(
            true,
            "Saved. Your home has no gateway yet: it takes them when it is commissioned.".into(),
        ),
        Ok(v) => back(
            true,
            format!(
                "Saved as version {}, and sent to your gateway.",
                v.preferences.map_or(0, |p| p.version)
            ),
        ),
        Err(e) => back(false, format!("Not saved: {}.", e.message)),
    }
}

/// Midnight UTC on the first of `t`'s month.
fn month_start(t: Timestamp) -> Timestamp {
    let day_start = t.0 - t.0.rem_euclid(DAY_MS);
    // the day of the month from the RFC 3339 date (YYYY-MM-DD…)
    let day_of_month: u32 = t.to_rfc3339().get(8..10).and_then(|d| d.parse().ok()).unwrap_or(1);
    Timestamp(day_start - i64::from(day_of_month - 1) * DAY_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn energy_from_and_to_the_utility_is_what_the_meter_saw_beyond_the_trades() {
        use gridshare_domain::wire::TradeReport;
        use gridshare_domain::{DeliveryInterval, IntervalLength, MicroPerKwh, OrderId, TradeId, Wh, ZoneId};
        const Q: i64 = 900_000;
        let me = ParticipantId(1);
        let trade = |start: i64, buyer: u64, seller: u64, wh: i64| {
            (
                TradeReport {
                    trade_id: TradeId(1),
                    zone: ZoneId(1),
                    interval: DeliveryInterval::new(Timestamp(start), IntervalLength::Min15).unwrap(),
                    buy_order: OrderId(1),
                    sell_order: OrderId(2),
                    buyer: ParticipantId(buyer),
                    seller: ParticipantId(seller),
                    quantity: Wh(wh),
                    price: MicroPerKwh(100_000),
                    grid_fee: MicroPerKwh(0),
                    at: Timestamp(start),
                },
                None,
            )
        };
        // quarter 0: 2 kW drawn = 500 Wh, 300 Wh of it bought locally → 200 Wh from the utility;
        // quarter 1: 1.2 kW fed in = 300 Wh, 500 Wh sold → 200 Wh short, drawn from the utility;
        // quarter 2: 4 kW fed in = 1 kWh, nothing traded → 1 kWh to the utility;
        // quarter 3 is still running: not counted; quarter 4 has no readings: counted as traded
        let grid = [(0, 2_000), (Q, -1_200), (2 * Q, -4_000), (3 * Q, 9_000)];
        let trades = [trade(0, 1, 2, 300), trade(Q, 3, 1, 500), trade(4 * Q, 1, 2, 50)];
        let now = Timestamp(3 * Q + 60_000);
        assert_eq!(utility_energy(&grid, &trades, me, Q, now), Some((Wh(400), Wh(1_000))));
        assert_eq!(utility_energy(&[], &trades, me, Q, now), None);
    }

    #[test]
    fn month_start_is_midnight_on_the_first() {
        let t = Timestamp::parse_rfc3339("2026-11-25T10:15:00Z").unwrap();
        assert_eq!(
            month_start(t),
            Timestamp::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()
        );
        let t = Timestamp::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
        assert_eq!(month_start(t), t);
    }

    #[tokio::test]
    async fn savings_count_with_the_tariffs_in_force() {
        use gridshare_storage::parameters;
        let dir = tempfile::tempdir().unwrap();
        let db = gridshare_storage::Db::open(dir.path().to_str().unwrap()).await.unwrap();
        let configured = Some((300_000, 80_000));
        let at = |ms: i64| Timestamp(1_764_000_000_000 + ms);
        assert_eq!(tariff_in_force(&db, configured, at(0)).await.unwrap(), configured);
        let params = r#"{"importTariff":"450000","exportTariff":"60000"}"#;
        parameters::record(&db, 0, at(0), r#"{"importTariff":"1","exportTariff":"1"}"#, "{}")
            .await
            .unwrap();
        // version 0 is the configuration's own: the configured values count
        assert_eq!(tariff_in_force(&db, configured, at(5)).await.unwrap(), configured);
        parameters::record(&db, 1, at(10), params, "{}").await.unwrap();
        assert_eq!(tariff_in_force(&db, configured, at(9)).await.unwrap(), configured);
        assert_eq!(
            tariff_in_force(&db, configured, at(10)).await.unwrap(),
            Some((450_000, 60_000))
        );
        assert_eq!(
            tariff_in_force(&db, None, at(11)).await.unwrap(),
            Some((450_000, 60_000))
        );
    }
}

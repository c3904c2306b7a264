//! Demand response on simulated devices over Modbus TCP: signals become clamped, ramped writes
//! confirmed by read-back; the report comes once the setpoints hold; cancelling, or the event's
//! end, restores what the devices had before; nothing is ever written outside a profile's limits
//! or as 0 to a point that trips on it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;
use std::time::Duration;

use gridshare_domain::wire::{DrEvent, DrInterval, DrSignal};
use gridshare_domain::{EventId, ProgramId, Timestamp, W};
use gridshare_gateway::config::{Device, DeviceConfig};
use gridshare_gateway::dr::{Controller, clamp, read_value};
use gridshare_gateway::modbus::Link;
use gridshare_gateway::profile::{Profile, Quantity};
use gridshare_gateway::simulate::Simulator;

fn device(name: &str, file: &str, port: u16, unit: u8) -> Device {
    Device {
        config: DeviceConfig {
            name: name.into(),
            profile: file.into(),
            host: Some("127.0.0.1".into()),
            port,
            serial: None,
            baud: 9_600,
            parity: Default::default(),
            unit: Some(unit),
            timeout_ms: 1_000,
        },
        profile: Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware").join(file)).unwrap(),
    }
}

fn event(id: u64, start: i64, minutes: u32, signals: Vec<DrSignal>, cancelled: bool) -> DrEvent {
    DrEvent {
        event_id: EventId(id),
        program_id: ProgramId(1),
        priority: 1,
        intervals: vec![DrInterval {
            id: 0,
            start: Timestamp(start),
            duration_minutes: minutes,
            signals,
        }],
        cancelled,
    }
}

async fn value(links: &mut [Link], devices: &[Device], i: usize, q: Quantity) -> f64 {
    let p = devices[i].profile.quantity(q).unwrap();
    read_value(&mut links[i], &devices[i], p).await.unwrap().unwrap()
}

#[tokio::test]
async fn load_shed_ramps_confirms_reports_and_reverts() {
    let sim = Simulator::new(1_750_507_200.0);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let devices = vec![
        device("battery", "generic-battery-inverter.toml", port, 3),
        device("ev", "generic-ev-charger.toml", port, 4),
    ];
    for (unit, d) in [(3u8, &devices[0]), (4, &devices[1])] {
        sim.add(unit, d.profile.clone());
    }
    {
        let sim = sim.clone();
        tokio::spawn(async move {
            sim.serve(listener, Duration::from_millis(50), 1.0, std::future::pending())
                .await
        });
    }
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut links: Vec<Link> = [3u8, 4]
        .iter()
        .map(|u| Link::new(addr, *u, Duration::from_secs(1), Duration::from_millis(2)))
        .collect();
    let (setpoint, limit) = (Quantity::BatterySetpointW, Quantity::EvCurrentLimitA);
    let before = (
        value(&mut links, &devices, 0, setpoint).await,
        value(&mut links, &devices, 1, limit).await,
    );
    assert_eq!(before, (0.0, 16.0));

    let now = 1_764_064_800_000i64;
    let mut dr = Controller::default();
    // the grid before the event: its mean is the baseline
    for (t, w) in [(now - 3_000, 1_000.0), (now - 2_000, 2_000.0)] {
        assert!(dr.cycle(&mut links, &devices, Timestamp(t), Some(w)).await.is_empty());
    }
    dr.on_event(event(
        7,
        now - 1_000,
        30,
        vec![DrSignal::LoadShed { w: W(3_000) }],
        false,
    ))
    .unwrap();
    // ramp: at most 20 % of the range per cycle (2 kW of the battery's ±5 kW, 5.2 A of 6–32 A)
    let report = dr.cycle(&mut links, &devices, Timestamp(now), Some(1_800.0)).await;
    assert!(report.is_empty(), "still ramping: {report:?}");
    assert!(dr.is_active());
    assert_eq!(value(&mut links, &devices, 0, setpoint).await, -2_000.0);
    assert!((value(&mut links, &devices, 1, limit).await - 10.8).abs() < 0.05);
    let mut report = None;
    for n in 1..5 {
        report = dr
            .cycle(&mut links, &devices, Timestamp(now + n * 1_000), Some(-1_200.0))
            .await
            .pop();
        if report.is_some() {
            break;
        }
    }
    let report = report.expect("a report once the setpoints hold");
    assert!(report.confirmed, "{report:?}");
    assert_eq!((report.event_id, report.interval_id), (EventId(7), 0));
    assert_eq!(
        (report.baseline_w, report.measured_w),
        (Some(W(1_600)), W(-1_200)),
        "baseline: the mean of 1 000, 2 000 and 1 800 W"
    );
    assert_eq!(value(&mut links, &devices, 0, setpoint).await, -3_000.0);
    assert_eq!(value(&mut links, &devices, 1, limit).await, 6.0);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sim.power_w(3), Some(-3_000.0), "the battery discharges as asked");
    assert!(
        dr.cycle(&mut links, &devices, Timestamp(now + 6_000), Some(-1_000.0))
            .await
            .is_empty(),
        "one report per interval until it ends"
    );

    // cancelled: everything back as it was, and the interval's final report gives the mean
    // grid power since the first (−1 200 then −1 000 W)
    dr.on_event(event(7, now - 1_000, 30, vec![], true)).unwrap();
    let last = dr.cycle(&mut links, &devices, Timestamp(now + 7_000), None).await;
    assert_eq!(last.len(), 1, "{last:?}");
    assert_eq!((last[0].interval_id, last[0].measured_w), (0, W(-1_100)), "{last:?}");
    assert_eq!(last[0].baseline_w, Some(W(1_600)));
    assert!(!dr.is_active());
    let after = (
        value(&mut links, &devices, 0, setpoint).await,
        value(&mut links, &devices, 1, limit).await,
    );
    assert_eq!(after, before);

    // out of limits is clamped; the event's end restores too
    dr.on_event(event(
        8,
        now,
        1,
        vec![
            DrSignal::BatterySetpoint { w: W(9_000) },
            DrSignal::EvCurrentLimit { milliamps: 0 },
        ],
        false,
    ))
    .unwrap();
    for n in 0..6 {
        dr.cycle(&mut links, &devices, Timestamp(now + 8_000 + n * 1_000), Some(500.0))
            .await;
    }
    assert_eq!(
        value(&mut links, &devices, 0, setpoint).await,
        5_000.0,
        "clamped to the profile's maximum"
    );
    assert_eq!(
        value(&mut links, &devices, 1, limit).await,
        6.0,
        "never 0 to a point that trips on it"
    );
    dr.cycle(&mut links, &devices, Timestamp(now + 60_000), Some(500.0))
        .await;
    assert!(!dr.is_active(), "the event is over");
    assert_eq!(value(&mut links, &devices, 0, setpoint).await, 0.0);
    assert_eq!(value(&mut links, &devices, 1, limit).await, 16.0);

    // a point that trips on 0 and whose lowest limit is 0 is left alone
    let mut p = devices[1].profile.quantity(limit).unwrap().clone();
    p.writable.as_mut().unwrap().min = 0.0;
    assert_eq!(clamp(&p, 0.0), None);
    // an event that makes no sense is refused
    assert!(dr.on_event(event(9, now, 0, vec![], false)).is_err());
}

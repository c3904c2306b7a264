//! A fault storm over both transports: a device ([`faulty`]) that at random answers late, not
//! at all, garbled or with exceptions, read many thousand times through the gateway's links.
//! Every value read must be the register's true value, every failure a named error, the link
//! must work again when the storm ends, and demand-response writes under the same storm never
//! put a setpoint outside its limits and are confirmed only by a read-back of the value
//! written. RTU runs on an in-memory line on tokio's paused clock; TCP on loopback, with short
//! timeouts and four links at once, to stay within a few seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)] // test code

mod faulty;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use faulty::{Fault, Faulty, LIMITS, Mix, truth};
use gridshare_gateway::config::{Device, DeviceConfig};
use gridshare_gateway::dr::{clamp, write_value};
use gridshare_gateway::modbus::{Link, LinkFault, ModbusError};
use gridshare_gateway::profile::{Profile, Quantity, Table};

const RTU_MIX: Mix = &[
    (Fault::Late, 30),
    (Fault::Drop, 30),
    (Fault::BadCrc, 30),
    (Fault::Truncated, 20),
    (Fault::WrongUnit, 30),
    (Fault::WrongFunction, 30),
    (Fault::Exception, 30),
    (Fault::Trailing, 20),
];

const TCP_MIX: Mix = &[
    (Fault::Late, 8),
    (Fault::Drop, 8),
    (Fault::Truncated, 4),
    (Fault::WrongUnit, 20),
    (Fault::WrongFunction, 20),
    (Fault::Exception, 20),
    (Fault::StaleId, 30),
    (Fault::BadHeader, 8),
];

fn battery() -> Device {
    let file = "generic-battery-inverter.toml";
    Device {
        config: DeviceConfig {
            name: "battery".into(),
            profile: file.into(),
            host: Some("127.0.0.1".into()),
            port: 502,
            serial: None,
            baud: 9_600,
            parity: Default::default(),
            unit: Some(1),
            timeout_ms: 20,
        },
        profile: Profile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware").join(file)).unwrap(),
    }
}

/// What the storm did to one link.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    ok: u64,
    /// Failures by name.
    failed: BTreeMap<String, u64>,
    writes_confirmed: u64,
}

impl Tally {
    fn fail(&mut self, e: &ModbusError) {
        let name = match e {
            ModbusError::Exception { code, .. } => format!("exception {code:?}"),
            ModbusError::Link { fault, .. } => match fault {
                LinkFault::Garbled(f) => format!(
                    "garbled: {}",
                    format!("{f:?}").split([' ', '{', '(']).next().unwrap_or("")
                ),
                other => format!("{other:?}")
                    .split([' ', '{', '('])
                    .next()
                    .unwrap_or("")
                    .to_owned(),
            },
        };
        *self.failed.entry(name).or_default() += 1;
    }

    fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.writes_confirmed += other.writes_confirmed;
        for (k, v) in other.failed {
            *self.failed.entry(k).or_default() += v;
        }
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `requests` requests through `link`: reads of random registers (few shapes, so that a late
/// answer often has the shape of the next request's), and every tenth a demand-response write.
async fn storm(link: &mut Link, device: &Faulty, seed: u64, requests: u64) -> Tally {
    let battery = battery();
    let setpoint = battery.profile.quantity(Quantity::BatterySetpointW).unwrap().clone();
    let mut rng = seed;
    let mut t = Tally::default();
    while t.requests < requests {
        let r = splitmix(&mut rng);
        if r.is_multiple_of(10) {
            // a setpoint somewhere in, or well outside, the point's limits
            let target = (r >> 8) as i64 % 18_001 - 9_000;
            let Some(goal) = clamp(&setpoint, target as f64) else {
                continue;
            };
            t.requests += 1;
            let written = write_value(link, &battery, &setpoint, goal).await;
            // the read-back, when the write went through
            if written.is_ok()
                || matches!(&written, Err(ModbusError::Link { what, .. } | ModbusError::Exception { what, .. }) if what.starts_with("read"))
            {
                t.requests += 1;
            }
            match written {
                Ok(true) => {
                    t.writes_confirmed += 1;
                    assert_eq!(
                        f64::from(device.setpoint()),
                        goal,
                        "confirmed, but the device holds another value"
                    );
                }
                Ok(false) => *t.failed.entry("read back differs".into()).or_default() += 1,
                Err(e) => t.fail(&e),
            }
            continue;
        }
        let function = if r & 0x100 == 0 { 3 } else { 4 };
        let table = if function == 3 { Table::Holding } else { Table::Input };
        // away from the setpoint's registers, whose value the writes change
        let address = 200 + ((r >> 16) % 64) as u16;
        let count = 1 + ((r >> 32) % 3) as u16;
        t.requests += 1;
        match link.read(table, address, count).await {
            Ok(words) => {
                let want: Vec<u16> = (address..address + count).map(|a| truth(function, a)).collect();
                assert_eq!(words, want, "WRONG VALUE: {table:?} {address}+{count}");
                t.ok += 1;
            }
            Err(e) => t.fail(&e),
        }
    }
    t
}

/// The storm is over: the same link reads right again.
async fn recovers(link: &mut Link, device: &Faulty) {
    device.calm();
    // a late answer may still be on its way
    let _ = link.read(Table::Input, 300, 1).await;
    let _ = link.read(Table::Input, 300, 1).await;
    for a in 0..20 {
        assert_eq!(
            link.read(Table::Input, 300 + a, 2).await.unwrap(),
            vec![truth(4, 300 + a), truth(4, 301 + a)]
        );
    }
}

fn check(device: &Faulty, mix: Mix) {
    let st = device.state.lock().unwrap();
    for v in &st.written {
        assert!(
            (LIMITS.0..=LIMITS.1).contains(v),
            "a setpoint of {v} was written, outside {LIMITS:?}"
        );
    }
    for (fault, _) in mix {
        assert!(st.played.get(fault).copied().unwrap_or(0) > 0, "{fault:?} never played");
    }
}

#[tokio::test(start_paused = true)]
async fn rtu_fault_storm_gives_no_wrong_value() {
    let timeout = Duration::from_millis(100);
    let device = Faulty::new(1, 21, RTU_MIX, timeout);
    let (client, server) = tokio::io::duplex(4_096);
    tokio::spawn(device.clone().serve_rtu(server));
    let bus = gridshare_gateway::modbus::Bus::rtu_over("storm-line", 19_200, client, Duration::ZERO);
    let mut link = bus.link(1, timeout);
    let t = storm(&mut link, &device, 7, 6_000).await;
    recovers(&mut link, &device).await;
    check(&device, RTU_MIX);
    assert!(t.requests >= 6_000);
    eprintln!(
        "RTU storm: {t:?}\nfaults played: {:?}",
        device.state.lock().unwrap().played
    );
    assert!(t.ok > 3_000 && t.writes_confirmed > 100, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_fault_storm_gives_no_wrong_value() {
    let timeout = Duration::from_millis(25);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for i in 0..4u64 {
        let device = Faulty::new(1, 100 + i, TCP_MIX, timeout);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(device.clone().serve_tcp(listener));
        tasks.push(tokio::spawn(async move {
            let mut link = Link::new(addr, 1, timeout, Duration::ZERO);
            let t = storm(&mut link, &device, 1_000 + i, 1_200).await;
            recovers(&mut link, &device).await;
            check(&device, TCP_MIX);
            t
        }));
    }
    let mut total = Tally::default();
    for task in tasks {
        total.add(task.await.unwrap());
    }
    assert!(
        total.requests >= 4_800,
        "with the RTU storm's 6000, at least 10,000 requests"
    );
    eprintln!("TCP storm: {total:?} in {:?}", started.elapsed());
    assert!(total.ok > 3_000 && total.writes_confirmed > 100, "{total:?}");
}

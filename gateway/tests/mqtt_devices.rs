//! Devices that publish JSON on the home's own MQTT broker, through a real Mosquitto
//! (`GRIDSHARE_TEST_MQTT_URL`; skipped without it outside CI, a failure under `CI=true`): a
//! payload of each kind, written out from the vendor's documentation, published as the device
//! would and read back through the shipped profile (`hardware/mqtt/`) into a telemetry sample;
//! a payload that is not JSON, a missing path and a value of the wrong type are named errors for
//! their points and leave their quantities out (never a zero) while the reader keeps going; a
//! retained message is not a reading; a device that stops publishing is unreachable.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::time::Duration;

use gridshare_domain::topics::Broker;
use gridshare_domain::wire::{DeviceStatus, Quality, TelemetrySample};
use gridshare_domain::{Timestamp, W, Wh};
use gridshare_gateway::config::PushDeviceConfig;
use gridshare_gateway::push::{Feed, PushDevice, PushProfile, Readers};
use rumqttc::{AsyncClient, MqttOptions, QoS};

fn profile(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../hardware/mqtt")
        .join(file)
}

fn device(name: &str, file: &str, broker: &str, topic: &str, stale_after: Duration) -> PushDevice {
    PushDevice {
        config: PushDeviceConfig {
            name: name.into(),
            profile: profile(file),
            serial: None,
            baud: 115_200,
            broker: Some(broker.into()),
            topic: Some(topic.into()),
            stale_after,
        },
        profile: PushProfile::load(&profile(file)).unwrap(),
    }
}

/// A client publishing as the devices do (QoS 0, not retained, unless said).
struct Publisher(AsyncClient);

impl Publisher {
    fn connect(url: &str, id: &str) -> Self {
        let b = Broker::parse(url).unwrap();
        let mut opts = MqttOptions::new(id, b.host, b.port);
        if let Some(user) = b.username {
            opts.set_credentials(user, b.password.unwrap_or_default());
        }
        let (client, mut events) = AsyncClient::new(opts, 64);
        tokio::spawn(async move { while events.poll().await.is_ok() {} });
        Self(client)
    }

    async fn send(&self, topic: &str, payload: &str) {
        self.0.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    }

    async fn retain(&self, topic: &str, payload: &str) {
        self.0.publish(topic, QoS::AtLeastOnce, true, payload).await.unwrap();
    }
}

fn sample(feed: &Feed) -> TelemetrySample {
    feed.sample(Timestamp(0)).unwrap()
}

/// Waits (up to 10 s) until `feed`'s sample passes `ok`, publishing `again` meanwhile (the
/// reader may not have subscribed yet: the broker keeps nothing for it).
async fn until(feed: &Feed, again: impl AsyncFn(), ok: impl Fn(&TelemetrySample) -> bool) -> TelemetrySample {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        again().await;
        tokio::time::sleep(Duration::from_millis(150)).await;
        let s = sample(feed);
        if ok(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: {s:?} {:?}",
            feed.device().config.name,
            feed.values()
        );
    }
}

fn unique(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        .into()
}

fn broker() -> Option<String> {
    gridshare_testkit::service(gridshare_testkit::MQTT_URL, "Mosquitto")
}

fn start(devices: Vec<PushDevice>) -> Readers {
    gridshare_gateway::push::start(devices, &unique("gs-test-local"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payload_of_each_kind_reads_back_through_its_profile() {
    let Some(url) = broker() else { return };
    let p = Publisher::connect(&url, &unique("gs-test-devices"));
    let t = unique("home");
    let fresh = Duration::from_secs(60);
    let readers = start(vec![
        device("sml", "tasmota-sml.toml", &url, &format!("{t}-sml"), fresh),
        device("pow", "tasmota-energy-plug.toml", &url, &format!("{t}-pow"), fresh),
        device("pro3em", "shelly-pro-3em.toml", &url, &format!("{t}-pro3em"), fresh),
        device("plugs", "shelly-plus-plug-s.toml", &url, &format!("{t}-plugs"), fresh),
        device("zplug", "zigbee2mqtt-plug.toml", &url, &format!("{t}-zplug"), fresh),
    ]);
    let [sml, pow, pro3em, plugs, zplug] = <[Feed; 5]>::try_from(readers.feeds.clone()).unwrap();

    // Tasmota SML reader, the usual meter script's names: kWh counters, signed power in W
    let s = until(
        &sml,
        async || {
            p.send(
                &format!("tele/{t}-sml/SENSOR"),
                r#"{"Time":"2024-06-11T12:00:00","SML":{"Total_in":12345.6789,"Total_out":2345.0012,"Power_curr":-1834,"Meter_Id":"0a01454d480000b8b0e1"}}"#,
            )
            .await
        },
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!(s.power_w, Some(W(-1_834)));
    assert_eq!(s.energy_in_wh, Some(Wh(12_345_679)));
    assert_eq!(s.energy_out_wh, Some(Wh(2_345_001)));
    assert_eq!(s.quality, Quality::Good);

    // Tasmota plug: ENERGY.Power in W, ENERGY.Total in kWh
    let s = until(
        &pow,
        async || {
            p.send(
                &format!("tele/{t}-pow/SENSOR"),
                r#"{"Time":"2024-06-11T12:00:00","ENERGY":{"TotalStartTime":"2023-01-05T10:11:12","Total":153.412,"Yesterday":1.204,"Today":0.318,"Period":2,"Power":87,"ApparentPower":95,"ReactivePower":38,"Factor":0.92,"Voltage":231,"Current":0.411}}"#,
            )
            .await
        },
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh), (Some(W(87)), Some(Wh(153_412))));

    // Shelly Pro 3EM: power from em:0, counters (Wh) from emdata:0, on two topics
    let s = until(
        &pro3em,
        async || {
            p.send(
                &format!("{t}-pro3em/status/em:0"),
                r#"{"id":0,"a_current":4.028,"a_voltage":229.8,"a_act_power":905.3,"a_aprt_power":925.6,"a_pf":0.98,"b_current":1.014,"b_voltage":231.2,"b_act_power":-211.6,"b_aprt_power":234.4,"b_pf":0.9,"c_current":0.473,"c_voltage":230.6,"c_act_power":98.1,"c_aprt_power":109.1,"c_pf":0.9,"n_current":null,"total_current":5.515,"total_act_power":791.8,"total_aprt_power":1269.1,"user_calibrated_phase":[]}"#,
            )
            .await;
            p.send(
                &format!("{t}-pro3em/status/emdata:0"),
                r#"{"id":0,"a_total_act_energy":1806312.33,"a_total_act_ret_energy":102.46,"b_total_act_energy":1009871.12,"b_total_act_ret_energy":803312.5,"c_total_act_energy":781220.05,"c_total_act_ret_energy":45.17,"total_act":3597403.5,"total_act_ret":803460.13}"#,
            )
            .await;
        },
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!(s.power_w, Some(W(792)));
    assert_eq!(
        (s.energy_in_wh, s.energy_out_wh),
        (Some(Wh(3_597_404)), Some(Wh(803_460)))
    );

    // Shelly Plus Plug S: switch:0's apower (W) and aenergy.total (Wh)
    let s = until(
        &plugs,
        async || {
            p.send(
                &format!("{t}-plugs/status/switch:0"),
                r#"{"id":0,"source":"init","output":true,"apower":1203.4,"voltage":229.1,"current":5.254,"aenergy":{"total":48211.337,"by_minute":[20.058,20.043,19.998],"minute_ts":1718107200},"temperature":{"tC":41.2,"tF":106.2}}"#,
            )
            .await
        },
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh), (Some(W(1_203)), Some(Wh(48_211))));

    // Zigbee2MQTT plug: power (W), energy (kWh)
    let s = until(
        &zplug,
        async || {
            p.send(
                &format!("zigbee2mqtt/{t}-zplug"),
                r#"{"child_lock":"UNLOCK","current":0.29,"energy":12.78,"indicator_mode":"off/on","linkquality":138,"power":61,"power_outage_memory":"restore","state":"ON","voltage":232}"#,
            )
            .await
        },
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh), (Some(W(61)), Some(Wh(12_780))));
    assert_eq!(s.kind, gridshare_domain::wire::DeviceKind::SubMeter);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_payloads_are_named_errors_and_the_reader_goes_on() {
    let Some(url) = broker() else { return };
    let p = Publisher::connect(&url, &unique("gs-test-bad"));
    let t = unique("plug");
    let readers = start(vec![device(
        "pow",
        "tasmota-energy-plug.toml",
        &url,
        &t,
        Duration::from_secs(60),
    )]);
    let feed = readers.feeds[0].clone();
    let topic = format!("tele/{t}/SENSOR");
    let good = r#"{"ENERGY":{"Total":1.5,"Power":40,"Voltage":230}}"#;
    until(
        &feed,
        async || p.send(&topic, good).await,
        |s| s.status == DeviceStatus::Ok,
    )
    .await;

    let error_of = |point: &str| {
        feed.values()
            .into_iter()
            .find(|(n, _)| n == point)
            .unwrap()
            .1
            .err()
            .map(|e| e.to_string())
    };
    // not JSON (a device cut off mid-message): every point of the topic says so
    let s = until(
        &feed,
        async || p.send(&topic, r#"{"ENERGY":{"Total":1.5,"Pow"#).await,
        |s| s.status == DeviceStatus::Fault,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh, s.quality), (None, None, Quality::Suspect));
    let e = error_of("power").unwrap();
    assert!(e.starts_with(&format!("payload on {topic} is not JSON: ")), "{e}");

    // the power missing (the energy still reads), then the power as text
    let s = until(
        &feed,
        async || p.send(&topic, r#"{"ENERGY":{"Total":1.6,"Voltage":230}}"#).await,
        |s| s.energy_in_wh == Some(Wh(1_600)),
    )
    .await;
    assert_eq!((s.power_w, s.status), (None, DeviceStatus::Fault));
    assert_eq!(
        error_of("power").unwrap(),
        format!("ENERGY.Power is not in the payload on {topic}")
    );
    let s = until(
        &feed,
        async || {
            p.send(&topic, r#"{"ENERGY":{"Total":1.7,"Power":"40","Voltage":230}}"#)
                .await
        },
        |s| s.energy_in_wh == Some(Wh(1_700)),
    )
    .await;
    assert_eq!(s.power_w, None);
    assert_eq!(
        error_of("power").unwrap(),
        format!("ENERGY.Power on {topic} is a string, not a number")
    );
    // an optional point missing is no fault; its wrong type is
    let s = until(
        &feed,
        async || p.send(&topic, r#"{"ENERGY":{"Total":1.8,"Power":41}}"#).await,
        |s| s.energy_in_wh == Some(Wh(1_800)),
    )
    .await;
    assert_eq!(
        (s.power_w, s.status, s.quality),
        (Some(W(41)), DeviceStatus::Ok, Quality::Good)
    );
    let s = until(
        &feed,
        async || {
            p.send(&topic, r#"{"ENERGY":{"Total":1.9,"Power":42,"Voltage":null}}"#)
                .await
        },
        |s| s.energy_in_wh == Some(Wh(1_900)),
    )
    .await;
    assert_eq!((s.power_w, s.status), (Some(W(42)), DeviceStatus::Fault));
    // and good again: the reader never stopped
    let s = until(
        &feed,
        async || p.send(&topic, good).await,
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh), (Some(W(40)), Some(Wh(1_500))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_is_unreachable_and_a_retained_message_is_not_a_reading() {
    let Some(url) = broker() else { return };
    let p = Publisher::connect(&url, &unique("gs-test-stale"));
    let t = unique("z");
    let topic = format!("zigbee2mqtt/{t}");
    // what the broker kept from before the gateway started: an old reading, not a live one
    p.retain(&topic, r#"{"power":999,"energy":99.9}"#).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let readers = start(vec![device(
        "zplug",
        "zigbee2mqtt-plug.toml",
        &url,
        &t,
        Duration::from_secs(2),
    )]);
    let feed = readers.feeds[0].clone();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(sample(&feed).status, DeviceStatus::Unreachable, "{:?}", feed.values());

    let s = until(
        &feed,
        async || p.send(&topic, r#"{"power":12.4,"energy":0.5}"#).await,
        |s| s.status == DeviceStatus::Ok,
    )
    .await;
    assert_eq!((s.power_w, s.energy_in_wh), (Some(W(12)), Some(Wh(500))));
    // it stops publishing: unreachable after its 2 s, with no values
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let s = sample(&feed);
    assert_eq!(
        (s.status, s.power_w, s.energy_in_wh),
        (DeviceStatus::Unreachable, None, None)
    );
    // clear the retained message
    p.retain(&topic, "").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
}

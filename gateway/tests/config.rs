//! The gateway's configuration file: the example in the repository loads, and bad files are
//! refused with the file, line and key, or the device, named.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::Path;

use gridshare_gateway::config::Config;

fn example() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml")).unwrap()
}

#[test]
fn the_example_config_loads_with_its_devices() {
    let (cfg, devices) = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml")).unwrap();
    assert_eq!(cfg.gateway.id, 7);
    assert_eq!(
        devices.iter().map(|d| d.config.name.as_str()).collect::<Vec<_>>(),
        ["grid", "pv", "battery", "ev"]
    );
    assert_eq!(devices[0].profile.device.name, "Eastron SDM630");
    assert!(cfg.agent.enabled && cfg.agent.battery_reserve_percent == 30);
    assert_eq!(devices[3].config.serial.as_deref(), Some(Path::new("/dev/ttyUSB0")));
}

fn load_text(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    // profiles are found relative to the file: point them at the repository's
    let hardware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware");
    std::fs::write(&path, text.replace("../hardware", hardware.to_str().unwrap())).unwrap();
    Config::load(&path).unwrap_err().to_string()
}

#[test]
fn bad_configs_are_named_precisely() {
    let err = load_text(&example().replace("telemetry_period_s = 2", "telemetry_period = 2"));
    assert!(
        err.contains("gw.toml") && err.contains("telemetry_period") && err.contains("line 8"),
        "{err}"
    );
    let err = load_text(&example().replace("telemetry_period_s = 2", "telemetry_period_s = 9"));
    assert!(err.contains("telemetry_period_s: 1 to 5"), "{err}");
    let err = load_text(&example().replace("eastron-sdm630.toml", "missing.toml"));
    assert!(err.contains("device \"grid\"") && err.contains("missing.toml"), "{err}");
    let err = load_text(&example().replace("name = \"pv\"", "name = \"grid\""));
    assert!(err.contains("unique"), "{err}");
    let port_line = example().lines().position(|l| l.starts_with("port = 502")).unwrap() + 1;
    let err = load_text(&example().replace("port = 502", "port = 70000"));
    assert!(
        err.contains("port") && err.contains(&format!("line {port_line}")),
        "{err}"
    );
    let err = load_text(&example().replace("battery_reserve_percent = 30", "battery_reserve_percent = 130"));
    assert!(err.contains("battery_reserve_percent"), "{err}");
    let err = load_text(&example().replace("serial = \"/dev/ttyUSB0\"", "serial = \"/dev/ttyUSB0\"\nhost = \"x\""));
    assert!(err.contains("device \"ev\"") && err.contains("not both"), "{err}");
    let err = load_text(&example().replace("serial = \"/dev/ttyUSB0\"", ""));
    assert!(err.contains("not neither"), "{err}");
    let err = load_text(&example().replace("parity = \"none\"", "parity = \"mark\""));
    assert!(err.contains("parity") && err.contains("mark"), "{err}");
    let err = load_text(&example().replace("max_buy_price = 280000", "max_buy_price = 80000"));
    assert!(
        err.contains("min_sell_price 90000 is above max_buy_price 80000"),
        "{err}"
    );
    let err = load_text(&example().replace("interval_minutes = 15", "interval_minutes = 10"));
    assert!(err.contains("agent.interval_minutes"), "{err}");
    let err = load_text(&example().replace("mqtts://market", "http://market"));
    assert!(err.contains("mqtt.url"), "{err}");
    let err = load_text(&example().replace("market_key = \"02f9", "market_key = \"xxf9"));
    assert!(err.contains("mqtt.market_key"), "not a public key: {err}");
    let err = load_text(&example().replace("# market_key_file", "market_key_file"));
    assert!(err.contains("not both"), "{err}");
}

/// The market's key from a file, read when asked (at start): its errors name the file.
#[test]
fn the_market_key_can_come_from_a_file() {
    let (cfg, _) = Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("gateway.example.toml")).unwrap();
    let inline = cfg.mqtt.market_key().unwrap().expect("the example has one");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("market.pub");
    let mut mqtt = cfg.mqtt.clone();
    mqtt.market_key = None;
    mqtt.market_key_file = Some(file.clone());
    assert!(mqtt.market_key().unwrap_err().contains("market.pub"));
    std::fs::write(&file, format!("{}\n", inline.to_hex())).unwrap();
    assert_eq!(mqtt.market_key().unwrap(), Some(inline));
}

/// The example's pushing devices (commented out there), uncommented.
fn example_with_pushed_devices() -> String {
    let text = example();
    let start = text.find("# [[devices]]\n# name = \"p1\"").unwrap();
    let end = text.find("# The homeowner's trading agent").unwrap();
    let block: String = text[start..end]
        .lines()
        .filter(|l| l.starts_with("# ") && (l.contains(" = ") || l.starts_with("# [[")))
        .map(|l| format!("{}\n", &l[2..]))
        .collect();
    format!("{}{block}\n{}", &text[..start], &text[end..])
}

fn load_ok(text: &str) -> gridshare_gateway::config::Loaded {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.toml");
    let hardware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware");
    std::fs::write(&path, text.replace("../hardware", hardware.to_str().unwrap())).unwrap();
    Config::load_all(&path).unwrap()
}

#[test]
fn p1_and_mqtt_devices_load_beside_the_modbus_ones() {
    let loaded = load_ok(&example_with_pushed_devices());
    let names: Vec<_> = loaded.devices.iter().map(|d| d.config.name.as_str()).collect();
    assert_eq!(names, ["grid", "pv", "battery", "ev"]);
    assert_eq!(loaded.config.devices.len(), 4);
    let [p1, plug] = <[_; 2]>::try_from(loaded.pushed).unwrap();
    assert_eq!(p1.config.serial.as_deref(), Some(Path::new("/dev/ttyUSB1")));
    assert_eq!((p1.config.baud, p1.config.stale_after.as_secs()), (115_200, 10));
    assert_eq!(p1.profile.device.source, gridshare_gateway::push::Source::P1);
    assert_eq!(plug.config.broker.as_deref(), Some("mqtt://192.168.1.2:1883"));
    assert_eq!(plug.config.stale_after.as_secs(), 60);
    let topics: Vec<_> = plug
        .profile
        .points
        .iter()
        .filter_map(|p| p.topic_for(&plug.profile.device, plug.config.topic.as_deref().unwrap()))
        .collect();
    assert_eq!(topics, ["shellyplusplugs-80646fe1c2d4/status/switch:0"; 2]);
}

#[test]
fn pushing_devices_with_keys_of_another_source_or_a_wrong_profile_are_refused_by_name() {
    let text = example_with_pushed_devices();
    let err = load_text(&text.replace("serial = \"/dev/ttyUSB1\"", "serial = \"/dev/ttyUSB1\"\nunit = 3"));
    assert!(err.contains("device \"p1\": unit is not a key of a P1 device"), "{err}");
    let err = load_text(&text.replace("serial = \"/dev/ttyUSB1\"", "host = \"x\""));
    assert!(err.contains("device \"p1\": host is not a key"), "{err}");
    let err = load_text(&text.replace("serial = \"/dev/ttyUSB1\"\n", ""));
    assert!(err.contains("needs serial"), "{err}");
    let err = load_text(&text.replace("broker = \"mqtt://192.168.1.2:1883\"", "broker = \"http://x\""));
    assert!(err.contains("device \"dishwasher\": broker"), "{err}");
    let err = load_text(&text.replace("topic = \"shellyplusplugs-80646fe1c2d4\"", "topic = \"shelly/#\""));
    assert!(err.contains("no wildcards"), "{err}");
    let err = load_text(&text.replace("stale_after_s = 60", "stale_after_s = 0"));
    assert!(err.contains("stale_after_s 1 to 3600"), "{err}");
    let err = load_text(&text.replace("hardware/mqtt/shelly-plus-plug-s.toml", "hardware/p1/dsmr5.toml"));
    assert!(err.contains("its profile is for a P1 device, not Mqtt"), "{err}");
    let err = load_text(&text.replace("hardware/p1/dsmr5.toml", "hardware/eastron-sdm630.toml"));
    assert!(
        err.contains("device \"p1\"") && err.contains("eastron-sdm630.toml"),
        "{err}"
    );
    // a Modbus device with a key of a pushing one
    let err = load_text(&text.replace("host = \"192.168.1.21\"", "host = \"192.168.1.21\"\ntopic = \"x\""));
    assert!(
        err.contains("device \"pv\": topic is not a key of a Modbus device"),
        "{err}"
    );
}

#[test]
fn every_p1_and_mqtt_profile_loads_and_names_its_document() {
    let hardware = Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware");
    let mqtt = gridshare_gateway::push::profile::load_dir(&hardware.join("mqtt")).unwrap();
    let p1 = gridshare_gateway::push::profile::load_dir(&hardware.join("p1")).unwrap();
    assert!(mqtt.len() >= 5, "{}", mqtt.len());
    assert_eq!(p1.len(), 1);
    for (path, p) in mqtt.iter().chain(&p1) {
        assert!(p.device.document.len() > 20, "{}", path.display());
        assert!(
            p.points.iter().any(|pt| pt.quantity.is_some()),
            "{}: feeds no telemetry",
            path.display()
        );
    }
}

#[test]
fn bad_push_profiles_are_refused_by_name() {
    use gridshare_gateway::push::PushProfile;
    let good = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../hardware/mqtt/tasmota-energy-plug.toml"),
    )
    .unwrap();
    let err = |text: &str| PushProfile::parse(Path::new("x.toml"), text).unwrap_err().to_string();
    let e = err(&good.replace("scale = 1000.0\nunit = \"Wh\"", "unit = \"kWh\""));
    assert!(e.contains("point \"energy\"") && e.contains("scale to Wh"), "{e}");
    let e = err(&good.replace("path = \"ENERGY.Power\"", "path = \"ENERGY..Power\""));
    assert!(e.contains("point \"power\"") && e.contains("not a JSON path"), "{e}");
    let e = err(&good.replace("path = \"ENERGY.Power\"", "obis = \"1-0:1.7.0\""));
    assert!(e.contains("obis and obis_unit are for P1 devices"), "{e}");
    let e = err(&good.replace("topic = \"tele/{topic}/SENSOR\"", "topic = \"tele/+/SENSOR\""));
    assert!(e.contains("no wildcards"), "{e}");
    let e = err(&good.replace("document = ", "documents = "));
    assert!(e.contains("documents"), "{e}");
}

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

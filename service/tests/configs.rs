//! The configurations the compose deployment ships (`deploy/*.toml`) are loaded and checked by the
//! programs that read them, with the environment `docker-compose.yml` gives them, and the files,
//! services and paths the compose file names exist. A deployment that only fails when someone
//! runs `docker compose up` is found here instead.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use gridshare::config::{Config, SETTLER_KEY_ENV};

fn root() -> PathBuf {
    gridshare_testkit::workspace_root()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Where both images put the repository's `hardware/` (`COPY --from=build /src/hardware …`).
const HARDWARE_IN_IMAGE: &str = "/usr/share/gridshare/hardware/";

/// The compose file's services, each as the text of its block (enough to find what it mounts,
/// runs and sets without a YAML parser: the file keeps one service per two-space-indented key).
fn services(compose: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_services = false;
    for line in compose.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_services = line.trim_end() == "services:";
            current = None;
            continue;
        }
        if !in_services {
            continue;
        }
        if let Some(name) = line.strip_prefix("  ").and_then(|l| l.strip_suffix(':'))
            && !name.starts_with(' ')
            && !name.starts_with('#')
        {
            current = Some(name.to_owned());
            out.insert(name.to_owned(), String::new());
            continue;
        }
        if let Some(name) = &current {
            let block = out.get_mut(name).unwrap();
            block.push_str(line);
            block.push('\n');
        }
    }
    out
}

/// `KEY=value` lines of `deploy/env.example`: what `.env` holds in a fresh deployment.
fn env_example() -> BTreeMap<String, String> {
    read(&root().join("deploy/env.example"))
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// Replaces compose's `${VAR}` and `${VAR:?message}` with the value from `vars`.
fn interpolate(value: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .unwrap_or_else(|| panic!("unterminated ${{ in {value:?}"))
            + start;
        let name = rest[start + 2..end].split(":?").next().unwrap();
        let v = vars
            .get(name)
            .unwrap_or_else(|| panic!("{value:?} uses {name}, which deploy/env.example does not set"));
        out.push_str(v);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The `GRIDSHARE_*` variables a service block sets, interpolated.
fn gridshare_env(block: &str, vars: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    block
        .lines()
        .filter_map(|l| l.trim().split_once(": "))
        .filter(|(k, _)| k.starts_with("GRIDSHARE_"))
        .map(|(k, v)| (k.to_owned(), interpolate(v.trim(), vars)))
        .collect()
}

/// `(host path, container path)` of each bind mount from the repository (`./…`) in a block.
fn bind_mounts(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- ./"))
        .map(|m| {
            let mut parts = m.split(':');
            let host = parts.next().unwrap().to_owned();
            let target = parts
                .next()
                .unwrap_or_else(|| panic!("mount {m:?} has no target"))
                .to_owned();
            (host, target)
        })
        .collect()
}

/// The ids of a deploy script's `for n in …; do` loop over the example gateways.
fn loop_ids(script: &str) -> Vec<String> {
    let text = read(&root().join(script));
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("for n in "))
        .unwrap_or_else(|| panic!("{script} has no `for n in` loop"));
    line.trim_end_matches("; do")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

/// Every `deploy/*.toml` by name.
fn deploy_tomls() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root().join("deploy"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_deploy_toml_is_a_known_config_and_mounted_by_compose() {
    let names = deploy_tomls();
    assert!(names.contains(&"market.toml".to_owned()), "{names:?}");
    // A new file here needs a test that loads it: the market's config below, the gateways'
    // further down.
    for n in &names {
        assert!(
            n == "market.toml" || (n.starts_with("gateway-") && n.ends_with(".toml")),
            "deploy/{n}: no test loads it (add it to service/tests/configs.rs)"
        );
    }
    let compose = read(&root().join("docker-compose.yml"));
    let services = services(&compose);
    for n in &names {
        let host = format!("deploy/{n}");
        assert!(
            services
                .values()
                .any(|b| bind_mounts(b).iter().any(|(h, _)| *h == host)),
            "{host} is not mounted by any service in docker-compose.yml"
        );
    }
}

#[test]
fn compose_references_exist() {
    let compose = read(&root().join("docker-compose.yml"));
    let services = services(&compose);
    for name in [
        "timescaledb",
        "mosquitto",
        "anvil",
        "init",
        "market",
        "gateway-1",
        "gateway-2",
        "simulator-1",
        "simulator-2",
    ] {
        assert!(
            services.contains_key(name),
            "docker-compose.yml has no service {name}: {:?}",
            services.keys()
        );
    }
    for (service, block) in &services {
        for (host, _) in bind_mounts(block) {
            assert!(
                root().join(&host).exists(),
                "service {service} mounts ./{host}, which does not exist"
            );
        }
        for l in block.lines() {
            if let Some(file) = l.trim().strip_prefix("dockerfile: ") {
                assert!(
                    root().join(file).is_file(),
                    "service {service} builds {file}, which does not exist"
                );
            }
            // the simulators' device profiles, as the images hold them
            let mut rest = l;
            while let Some(at) = rest.find(HARDWARE_IN_IMAGE) {
                let tail = &rest[at + HARDWARE_IN_IMAGE.len()..];
                let file: String = tail
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | ',' | ' ' | ']'))
                    .collect();
                assert!(
                    root().join("hardware").join(&file).is_file(),
                    "service {service} names {HARDWARE_IN_IMAGE}{file}: hardware/{file} does not exist"
                );
                rest = tail;
            }
            // the only six-space keys of the file are depends_on entries: they name services
            if let Some(dep) = l.strip_prefix("      ").and_then(|d| d.strip_suffix(':'))
                && !dep.starts_with(' ')
            {
                assert!(
                    services.contains_key(dep),
                    "service {service} depends on {dep}, which is not a service"
                );
            }
        }
    }
    for dockerfile in ["deploy/market.Dockerfile", "deploy/gateway.Dockerfile"] {
        let text = read(&root().join(dockerfile));
        assert!(
            text.contains(&format!(
                "COPY --from=build /src/hardware {}",
                HARDWARE_IN_IMAGE.trim_end_matches('/')
            )),
            "{dockerfile} no longer puts hardware/ at {HARDWARE_IN_IMAGE}, which the configs name"
        );
    }
}

#[test]
fn the_market_config_is_valid_with_the_compose_environment() {
    let compose = read(&root().join("docker-compose.yml"));
    let services = services(&compose);
    let vars = env_example();
    // `init` defines the environment (`&market-env`) and `market` reuses it.
    assert!(
        services["market"].contains("environment: *market-env"),
        "{}",
        services["market"]
    );
    let env = gridshare_env(&services["init"], &vars);
    let config_path = env.get("GRIDSHARE_CONFIG").expect("init sets GRIDSHARE_CONFIG");
    for service in ["init", "market"] {
        assert!(
            bind_mounts(&services[service])
                .iter()
                .any(|(h, t)| h == "deploy/market.toml" && t == config_path),
            "service {service} does not mount deploy/market.toml at {config_path} (GRIDSHARE_CONFIG)"
        );
    }

    let file = root().join("deploy/market.toml");
    // `gridshare check-config` and `serve` read the file, then the environment: the settler key
    // through the loader, the database and broker through the command line's variables.
    let mut cfg = Config::load_with_env(Some(&file), |name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("deploy/market.toml: {e}"));
    assert_eq!(Some(&env["GRIDSHARE_SETTLER_KEY"]), vars.get("SETTLER_KEY"));
    assert!(env.contains_key(SETTLER_KEY_ENV));
    cfg.database = Some(env["GRIDSHARE_DATABASE"].clone());
    cfg.mqtt.url = Some(env["GRIDSHARE_MQTT_URL"].clone());
    cfg.validate()
        .unwrap_or_else(|e| panic!("deploy/market.toml with the compose environment: {e}"));

    // what a reader of the compose file expects of it
    assert_eq!(
        cfg.http.listen.to_string(),
        "0.0.0.0:8080",
        "the port compose publishes and probes"
    );
    assert!(services["market"].contains("127.0.0.1:8080:8080"));
    assert_eq!(cfg.zones().len(), 1);
    assert_eq!(cfg.chain.rpc_url.as_deref(), Some("http://anvil:8545"));
    assert!(services["anvil"].contains("\"--port\", \"8545\""));
    assert_eq!(
        cfg.chain.settler_key.as_deref(),
        vars.get("SETTLER_KEY").map(String::as_str)
    );
    assert!(cfg.settlement.enabled);
    assert!(
        cfg.database_target().starts_with("postgres://gridshare:")
            && cfg.database_target().contains("@timescaledb:5432/"),
        "{}",
        cfg.database_target()
    );
    assert!(cfg.mqtt.url.as_deref().is_some_and(|u| u.ends_with("@mosquitto:1883")));
    // The data directory is the image's (GRIDSHARE_DATA_DIR), kept in the marketdata volume.
    let dockerfile = read(&root().join("deploy/market.Dockerfile"));
    assert!(dockerfile.contains("GRIDSHARE_DATA_DIR=/var/lib/gridshare"));
    assert!(services["market"].contains("- marketdata:/var/lib/gridshare\n"));
}

#[test]
fn the_market_config_without_its_settler_key_is_refused() {
    // The file relies on the environment for the key: without it, it must not pass as valid (a
    // node and no key cannot settle).
    let cfg = Config::load_with_env(Some(&root().join("deploy/market.toml")), |_| None).unwrap();
    let e = cfg.validate().unwrap_err().to_string();
    assert!(e.contains("chain.settler_key") && e.contains(SETTLER_KEY_ENV), "{e}");
}

#[test]
fn the_gateway_configs_load_with_the_images_hardware_profiles() {
    let compose = read(&root().join("docker-compose.yml"));
    let services = services(&compose);
    let gateways: Vec<String> = deploy_tomls()
        .into_iter()
        .filter(|n| n.starts_with("gateway-"))
        .collect();
    assert_eq!(gateways, ["gateway-1.toml", "gateway-2.toml"]);
    let dir = tempfile::tempdir().unwrap();
    for name in gateways {
        let n: u64 = name
            .trim_start_matches("gateway-")
            .trim_end_matches(".toml")
            .parse()
            .unwrap();
        // The profiles are named where the image holds them: point them at the repository's copy.
        let text = read(&root().join("deploy").join(&name));
        assert!(text.contains(HARDWARE_IN_IMAGE), "deploy/{name}");
        let local = dir.path().join(&name);
        let hardware = format!("{}/", root().join("hardware").display());
        std::fs::write(&local, text.replace(HARDWARE_IN_IMAGE, &hardware)).unwrap();
        let (cfg, devices) =
            gridshare_gateway::config::Config::load(&local).unwrap_or_else(|e| panic!("deploy/{name}: {e}"));

        assert_eq!(cfg.gateway.id, n, "deploy/{name}");
        assert_eq!(
            cfg.mqtt.username.as_deref(),
            Some(n.to_string().as_str()),
            "deploy/{name}: the broker's user is the id"
        );
        assert_eq!(cfg.mqtt.url, "mqtt://mosquitto:1883");
        assert_eq!(
            cfg.gateway.key_file,
            Path::new(&format!("/var/lib/gridshare-gateway/keys/{n}.hex"))
        );
        let names: Vec<&str> = devices.iter().map(|d| d.config.name.as_str()).collect();
        assert_eq!(names, ["grid", "pv"], "deploy/{name}");
        let simulator = format!("simulator-{n}");
        assert!(
            devices
                .iter()
                .all(|d| d.config.host.as_deref() == Some(simulator.as_str())),
            "deploy/{name}: devices not on {simulator}"
        );
        assert!(cfg.agent.enabled);

        // compose runs it as gateway-N, with this file where its command looks
        let block = services
            .get(&format!("gateway-{n}"))
            .unwrap_or_else(|| panic!("no service gateway-{n} for deploy/{name}"));
        let target = "/etc/gridshare/gateway.toml";
        assert!(block.contains(&format!("\"--config\", \"{target}\"")), "{block}");
        assert!(
            bind_mounts(block)
                .iter()
                .any(|(h, t)| *h == format!("deploy/{name}") && t == target),
            "gateway-{n} does not mount deploy/{name} at {target}"
        );
        assert!(
            block.contains(&format!("{simulator}:")),
            "gateway-{n} does not wait for {simulator}"
        );
        // the key, the commissioning and the broker login the one-shot services make for it
        for script in ["deploy/keys.sh", "deploy/init.sh"] {
            assert!(
                loop_ids(script).contains(&n.to_string()),
                "{script} does not cover gateway {n}"
            );
        }
        assert!(
            read(&root().join("deploy/mosquitto/passwd.sh")).contains(&format!("\"$f\" {n} ")),
            "deploy/mosquitto/passwd.sh makes no broker login {n}"
        );
    }
}

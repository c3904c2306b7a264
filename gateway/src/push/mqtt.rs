//! Reading devices that publish JSON on the home's own MQTT broker (Tasmota, Shelly Gen2+,
//! Zigbee2MQTT, P1 readers): one client per broker subscribes to every topic its devices'
//! profiles name, and each message gives the points on its topic their values or named errors.
//!
//! Retained messages are not taken: a broker keeps a device's last message after the device has
//! gone, and a reading from then is not a reading of now. The client reconnects (and subscribes
//! again) with a growing pause, as the caller drives its event loop.

use std::collections::BTreeMap;
use std::time::Duration;

use gridshare_domain::topics::{self, Broker};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

use super::profile::{JsonPath, PathError};
use super::{Feed, PointError};
use crate::modbus::Backoff;

/// The points of one device on one topic.
#[derive(Debug, Clone)]
pub struct Route {
    /// The topic.
    pub topic: String,
    /// The device.
    pub feed: Feed,
    /// Its points on this topic: index in the profile and path.
    pub points: Vec<(usize, String, JsonPath)>,
}

/// The routes of `feeds`, grouped by broker URL.
pub fn by_broker(feeds: &[Feed]) -> BTreeMap<String, Vec<Route>> {
    let mut out: BTreeMap<String, Vec<Route>> = BTreeMap::new();
    for feed in feeds {
        let c = &feed.device.config;
        let (Some(broker), Some(topic)) = (c.broker.clone(), c.topic.as_deref()) else {
            tracing::error!(device = %c.name, "MQTT device without broker or topic");
            continue;
        };
        let mut routes: BTreeMap<String, Vec<(usize, String, JsonPath)>> = BTreeMap::new();
        let info = &feed.device.profile.device;
        for (i, p) in feed.device.profile.points.iter().enumerate() {
            let (Some(t), Some(path)) = (p.topic_for(info, topic), p.path.as_deref()) else {
                continue;
            };
            // profiles are checked on load: every MQTT point has a path that parses
            if let Some(parsed) = JsonPath::parse(path) {
                routes.entry(t).or_default().push((i, path.to_owned(), parsed));
            }
        }
        out.entry(broker)
            .or_default()
            .extend(routes.into_iter().map(|(topic, points)| Route {
                topic,
                feed: feed.clone(),
                points,
            }));
    }
    out
}

/// What one message on `route`'s topic says of its points.
pub fn decode(route: &Route, payload: &[u8]) -> Vec<(usize, Result<f64, PointError>)> {
    let doc: Result<serde_json::Value, String> = serde_json::from_slice(payload).map_err(|e| e.to_string());
    let scale = |i: usize| route.feed.device.profile.points.get(i).map_or(1.0, |p| p.scale);
    route
        .points
        .iter()
        .map(|(i, path, parsed)| {
            let v = match &doc {
                Err(error) => Err(PointError::Payload {
                    topic: route.topic.clone(),
                    error: error.clone(),
                }),
                Ok(doc) => parsed.number(doc).map(|v| v * scale(*i)).map_err(|e| match e {
                    PathError::Missing => PointError::Missing {
                        topic: route.topic.clone(),
                        path: path.clone(),
                    },
                    PathError::WrongType(found) => PointError::WrongType {
                        topic: route.topic.clone(),
                        path: path.clone(),
                        found,
                    },
                }),
            };
            (*i, v)
        })
        .collect()
}

/// Reads `routes` from the broker at `url` for as long as the task runs.
pub async fn run(url: String, client_id: String, routes: Vec<Route>) {
    let broker = match Broker::parse(&url) {
        Ok(b) => b,
        Err(e) => {
            // checked when the configuration is loaded
            tracing::error!(error = %e, "local MQTT broker");
            return;
        }
    };
    let mut opts = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    opts.set_keep_alive(Duration::from_secs(10));
    opts.set_clean_session(true);
    opts.set_max_packet_size(256 * 1024, 256 * 1024);
    if let Some(user) = &broker.username {
        opts.set_credentials(user.clone(), broker.password.clone().unwrap_or_default());
    }
    if broker.tls {
        match topics::tls::client_config(None) {
            Ok(tls) => opts.set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
                tls,
            ))),
            Err(e) => {
                tracing::error!(error = %e, "local MQTT broker: TLS");
                return;
            }
        };
    }
    let topics: std::collections::BTreeSet<String> = routes.iter().map(|r| r.topic.clone()).collect();
    let (client, mut events) = AsyncClient::new(opts, topics.len() + 16);
    let shown = format!("{}:{}", broker.host, broker.port);
    let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!(broker = %shown, topics = topics.len(), "local MQTT broker connected");
                backoff.reset();
                for t in &topics {
                    if let Err(e) = client.try_subscribe(t.clone(), QoS::AtMostOnce) {
                        tracing::warn!(broker = %shown, topic = %t, error = %e, "subscribing");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.retain {
                    tracing::debug!(topic = %p.topic, "retained message not taken");
                    continue;
                }
                for r in routes.iter().filter(|r| r.topic == p.topic) {
                    let values = decode(r, &p.payload);
                    for (_, v) in &values {
                        if let Err(e) = v {
                            tracing::debug!(device = %r.feed.device.config.name, error = %e, "point");
                        }
                    }
                    r.feed.record(values);
                }
            }
            Ok(_) => {}
            Err(e) => {
                let delay = backoff.next_delay();
                tracing::warn!(broker = %shown, error = %e, retry_in = ?delay, "local MQTT broker");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

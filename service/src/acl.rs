//! Who may do what on the embedded broker: the access-control policy its front
//! ([`crate::broker`]) applies to every client's CONNECT, PUBLISH and SUBSCRIBE.
//!
//! - The service's own login ([`crate::broker::SERVICE_USER`]) may do everything.
//! - A gateway logs in with its id as user name (the bare number, as in the topics of
//!   `gridshare_domain::topics`). It may connect only with its own client id: the user name, or
//!   `gridshare-gw-<id>` (what `gateway run` sends); publish only on its own upstream topics
//!   (`Channel::is_upstream`); retain only on its own `status` topic (presence, and its last
//!   will); subscribe only to its own downstream topics, named exactly (no wildcards).
//! - A login whose name is not a gateway id has no rights: it is refused at CONNECT.
//! - What gateways retain is bounded: one topic each (its `status`), at most
//!   [`MAX_RETAINED_PAYLOAD`] bytes, and at most [`MAX_RETAINING_GATEWAYS`] gateways in all
//!   ([`RetainedBudget`]; with logins, the number of logins bounds it sooner).
//! - Without logins (an anonymous broker) a client is the gateway its client id names, with the
//!   same rights; nothing proves the claim, so give the broker logins wherever it is reachable.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use gridshare_domain::GatewayId;
use gridshare_domain::topics::{self, Channel};

/// The client id prefix `gateway run` connects with (`gridshare-gw-<id>`).
pub const GATEWAY_CLIENT_PREFIX: &str = "gridshare-gw-";

/// The largest payload a gateway may retain (its status, `online`/`offline`, or a signed status
/// envelope, fits many times over).
pub const MAX_RETAINED_PAYLOAD: usize = 4 * 1024;

/// How many gateways may have a retained message on the broker at once. Only matters without
/// logins (where any client id names a gateway); about one per connection the broker takes.
pub const MAX_RETAINING_GATEWAYS: usize = 10_000;

/// Whom a connection speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The market service: every topic.
    Service,
    /// One gateway: its own topics only.
    Gateway(GatewayId),
}

/// What the policy refused, named for the counter (`gridshare_mqtt_refused{reason}`) and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The CONNECT's user name or password is wrong, or missing on a broker with logins.
    #[error("wrong or missing user name or password")]
    BadLogin,
    /// The login is not a gateway id, so it has no topics.
    #[error("the login is not a gateway id")]
    NotAGateway,
    /// The client id is not the login's own.
    #[error("the client id is not the login's own (its user name, or gridshare-gw-<user name>)")]
    ClientId,
    /// The last will is outside the login's own upstream topics, or retained outside `status`.
    #[error("last will on a topic the login may not publish or retain on")]
    Will,
    /// A publish outside the login's own upstream topics.
    #[error("publish on a topic the login may not publish on")]
    Publish,
    /// A retained publish outside the login's own `status` topic.
    #[error("retained publish outside the login's own status topic")]
    Retain,
    /// A retained publish (or last will) larger than [`MAX_RETAINED_PAYLOAD`].
    #[error("retained payload over {MAX_RETAINED_PAYLOAD} bytes")]
    RetainSize,
    /// A retained publish (or last will) from one gateway more than [`MAX_RETAINING_GATEWAYS`].
    #[error("too many gateways retain messages already")]
    RetainCount,
    /// A subscription to anything but the login's own downstream topics.
    #[error("subscription outside the login's own downstream topics")]
    Subscribe,
}

impl Refusal {
    /// The reason label.
    pub const fn reason(self) -> &'static str {
        match self {
            Self::BadLogin => "bad_login",
            Self::NotAGateway => "not_a_gateway",
            Self::ClientId => "client_id",
            Self::Will => "will",
            Self::Publish => "publish",
            Self::Retain => "retain",
            Self::RetainSize => "retain_size",
            Self::RetainCount => "retain_count",
            Self::Subscribe => "subscribe",
        }
    }
}

/// The gateway a user name or client id names: canonical decimal only ("007" is not 7).
pub fn gateway_id(name: &str) -> Option<GatewayId> {
    let canonical = !name.is_empty()
        && name.len() <= 20
        && name.bytes().all(|b| b.is_ascii_digit())
        && !(name.len() > 1 && name.starts_with('0'));
    canonical.then(|| name.parse().ok().map(GatewayId)).flatten()
}

/// The gateway a client id names: `<id>` or `gridshare-gw-<id>`.
pub fn gateway_of_client_id(client_id: &str) -> Option<GatewayId> {
    gateway_id(client_id.strip_prefix(GATEWAY_CLIENT_PREFIX).unwrap_or(client_id))
}

impl Login {
    /// Whether this login may connect with `client_id`.
    pub fn may_use_client_id(self, client_id: &str) -> Result<(), Refusal> {
        match self {
            Self::Service => Ok(()),
            Self::Gateway(g) if gateway_of_client_id(client_id) == Some(g) => Ok(()),
            Self::Gateway(_) => Err(Refusal::ClientId),
        }
    }

    /// Whether this login may publish on `topic` (a last will included), `retain`ed or not.
    pub fn may_publish(self, topic: &str, retain: bool) -> Result<(), Refusal> {
        let Self::Gateway(me) = self else {
            return Ok(());
        };
        match topics::parse(topic) {
            Some((g, ch)) if g == me && ch.is_upstream() => {
                if retain && ch != Channel::Status {
                    Err(Refusal::Retain)
                } else {
                    Ok(())
                }
            }
            _ if retain => Err(Refusal::Retain),
            _ => Err(Refusal::Publish),
        }
    }

    /// Whether this login may subscribe to `filter`.
    pub fn may_subscribe(self, filter: &str) -> Result<(), Refusal> {
        let Self::Gateway(me) = self else {
            return Ok(());
        };
        // parse() takes no wildcard as a gateway id or a channel, so a filter with `+` or `#`
        // never passes
        match topics::parse(filter) {
            Some((g, ch)) if g == me && !ch.is_upstream() => Ok(()),
            _ => Err(Refusal::Subscribe),
        }
    }
}

/// Which gateways have left a retained message, up to a bound, so that what the broker retains
/// for gateways stays bounded in count (one topic each) as well as in size.
#[derive(Debug)]
pub struct RetainedBudget {
    max: usize,
    gateways: Mutex<HashSet<GatewayId>>,
}

impl RetainedBudget {
    /// Room for `max` gateways.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            gateways: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `login` may retain `payload_len` bytes (a publish its topic rights already
    /// allow). An empty payload clears what was retained and is always allowed.
    pub fn admit(&self, login: Login, payload_len: usize) -> Result<(), Refusal> {
        let Login::Gateway(g) = login else {
            return Ok(());
        };
        if payload_len == 0 {
            return Ok(());
        }
        if payload_len > MAX_RETAINED_PAYLOAD {
            return Err(Refusal::RetainSize);
        }
        // the set is only ever inserted into: a poisoned lock still holds a valid set
        let mut gateways = self.gateways.lock().unwrap_or_else(PoisonError::into_inner);
        if gateways.len() >= self.max && !gateways.contains(&g) {
            return Err(Refusal::RetainCount);
        }
        gateways.insert(g);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code
    use super::*;

    const G7: Login = Login::Gateway(GatewayId(7));

    #[test]
    fn a_gateway_publishes_only_on_its_own_upstream_topics() {
        for ch in Channel::ALL {
            let own = topics::topic(GatewayId(7), ch);
            let other = topics::topic(GatewayId(8), ch);
            assert_eq!(G7.may_publish(&own, false).is_ok(), ch.is_upstream(), "{own}");
            assert_eq!(G7.may_publish(&other, false), Err(Refusal::Publish), "{other}");
            assert!(Login::Service.may_publish(&other, true).is_ok());
        }
        assert_eq!(
            G7.may_publish("gridshare/v1/gw/07/telemetry", false),
            Err(Refusal::Publish)
        );
        assert_eq!(G7.may_publish("anything/else", false), Err(Refusal::Publish));
    }

    #[test]
    fn a_gateway_retains_only_its_own_status() {
        assert!(G7.may_publish("gridshare/v1/gw/7/status", true).is_ok());
        assert_eq!(
            G7.may_publish("gridshare/v1/gw/7/telemetry", true),
            Err(Refusal::Retain)
        );
        assert_eq!(G7.may_publish("gridshare/v1/gw/8/status", true), Err(Refusal::Retain));
        assert_eq!(G7.may_publish("junk/1", true), Err(Refusal::Retain));
    }

    #[test]
    fn a_gateway_subscribes_only_to_its_own_downlinks_without_wildcards() {
        for ch in Channel::ALL {
            let own = topics::topic(GatewayId(7), ch);
            assert_eq!(G7.may_subscribe(&own).is_ok(), !ch.is_upstream(), "{own}");
            assert!(G7.may_subscribe(&topics::topic(GatewayId(8), ch)).is_err());
        }
        for f in [
            "#",
            "+/#",
            "gridshare/#",
            "gridshare/v1/gw/+/dr/event",
            "gridshare/v1/gw/7/#",
            "gridshare/v1/gw/7/+",
            "gridshare/v1/gw/7/market/#",
            "gridshare/v1/gw/7/dr/+",
        ] {
            assert_eq!(G7.may_subscribe(f), Err(Refusal::Subscribe), "{f}");
        }
        assert!(Login::Service.may_subscribe("#").is_ok());
    }

    #[test]
    fn what_gateways_retain_is_bounded_in_size_and_count() {
        let budget = RetainedBudget::new(2);
        assert!(budget.admit(G7, MAX_RETAINED_PAYLOAD).is_ok());
        assert_eq!(budget.admit(G7, MAX_RETAINED_PAYLOAD + 1), Err(Refusal::RetainSize));
        assert!(budget.admit(Login::Gateway(GatewayId(8)), 6).is_ok());
        // a third gateway finds no room; the two that have retained keep theirs
        assert_eq!(budget.admit(Login::Gateway(GatewayId(9)), 6), Err(Refusal::RetainCount));
        assert!(budget.admit(G7, 7).is_ok());
        assert!(budget.admit(Login::Gateway(GatewayId(9)), 0).is_ok(), "clearing");
        assert!(budget.admit(Login::Service, 1 << 20).is_ok());
    }

    #[test]
    fn a_gateway_uses_only_its_own_client_id() {
        assert!(G7.may_use_client_id("7").is_ok());
        assert!(G7.may_use_client_id("gridshare-gw-7").is_ok());
        for id in [
            "8",
            "gridshare-gw-8",
            "gridshare-market",
            "07",
            "",
            "gridshare-gw-",
            "x7",
        ] {
            assert_eq!(G7.may_use_client_id(id), Err(Refusal::ClientId), "{id:?}");
        }
        assert!(Login::Service.may_use_client_id("gridshare-market-1f").is_ok());
        assert_eq!(gateway_id("18446744073709551615"), Some(GatewayId(u64::MAX)));
        assert_eq!(gateway_id("18446744073709551616"), None);
    }
}

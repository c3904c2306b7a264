//! The feeder tree: substation → feeders → transformers → home connections.
//!
//! Each node but the root has an edge to its parent with a capacity per
//! delivery interval (Wh) and a grid fee per kWh for crossing it. A trade
//! from seller to buyer flows up from the seller to their lowest common
//! ancestor and down to the buyer; its fee is the sum of the fees of the edges
//! it crosses.
//!
//! **Capacity nets counter-flows**, as power does: an edge carries the net of
//! the trades across it, and a trade is limited so that `|net flow| ≤
//! capacity` on every edge of its path. Flows are kept per book (capacity is
//! per interval), in a plain `Vec<i64>` indexed by node: positive = upward.

use std::collections::HashMap;

use gridshare_domain::{MicroPerKwh, NodeId, Wh};
use serde::{Deserialize, Serialize};

/// One node of the tree as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// The node.
    pub id: NodeId,
    /// Its parent; exactly one node (the substation) has none.
    #[serde(default)]
    pub parent: Option<NodeId>,
    /// Capacity of the edge to the parent per interval; absent = unlimited.
    #[serde(default)]
    pub capacity: Option<Wh>,
    /// Grid fee for crossing the edge to the parent.
    #[serde(default)]
    pub fee: MicroPerKwh,
}

/// A tree that does not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Two nodes with one id.
    #[error("node {0} is defined twice")]
    Duplicate(NodeId),
    /// Not exactly one root.
    #[error("the tree needs exactly one root (a node without parent), found {0}")]
    Roots(usize),
    /// A parent that is not a node.
    #[error("node {node} names unknown parent {parent}")]
    UnknownParent {
        /// The child.
        node: NodeId,
        /// The missing parent.
        parent: NodeId,
    },
    /// A node not connected to the root.
    #[error("node {0} is in a cycle, not connected to the root")]
    Cycle(NodeId),
    /// Negative capacity or fee.
    #[error("node {0}: capacity and fee must not be negative")]
    Negative(NodeId),
}

/// The compiled tree: dense indices, parents, depths, capacities, fees.
#[derive(Debug, Clone)]
pub struct Network {
    index: HashMap<NodeId, u32>,
    ids: Vec<NodeId>,
    parent: Vec<u32>,
    depth: Vec<u32>,
    capacity: Vec<i64>,
    fee: Vec<i64>,
    bottom_up: Vec<u32>,
    /// Edges on the longest path between two nodes.
    diameter: u32,
}

const NO_PARENT: u32 = u32::MAX;

impl Network {
    /// Check and compile a tree.
    pub fn new(nodes: &[NodeConfig]) -> Result<Self, NetworkError> {
        let mut index = HashMap::with_capacity(nodes.len());
        for (i, n) in nodes.iter().enumerate() {
            if n.capacity.is_some_and(|c| c.0 < 0) || n.fee.0 < 0 {
                return Err(NetworkError::Negative(n.id));
            }
            if index.insert(n.id, i as u32).is_some() {
                return Err(NetworkError::Duplicate(n.id));
            }
        }
        let roots = nodes.iter().filter(|n| n.parent.is_none()).count();
        if roots != 1 {
            return Err(NetworkError::Roots(roots));
        }
        let mut parent = Vec::with_capacity(nodes.len());
        for n in nodes {
            parent.push(match n.parent {
                None => NO_PARENT,
                Some(p) => *index
                    .get(&p)
                    .ok_or(NetworkError::UnknownParent { node: n.id, parent: p })?,
            });
        }
        let mut depth = vec![u32::MAX; nodes.len()];
        for start in 0..nodes.len() {
            // Walk up until a node of known depth (or the root), then fill in.
            let mut path = Vec::new();
            let mut x = start as u32;
            while x != NO_PARENT && depth[x as usize] == u32::MAX {
                if path.len() > nodes.len() {
                    return Err(NetworkError::Cycle(nodes[start].id));
                }
                path.push(x);
                x = parent[x as usize];
            }
            let base = if x == NO_PARENT { 0 } else { depth[x as usize] + 1 };
            for (d, &p) in (base..).zip(path.iter().rev()) {
                depth[p as usize] = d;
            }
        }
        let mut bottom_up: Vec<u32> = (0..nodes.len() as u32).collect();
        bottom_up.sort_by_key(|&i| (std::cmp::Reverse(depth[i as usize]), i));
        // Longest path: at each node, its two tallest child subtrees joined through it.
        let mut height = vec![0u32; nodes.len()];
        let mut diameter = 0;
        for &v in &bottom_up {
            let p = parent[v as usize];
            if p != NO_PARENT {
                let via = height[v as usize] + 1;
                diameter = diameter.max(height[p as usize] + via);
                height[p as usize] = height[p as usize].max(via);
            }
        }
        Ok(Self {
            diameter,
            bottom_up,
            ids: nodes.iter().map(|n| n.id).collect(),
            index,
            parent,
            depth,
            capacity: nodes.iter().map(|n| n.capacity.map_or(i64::MAX, |c| c.0)).collect(),
            fee: nodes.iter().map(|n| n.fee.0).collect(),
        })
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for an empty tree (never, once built).
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Dense index of a node.
    #[inline]
    pub fn index_of(&self, id: NodeId) -> Option<u32> {
        self.index.get(&id).copied()
    }

    /// Node id of a dense index.
    pub fn id_of(&self, idx: u32) -> NodeId {
        self.ids[idx as usize]
    }

    /// Capacity of the edge above `idx` (`i64::MAX` = unlimited).
    pub fn capacity(&self, idx: u32) -> i64 {
        self.capacity[idx as usize]
    }

    /// Grid fee per kWh for crossing the edge above `idx` (0 for the root).
    pub fn fee(&self, idx: u32) -> i64 {
        self.fee[idx as usize]
    }

    /// Parent of `idx`; `None` for the root.
    pub fn parent(&self, idx: u32) -> Option<u32> {
        let p = self.parent[idx as usize];
        (p != NO_PARENT).then_some(p)
    }

    /// Every node, deepest first (children before their parent; the root last); ties by index.
    pub fn bottom_up(&self) -> &[u32] {
        &self.bottom_up
    }

    /// Walk the path seller → buyer, calling `f(edge, upward)` for each edge
    /// crossed (upward on the seller's side, downward on the buyer's).
    #[inline]
    fn walk(&self, seller: u32, buyer: u32, mut f: impl FnMut(usize, bool)) {
        let (mut s, mut b) = (seller, buyer);
        while self.depth[s as usize] > self.depth[b as usize] {
            f(s as usize, true);
            s = self.parent[s as usize];
        }
        while self.depth[b as usize] > self.depth[s as usize] {
            f(b as usize, false);
            b = self.parent[b as usize];
        }
        while s != b {
            f(s as usize, true);
            f(b as usize, false);
            s = self.parent[s as usize];
            b = self.parent[b as usize];
        }
    }

    /// Number of edges on the path between two nodes (0 for one node): up from the deeper one
    /// to the other's depth, then up from both to their lowest common ancestor.
    #[inline]
    pub fn hops(&self, a: u32, b: u32) -> u32 {
        let (mut a, mut b) = (a as usize, b as usize);
        let (da, db) = (self.depth[a], self.depth[b]);
        let mut hops = da.abs_diff(db);
        if da > db {
            for _ in 0..hops {
                a = self.parent[a] as usize;
            }
        } else {
            for _ in 0..hops {
                b = self.parent[b] as usize;
            }
        }
        while a != b {
            a = self.parent[a] as usize;
            b = self.parent[b] as usize;
            hops += 2;
        }
        hops
    }

    /// Edges on the longest path between two nodes of the tree (0 for a lone root).
    pub fn diameter(&self) -> u32 {
        self.diameter
    }

    /// Total grid fee per kWh from seller to buyer.
    #[inline]
    pub fn path_fee(&self, seller: u32, buyer: u32) -> i64 {
        let mut fee = 0i64;
        self.walk(seller, buyer, |e, _| fee += self.fee[e]);
        fee
    }

    /// Most energy that can still flow seller → buyer given current `flows`.
    #[inline]
    pub fn path_room(&self, seller: u32, buyer: u32, flows: &[i64]) -> i64 {
        let mut room = i64::MAX;
        self.walk(seller, buyer, |e, up| {
            let left = if up {
                self.capacity[e].saturating_sub(flows[e])
            } else {
                self.capacity[e].saturating_add(flows[e])
            };
            room = room.min(left);
        });
        room.max(0)
    }

    /// Room on the edge above `node` for energy leaving it (`upward`) or
    /// arriving at it: an upper bound on any trade of that node.
    #[inline]
    pub fn edge_room(&self, node: u32, upward: bool, flows: &[i64]) -> i64 {
        let (cap, f) = (self.capacity[node as usize], flows[node as usize]);
        if self.parent[node as usize] == NO_PARENT {
            return i64::MAX;
        }
        (if upward {
            cap.saturating_sub(f)
        } else {
            cap.saturating_add(f)
        })
        .max(0)
    }

    /// Record `q` Wh flowing seller → buyer.
    #[inline]
    pub fn apply(&self, seller: u32, buyer: u32, q: i64, flows: &mut [i64]) {
        self.walk(seller, buyer, |e, up| if up { flows[e] += q } else { flows[e] -= q });
    }

    /// Check every edge is within its capacity (used by tests and invariants).
    pub fn within_limits(&self, flows: &[i64]) -> bool {
        flows.iter().zip(&self.capacity).all(|(f, c)| f.abs() <= *c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: u32, parent: Option<u32>, cap: Option<i64>, fee: i64) -> NodeConfig {
        NodeConfig {
            id: NodeId(id),
            parent: parent.map(NodeId),
            capacity: cap.map(Wh),
            fee: MicroPerKwh(fee),
        }
    }

    /// 0 substation; 1, 2 transformers; 10, 11 under 1; 20 under 2.
    fn tree() -> Network {
        Network::new(&[
            node(0, None, None, 0),
            node(1, Some(0), Some(1000), 20),
            node(2, Some(0), Some(500), 20),
            node(10, Some(1), Some(300), 5),
            node(11, Some(1), Some(300), 5),
            node(20, Some(2), Some(300), 5),
        ])
        .unwrap()
    }

    #[test]
    fn fees_and_rooms_along_paths() {
        let n = tree();
        let i = |id| n.index_of(NodeId(id)).unwrap();
        assert_eq!(n.path_fee(i(10), i(11)), 10, "two home edges");
        assert_eq!(n.path_fee(i(10), i(20)), 50, "up to the substation and down");
        assert_eq!(n.path_fee(i(10), i(10)), 0);
        assert_eq!(
            [
                n.hops(i(10), i(10)),
                n.hops(i(10), i(11)),
                n.hops(i(10), i(20)),
                n.hops(i(20), i(1)),
                n.hops(i(0), i(11))
            ],
            [0, 2, 4, 3, 2]
        );
        assert_eq!(n.diameter(), 4);
        let mut flows = vec![0; n.len()];
        assert_eq!(n.path_room(i(10), i(20), &flows), 300);
        n.apply(i(10), i(20), 200, &mut flows);
        assert_eq!(
            n.path_room(i(11), i(20), &flows),
            100,
            "transformer 2's home edge has 100 left"
        );
        // a counter-flow frees capacity
        assert_eq!(n.path_room(i(20), i(10), &flows), 500);
        n.apply(i(20), i(11), 150, &mut flows);
        assert!(n.within_limits(&flows));
        assert_eq!(flows[i(20) as usize], -50, "net: 200 down, then 150 up");
    }

    #[test]
    fn diameter_is_the_longest_path_not_twice_the_depth() {
        // a chain 0-1-2-3 with a leaf 4 under 1: longest path 3-2-1-4 (3 edges); depth 3
        let chain = Network::new(&[
            node(0, None, None, 0),
            node(1, Some(0), None, 0),
            node(2, Some(1), None, 0),
            node(3, Some(2), None, 0),
            node(4, Some(1), None, 0),
        ])
        .unwrap();
        assert_eq!(chain.diameter(), 3);
        assert_eq!(Network::new(&[node(0, None, None, 0)]).unwrap().diameter(), 0);
        let i = |id| chain.index_of(NodeId(id)).unwrap();
        assert_eq!(chain.hops(i(3), i(4)), 3);
        assert_eq!(chain.hops(i(3), i(0)), 3);
    }

    #[test]
    fn bad_trees_are_refused() {
        assert_eq!(
            Network::new(&[node(0, None, None, 0), node(0, Some(0), None, 0)]).unwrap_err(),
            NetworkError::Duplicate(NodeId(0))
        );
        assert_eq!(
            Network::new(&[node(0, None, None, 0), node(1, None, None, 0)]).unwrap_err(),
            NetworkError::Roots(2)
        );
        assert!(matches!(
            Network::new(&[node(0, None, None, 0), node(1, Some(9), None, 0)]),
            Err(NetworkError::UnknownParent { .. })
        ));
        assert!(matches!(
            Network::new(&[
                node(0, None, None, 0),
                node(1, Some(2), None, 0),
                node(2, Some(1), None, 0)
            ]),
            Err(NetworkError::Cycle(_))
        ));
        assert_eq!(
            Network::new(&[node(0, None, Some(-1), 0)]).unwrap_err(),
            NetworkError::Negative(NodeId(0))
        );
    }
}

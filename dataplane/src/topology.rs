//! The machine as the data plane sees it: NUMA nodes, cpus, physical cores and L3 groups.
//!
//! [`Topology`] is plain data. [`Topology::detect`] fills it from hwloc (and keeps the hwloc
//! handle, which [`Arena`](crate::arena::Arena) needs to bind memory); [`Topology::from_parts`]
//! builds it by hand, so logic for many-node machines is unit-tested on a 2-core laptop.
//!
//! Cpus are numbered as the kernel numbers them: `core_affinity::CoreId::id` == the Linux cpu
//! number == hwloc's PU `os_index`. NUMA nodes are numbered by their OS index (`node0`, …).
//!
//! ```
//! use dataplane::topology::{Cpu, NumaNode, Topology};
//!
//! let node = |os_index, cpus: &[usize]| NumaNode {
//!     os_index,
//!     memory_bytes: None,
//!     cpus: cpus.to_vec(),
//! };
//! let cpu = |id, node, l3| Cpu { id, core: id, node: Some(node), l3: Some(l3) };
//! let t = Topology::from_parts(
//!     vec![node(0, &[0, 1]), node(1, &[2, 3])],
//!     vec![cpu(0, 0, 0), cpu(1, 0, 0), cpu(2, 1, 1), cpu(3, 1, 1)],
//!     vec![0, 1, 2, 3],
//! )?;
//! assert_eq!(t.node_of_cpu(3), Some(1));
//! assert_eq!(t.cpus_sharing_l3(2), &[2, 3]);
//! # Ok::<(), dataplane::topology::TopologyError>(())
//! ```

use std::fmt;
// Not `crate::sync::Arc`: the hwloc handle is immutable, set up once and never part of a loom
// model, and loom's `Arc` cannot be created outside one.
use std::sync::Arc;

use hwlocality::object::{TopologyObject, attributes::ObjectAttributes, types::ObjectType};

/// One NUMA node: a pool of memory and the cpus closest to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NumaNode {
    /// The OS index (`/sys/devices/system/node/node<os_index>`), as hwloc nodesets use it.
    pub os_index: usize,
    /// Memory local to the node, in bytes; `None` if unknown.
    pub memory_bytes: Option<u64>,
    /// The cpus local to the node, ascending. A cpu may be local to several nodes (e.g. DRAM
    /// and HBM of one package); CPU-less memory nodes (CXL, …) have none.
    pub cpus: Vec<usize>,
}

/// One logical cpu (hardware thread), in `core_affinity` numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// The Linux cpu number: `core_affinity::CoreId::id`, hwloc's PU `os_index`.
    pub id: usize,
    /// The physical core it belongs to: unique across the machine (hwloc's logical core index);
    /// SMT siblings share it.
    pub core: usize,
    /// OS index of its NUMA node (the first node listing it); `None` if unknown.
    pub node: Option<usize>,
    /// Its L3 group: an index into [`Topology::l3_groups`]; `None` if it has no L3 (or it is
    /// unknown).
    pub l3: Option<usize>,
}

/// Why a topology could not be detected or assembled.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    /// hwloc could not discover the machine.
    #[error(
        "hwloc could not detect the machine topology ({reason}); check that libhwloc is \
         installed and /sys is readable (and HWLOC_XMLFILE / HWLOC_SYNTHETIC are unset), or \
         use Topology::detect_or_fallback for a single-node topology"
    )]
    Detection {
        /// What hwloc reported.
        reason: String,
    },
    /// The set of cpus this process may run on is unknown or empty.
    #[error(
        "cannot find any cpu this process may run on; check its cpu mask (taskset -p, the \
         cgroup's cpuset.cpus)"
    )]
    NoAllowedCpus,
    /// The topology has no NUMA node.
    #[error("a topology needs at least one numa node; list node 0 with all cpus for a UMA machine")]
    NoNodes,
    /// A cpu is listed twice.
    #[error("cpu {0} is listed twice; list each cpu once")]
    DuplicateCpu(usize),
    /// A NUMA node is listed twice.
    #[error("numa node {0} is listed twice; list each node once")]
    DuplicateNode(usize),
    /// A cpu names a NUMA node that is not listed.
    #[error("cpu {cpu} is on numa node {node}, which is not listed (nodes {nodes}); add the node")]
    UnknownNode {
        /// The cpu.
        cpu: usize,
        /// The missing node.
        node: usize,
        /// The nodes that are listed.
        nodes: String,
    },
    /// A NUMA node and a cpu disagree about where the cpu is.
    #[error(
        "numa node {node} and cpu {cpu} disagree: the cpu must be listed in its node's cpus and \
         a node may only list known cpus"
    )]
    NodeCpuMismatch {
        /// The node.
        node: usize,
        /// The cpu.
        cpu: usize,
    },
    /// L3 group ids are not dense.
    #[error("l3 group {0} has no cpu; number l3 groups densely from 0")]
    SparseL3Group(usize),
    /// An allowed cpu is not one of the machine's cpus.
    #[error("allowed cpu {cpu} is not one of the machine's cpus ({cpus}); list it in the cpus")]
    UnknownAllowedCpu {
        /// The allowed cpu.
        cpu: usize,
        /// The machine's cpus.
        cpus: String,
    },
}

/// The machine: NUMA nodes, cpus, L3 groups and the cpus this process may use.
///
/// Invariants (checked by [`Topology::from_parts`]): at least one node; cpus and nodes unique;
/// every cpu's node is listed and lists it; L3 groups dense; allowed cpus non-empty and known.
/// Lists are sorted ascending.
///
/// Cloning is cheap: the hwloc handle is shared.
#[derive(Clone)]
pub struct Topology {
    nodes: Vec<NumaNode>,
    cpus: Vec<Cpu>,
    l3_groups: Vec<Vec<usize>>,
    allowed: Vec<usize>,
    hwloc: Option<Arc<hwlocality::Topology>>,
}

impl Topology {
    /// Discovers this machine with hwloc. Allowed cpus come from `core_affinity` (this process'
    /// cpu mask), restricted to the cpus hwloc reports.
    ///
    /// # Errors
    /// [`TopologyError::Detection`] if hwloc fails, [`TopologyError::NoAllowedCpus`] if the cpu
    /// mask is unknown or names no cpu hwloc knows; any other variant means hwloc reported an
    /// inconsistent machine.
    pub fn detect() -> Result<Self, TopologyError> {
        let hwloc = hwlocality::Topology::new().map_err(|e| TopologyError::Detection {
            reason: e.to_string(),
        })?;

        let hw_nodes: Vec<&TopologyObject> =
            hwloc.objects_with_type(ObjectType::NUMANode).collect();
        let mut nodes = Vec::with_capacity(hw_nodes.len());
        for (i, obj) in hw_nodes.iter().enumerate() {
            let memory_bytes = match obj.attributes() {
                Some(ObjectAttributes::NUMANode(attr)) => attr.local_memory().map(u64::from),
                _ => None,
            };
            let cpus = obj
                .cpuset()
                .map(|set| set.iter_set().map(usize::from).collect())
                .unwrap_or_default();
            nodes.push(NumaNode {
                // hwloc numbers every NUMA node; the logical index is only a stand-in.
                os_index: obj.os_index().unwrap_or(i),
                memory_bytes,
                cpus,
            });
        }

        // hwloc's L3 objects, by global persistent index, in order of first use.
        let mut l3_ids: Vec<u64> = Vec::new();
        let mut cpus = Vec::new();
        for pu in hwloc.objects_with_type(ObjectType::PU) {
            let Some(id) = pu.os_index() else { continue };
            let core = pu
                .first_ancestor_with_type(ObjectType::Core)
                .map_or_else(|| pu.logical_index(), TopologyObject::logical_index);
            let node = nodes
                .iter()
                .find(|n| n.cpus.contains(&id))
                .map(|n| n.os_index);
            let l3 = pu
                .first_ancestor_with_type(ObjectType::L3Cache)
                .map(|cache| {
                    let gp = cache.global_persistent_index();
                    l3_ids.iter().position(|&g| g == gp).unwrap_or_else(|| {
                        l3_ids.push(gp);
                        l3_ids.len() - 1
                    })
                });
            cpus.push(Cpu { id, core, node, l3 });
        }
        // A node's cpuset may name PUs hwloc left out of the PU list (disallowed ones).
        for node in &mut nodes {
            node.cpus.retain(|c| cpus.iter().any(|cpu| cpu.id == *c));
        }

        let allowed: Vec<usize> = core_affinity::get_core_ids()
            .ok_or(TopologyError::NoAllowedCpus)?
            .into_iter()
            .map(|c| c.id)
            .filter(|id| {
                let known = cpus.iter().any(|cpu| cpu.id == *id);
                if !known {
                    tracing::warn!(
                        cpu = id,
                        "cpu is in the process cpu mask but unknown to hwloc; ignoring it"
                    );
                }
                known
            })
            .collect();

        let mut topology = Self::from_parts(nodes, cpus, allowed)?;
        topology.hwloc = Some(Arc::new(hwloc));
        Ok(topology)
    }

    /// [`Topology::detect`], or — if that fails — [`Topology::fallback`], with a warning that
    /// says why. Never panics (a panic inside hwloc's bindings is caught and reported too).
    pub fn detect_or_fallback() -> Self {
        match std::panic::catch_unwind(Self::detect) {
            Ok(Ok(topology)) => topology,
            Ok(Err(e)) => {
                tracing::warn!(
                    error = %e,
                    "topology detection failed; assuming one numa node without memory binding"
                );
                Self::fallback()
            }
            Err(_) => {
                tracing::warn!(
                    "topology detection panicked inside hwloc; assuming one numa node without \
                     memory binding"
                );
                Self::fallback()
            }
        }
    }

    /// A one-node topology built from `core_affinity` alone, without hwloc: every allowed cpu is
    /// its own core on node 0, with no known L3 and unknown memory size. Arenas built on it are
    /// never bound. If even the cpu mask is unknown, cpus `0..available_parallelism` are used.
    pub fn fallback() -> Self {
        let mut ids: Vec<usize> = core_affinity::get_core_ids()
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.id)
            .collect();
        if ids.is_empty() {
            let n = std::thread::available_parallelism().map_or(1, usize::from);
            ids = (0..n).collect();
        }
        Self::single_node(ids)
    }

    /// A one-node topology of these cpus, all allowed: each cpu its own core on node 0, no
    /// known L3, unknown memory size, no hwloc handle (arenas built on it are not bound).
    pub fn single_node(mut ids: Vec<usize>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        Self {
            nodes: vec![NumaNode {
                os_index: 0,
                memory_bytes: None,
                cpus: ids.clone(),
            }],
            cpus: ids
                .iter()
                .map(|&id| Cpu {
                    id,
                    core: id,
                    node: Some(0),
                    l3: None,
                })
                .collect(),
            l3_groups: Vec::new(),
            allowed: ids,
            hwloc: None,
        }
    }

    /// Builds a topology by hand (tests, or a machine description from config). It has no hwloc
    /// handle, so arenas built on it are not bound. Inputs may be in any order; they are sorted.
    ///
    /// # Errors
    /// Any [`TopologyError`] but `Detection` when the parts break an invariant listed on
    /// [`Topology`].
    pub fn from_parts(
        mut nodes: Vec<NumaNode>,
        mut cpus: Vec<Cpu>,
        mut allowed_cpus: Vec<usize>,
    ) -> Result<Self, TopologyError> {
        if nodes.is_empty() {
            return Err(TopologyError::NoNodes);
        }
        nodes.sort_unstable_by_key(|n| n.os_index);
        if let Some(w) = nodes.windows(2).find(|w| w[0].os_index == w[1].os_index) {
            return Err(TopologyError::DuplicateNode(w[0].os_index));
        }
        cpus.sort_unstable_by_key(|c| c.id);
        if let Some(w) = cpus.windows(2).find(|w| w[0].id == w[1].id) {
            return Err(TopologyError::DuplicateCpu(w[0].id));
        }
        let known_cpu = |id: usize| cpus.binary_search_by_key(&id, |c| c.id).is_ok();

        for node in &mut nodes {
            node.cpus.sort_unstable();
            node.cpus.dedup();
            if let Some(&cpu) = node.cpus.iter().find(|&&c| !known_cpu(c)) {
                return Err(TopologyError::NodeCpuMismatch {
                    node: node.os_index,
                    cpu,
                });
            }
        }
        let mut l3_groups: Vec<Vec<usize>> = Vec::new();
        for cpu in &cpus {
            if let Some(node) = cpu.node {
                let Ok(n) = nodes.binary_search_by_key(&node, |n| n.os_index) else {
                    let os: Vec<usize> = nodes.iter().map(|n| n.os_index).collect();
                    return Err(TopologyError::UnknownNode {
                        cpu: cpu.id,
                        node,
                        nodes: format_list(&os),
                    });
                };
                if nodes[n].cpus.binary_search(&cpu.id).is_err() {
                    return Err(TopologyError::NodeCpuMismatch { node, cpu: cpu.id });
                }
            }
            if let Some(group) = cpu.l3 {
                if group >= l3_groups.len() {
                    l3_groups.resize_with(group + 1, Vec::new);
                }
                l3_groups[group].push(cpu.id); // cpus are sorted, so groups are too
            }
        }
        if let Some(empty) = l3_groups.iter().position(Vec::is_empty) {
            return Err(TopologyError::SparseL3Group(empty));
        }

        allowed_cpus.sort_unstable();
        allowed_cpus.dedup();
        if allowed_cpus.is_empty() {
            return Err(TopologyError::NoAllowedCpus);
        }
        if let Some(&cpu) = allowed_cpus.iter().find(|&&c| !known_cpu(c)) {
            let ids: Vec<usize> = cpus.iter().map(|c| c.id).collect();
            return Err(TopologyError::UnknownAllowedCpu {
                cpu,
                cpus: format_list(&ids),
            });
        }

        Ok(Self {
            nodes,
            cpus,
            l3_groups,
            allowed: allowed_cpus,
            hwloc: None,
        })
    }

    /// The NUMA nodes, by ascending OS index.
    pub fn nodes(&self) -> &[NumaNode] {
        &self.nodes
    }

    /// The node with OS index `os_index`.
    pub fn node(&self, os_index: usize) -> Option<&NumaNode> {
        self.nodes
            .binary_search_by_key(&os_index, |n| n.os_index)
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// All cpus of the machine, by ascending id (including ones this process may not use).
    pub fn cpus(&self) -> &[Cpu] {
        &self.cpus
    }

    /// The cpu with Linux number `id`.
    pub fn cpu(&self, id: usize) -> Option<&Cpu> {
        self.cpus
            .binary_search_by_key(&id, |c| c.id)
            .ok()
            .map(|i| &self.cpus[i])
    }

    /// OS index of `cpu`'s NUMA node; `None` if the cpu or its node is unknown.
    pub fn node_of_cpu(&self, cpu: usize) -> Option<usize> {
        self.cpu(cpu)?.node
    }

    /// The cpus sharing an L3 cache with `cpu`, itself included, ascending; empty if `cpu` is
    /// unknown or has no known L3.
    pub fn cpus_sharing_l3(&self, cpu: usize) -> &[usize] {
        self.cpu(cpu)
            .and_then(|c| c.l3)
            .and_then(|g| self.l3_groups.get(g))
            .map_or(&[], Vec::as_slice)
    }

    /// The groups of cpus sharing an L3 cache; [`Cpu::l3`] indexes this.
    pub fn l3_groups(&self) -> &[Vec<usize>] {
        &self.l3_groups
    }

    /// The cpus this process may run on (its cpu mask when the topology was built), ascending.
    pub fn allowed_cpus(&self) -> &[usize] {
        &self.allowed
    }

    /// Whether hwloc can bind a memory area to a node here; `None` without an hwloc handle.
    pub fn memory_binding_supported(&self) -> Option<bool> {
        let hwloc = self.hwloc()?;
        Some(
            hwloc
                .feature_support()
                .memory_binding()
                .is_some_and(|s| s.set_area() && s.bind_policy()),
        )
    }

    /// The hwloc topology this was detected from; `None` when built by hand or by fallback.
    pub fn hwloc(&self) -> Option<&hwlocality::Topology> {
        self.hwloc.as_deref()
    }

    /// The shared hwloc handle, for arenas that outlive the borrow of `self`.
    pub(crate) fn hwloc_handle(&self) -> Option<&Arc<hwlocality::Topology>> {
        self.hwloc.as_ref()
    }
}

impl fmt::Debug for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // hwloc's own Debug output is the whole object tree: too much to be useful here.
        f.debug_struct("Topology")
            .field("nodes", &self.nodes)
            .field("cpus", &self.cpus)
            .field("l3_groups", &self.l3_groups)
            .field("allowed", &self.allowed)
            .field("hwloc", &self.hwloc.is_some())
            .finish()
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        writeln!(
            f,
            "{} numa node{}, {} cpu{} ({} allowed: {}), {} l3 group{}",
            self.nodes.len(),
            plural(self.nodes.len()),
            self.cpus.len(),
            plural(self.cpus.len()),
            self.allowed.len(),
            format_list(&self.allowed),
            self.l3_groups.len(),
            plural(self.l3_groups.len()),
        )?;
        for node in &self.nodes {
            let memory = node
                .memory_bytes
                .map_or_else(|| "unknown memory".to_owned(), format_bytes);
            writeln!(
                f,
                "node {}: {memory}, cpus {}",
                node.os_index,
                format_list(&node.cpus)
            )?;
        }
        for cpu in &self.cpus {
            let node = cpu.node.map_or_else(|| "?".to_owned(), |n| n.to_string());
            let l3 = cpu.l3.map_or_else(|| "none".to_owned(), |g| g.to_string());
            writeln!(
                f,
                "cpu {}: core {}, node {node}, l3 group {l3}",
                cpu.id, cpu.core
            )?;
        }
        for (i, group) in self.l3_groups.iter().enumerate() {
            writeln!(f, "l3 group {i}: cpus {}", format_list(group))?;
        }
        let binding = match self.hwloc() {
            None => "unknown (no hwloc topology; arenas will not be bound)",
            Some(_) if self.memory_binding_supported() == Some(true) => "supported",
            Some(_) => "not supported by hwloc on this system (arenas will not be bound)",
        };
        writeln!(f, "memory binding: {binding}")
    }
}

/// Formats ascending numbers as a Linux-style list: `[0, 1, 2, 5]` → `"0-2,5"`; `"none"` if
/// empty.
pub(crate) fn format_list(ids: &[usize]) -> String {
    if ids.is_empty() {
        return "none".to_owned();
    }
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        let mut end = start;
        while i + 1 < ids.len() && end.checked_add(1) == Some(ids[i + 1]) {
            i += 1;
            end = ids[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if end == start {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}-{end}"));
        }
        i += 1;
    }
    out
}

/// `8589934592` → `"8.0 GiB"`.
fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64; // display only
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(os_index: usize, cpus: &[usize]) -> NumaNode {
        NumaNode {
            os_index,
            memory_bytes: Some(8 << 30),
            cpus: cpus.to_vec(),
        }
    }

    fn cpu(id: usize, core: usize, node: usize, l3: usize) -> Cpu {
        Cpu {
            id,
            core,
            node: Some(node),
            l3: Some(l3),
        }
    }

    /// Two sockets, one node and one L3 each, two cpus per socket; this process may use 1-3.
    fn two_nodes() -> Topology {
        Topology::from_parts(
            vec![node(1, &[2, 3]), node(0, &[0, 1])],
            vec![
                cpu(3, 1, 1, 1),
                cpu(0, 0, 0, 0),
                cpu(1, 0, 0, 0),
                cpu(2, 1, 1, 1),
            ],
            vec![3, 1, 2],
        )
        .unwrap()
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls hwloc")]
    fn detect_is_consistent_on_this_machine() {
        let t = Topology::detect().unwrap();
        assert!(t.hwloc().is_some());
        assert!(!t.nodes().is_empty());
        assert!(!t.allowed_cpus().is_empty());
        for &c in t.allowed_cpus() {
            let node = t.node_of_cpu(c).expect("every allowed cpu has a node");
            assert!(t.node(node).unwrap().cpus.contains(&c));
        }
        // The nodes cover every cpu.
        for c in t.cpus() {
            assert!(
                t.nodes().iter().any(|n| n.cpus.contains(&c.id)),
                "cpu {} in no node",
                c.id
            );
        }
        // L3 groups partition the cpus that have an L3.
        let grouped: usize = t.l3_groups().iter().map(Vec::len).sum();
        assert_eq!(grouped, t.cpus().iter().filter(|c| c.l3.is_some()).count());
        // This machine (the dev box) has one node, and hwloc sees every cpu we may use.
        let cores = core_affinity::get_core_ids().unwrap();
        assert_eq!(t.allowed_cpus().len(), cores.len());
        assert!(t.memory_binding_supported().is_some());
        let text = t.to_string();
        assert!(text.contains("node 0:"), "{text}");
        assert!(text.contains("memory binding:"), "{text}");
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls hwloc")]
    fn detect_or_fallback_has_a_node_for_every_allowed_cpu() {
        let t = Topology::detect_or_fallback();
        for &c in t.allowed_cpus() {
            assert!(t.node_of_cpu(c).is_some());
        }
    }

    #[test]
    fn fallback_is_one_node_without_hwloc() {
        let t = Topology::fallback();
        assert!(t.hwloc().is_none());
        assert_eq!(t.nodes().len(), 1);
        assert_eq!(t.nodes()[0].cpus, t.allowed_cpus());
        assert!(
            t.allowed_cpus()
                .iter()
                .all(|&c| t.node_of_cpu(c) == Some(0))
        );
        assert_eq!(t.memory_binding_supported(), None);
        assert!(t.to_string().contains("memory binding: unknown"));
    }

    #[test]
    fn hand_built_two_nodes() {
        let t = two_nodes();
        assert_eq!(
            t.nodes().iter().map(|n| n.os_index).collect::<Vec<_>>(),
            [0, 1]
        );
        assert_eq!(
            t.cpus().iter().map(|c| c.id).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        assert_eq!(t.node_of_cpu(0), Some(0));
        assert_eq!(t.node_of_cpu(1), Some(0));
        assert_eq!(t.node_of_cpu(2), Some(1));
        assert_eq!(t.node_of_cpu(3), Some(1));
        assert_eq!(t.node_of_cpu(4), None);
        assert_eq!(t.cpus_sharing_l3(0), &[0, 1]);
        assert_eq!(t.cpus_sharing_l3(3), &[2, 3]);
        assert_eq!(t.cpus_sharing_l3(9), &[] as &[usize]);
        assert_eq!(t.l3_groups(), &[vec![0, 1], vec![2, 3]]);
        assert_eq!(t.allowed_cpus(), &[1, 2, 3]);
        assert_eq!(t.cpu(2).unwrap().core, 1);
        assert!(t.hwloc().is_none());
        let text = t.to_string();
        assert!(
            text.starts_with("2 numa nodes, 4 cpus (3 allowed: 1-3), 2 l3 groups\n"),
            "{text}"
        );
        assert!(text.contains("node 1: 8.0 GiB, cpus 2-3\n"), "{text}");
        assert!(
            text.contains("cpu 2: core 1, node 1, l3 group 1\n"),
            "{text}"
        );
        assert!(text.contains("l3 group 0: cpus 0-1\n"), "{text}");
    }

    #[test]
    fn cpus_without_node_or_l3() {
        let loose = Cpu {
            id: 7,
            core: 7,
            node: None,
            l3: None,
        };
        let t = Topology::from_parts(
            vec![node(0, &[0])],
            vec![cpu(0, 0, 0, 0), loose],
            vec![0, 7],
        )
        .unwrap();
        assert_eq!(t.node_of_cpu(7), None);
        assert!(t.cpus_sharing_l3(7).is_empty());
        assert!(
            t.to_string()
                .contains("cpu 7: core 7, node ?, l3 group none")
        );
    }

    #[test]
    fn from_parts_rejects_inconsistent_machines() {
        use TopologyError as E;
        let err = |nodes, cpus, allowed| Topology::from_parts(nodes, cpus, allowed).unwrap_err();
        assert!(matches!(
            err(vec![], vec![cpu(0, 0, 0, 0)], vec![0]),
            E::NoNodes
        ));
        assert!(matches!(
            err(
                vec![node(0, &[0]), node(0, &[])],
                vec![cpu(0, 0, 0, 0)],
                vec![0]
            ),
            E::DuplicateNode(0)
        ));
        assert!(matches!(
            err(
                vec![node(0, &[0])],
                vec![cpu(0, 0, 0, 0), cpu(0, 0, 0, 0)],
                vec![0]
            ),
            E::DuplicateCpu(0)
        ));
        let e = err(
            vec![node(0, &[0])],
            vec![cpu(0, 0, 0, 0), cpu(1, 1, 3, 0)],
            vec![0],
        );
        assert!(matches!(
            e,
            E::UnknownNode {
                cpu: 1,
                node: 3,
                ..
            }
        ));
        assert_eq!(
            e.to_string(),
            "cpu 1 is on numa node 3, which is not listed (nodes 0); add the node"
        );
        // The cpu says node 0, but node 0 does not list it.
        assert!(matches!(
            err(
                vec![node(0, &[0])],
                vec![cpu(0, 0, 0, 0), cpu(1, 1, 0, 0)],
                vec![0]
            ),
            E::NodeCpuMismatch { node: 0, cpu: 1 }
        ));
        // The node lists a cpu that does not exist.
        assert!(matches!(
            err(vec![node(0, &[0, 5])], vec![cpu(0, 0, 0, 0)], vec![0]),
            E::NodeCpuMismatch { node: 0, cpu: 5 }
        ));
        assert!(matches!(
            err(vec![node(0, &[0])], vec![cpu(0, 0, 0, 1)], vec![0]),
            E::SparseL3Group(0)
        ));
        assert!(matches!(
            err(vec![node(0, &[0])], vec![cpu(0, 0, 0, 0)], vec![]),
            E::NoAllowedCpus
        ));
        let e = err(vec![node(0, &[0])], vec![cpu(0, 0, 0, 0)], vec![0, 2]);
        assert_eq!(
            e.to_string(),
            "allowed cpu 2 is not one of the machine's cpus (0); list it in the cpus"
        );
    }

    #[test]
    fn a_cpu_may_be_local_to_two_nodes() {
        // DRAM node 0 and HBM node 1 of one package both list cpu 0; the cpu belongs to node 0.
        let t = Topology::from_parts(
            vec![node(0, &[0]), node(1, &[0]), node(2, &[])],
            vec![cpu(0, 0, 0, 0)],
            vec![0],
        )
        .unwrap();
        assert_eq!(t.node_of_cpu(0), Some(0));
        assert!(t.node(2).unwrap().cpus.is_empty());
    }

    #[test]
    fn lists_and_sizes_format_like_linux() {
        assert_eq!(format_list(&[]), "none");
        assert_eq!(format_list(&[3]), "3");
        assert_eq!(format_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(
            format_list(&[usize::MAX - 1, usize::MAX]),
            format!("{}-{}", usize::MAX - 1, usize::MAX)
        );
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 29), "1.5 GiB");
    }
}

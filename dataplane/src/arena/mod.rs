//! A NUMA-bound bump arena: one anonymous mapping, bound to a node, touched up front, carved
//! into slices that live as long as the arena is borrowed.
//!
//! [`Arena::new`] maps `bytes` of fresh, untouched pages, asks hwloc to bind them to the node
//! (strict `MPOL_BIND` first, the kernel's "preferred" policy if that is refused), then writes one
//! byte per page from the calling thread, so every page is faulted in — on the bound node, or,
//! when binding is impossible, on the calling thread's node by first touch. A failed binding is
//! never an error: the arena falls back to unbound memory, logs a warning and records why in
//! [`Arena::binding`]. [`Arena::verify_placement`] asks the kernel where the pages really are.
//!
//! Carving ([`Arena::carve_with`]) is a bump allocation: regions never overlap and are never
//! reused (there is no reset), and the arena never runs destructors — whoever carves values
//! owns them and drops their contents if that matters (see `Pool`'s `Drop`).
//!
//! ```
//! use dataplane::{arena::Arena, topology::Topology};
//!
//! let topology = Topology::detect_or_fallback();
//! let arena = Arena::new(&topology, None, 1 << 20)?;
//! let prices: &mut [u64] = arena.carve_with(1000, |i| i as u64 * 100)?;
//! prices[0] = 7;
//! assert_eq!(arena.used(), 8000);
//! println!("arena: {}, pages {}", arena.binding(), arena.verify_placement());
//! # Ok::<(), dataplane::arena::ArenaError>(())
//! ```

use std::{
    cell::Cell,
    fmt,
    mem::{MaybeUninit, align_of, size_of},
    ptr::NonNull,
    sync::Arc,
};

use hwlocality::{
    cpu::binding::CpuBindingFlags,
    memory::{
        binding::{MemoryBindingFlags, MemoryBindingPolicy},
        nodeset::NodeSet,
    },
};
use memmap2::MmapMut;

use crate::topology::{Topology, format_list};

mod region;
pub use region::Region;

/// Bytes between two first-touch writes. 4 KiB is the smallest page size of every platform
/// pinbook runs on; with larger pages some writes land on an already-touched page, which is
/// harmless, whereas a stride above the page size would leave pages untouched.
const TOUCH_STRIDE: usize = 4096;

/// Every carve starts on a boundary of this many bytes (one cache line).
pub const CACHE_LINE: usize = 64;

/// Why an arena could not be built or carved.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The requested NUMA node is not in the topology.
    #[error("numa node {node} does not exist on this machine (nodes {nodes}); pick one of those")]
    UnknownNode {
        /// The node asked for.
        node: usize,
        /// The nodes that exist.
        nodes: String,
    },
    /// The operating system refused to map the arena's memory.
    #[error(
        "could not map {bytes} bytes for an arena ({error}); lower the arena size in the config \
         or raise the process memory limit"
    )]
    Map {
        /// The size asked for.
        bytes: usize,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The arena has no room left for a carve.
    #[error(
        "arena exhausted: {requested} bytes requested but {free} bytes free; raise the arena \
         size in the config"
    )]
    Exhausted {
        /// Bytes the carve needs (without alignment padding).
        requested: usize,
        /// Bytes left in the arena.
        free: usize,
    },
}

/// Whether an arena's memory is bound to its node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Binding {
    /// hwloc bound the memory to the node.
    Bound {
        /// OS index of the node.
        node: usize,
    },
    /// The memory is not bound; pages sit wherever the calling thread first touched them.
    Unbound {
        /// Why binding was not possible.
        reason: String,
    },
}

impl fmt::Display for Binding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bound { node } => write!(f, "bound to numa node {node}"),
            Self::Unbound { reason } => write!(f, "not bound ({reason})"),
        }
    }
}

/// Where the kernel says an arena's pages are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Every resident page is on this node, the one the arena was made for.
    OnNode(usize),
    /// Pages are on these nodes (ascending), which is not just the arena's node.
    Elsewhere(Vec<usize>),
    /// The location could not be determined, and why.
    Unknown(String),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OnNode(node) => write!(f, "on numa node {node}"),
            Self::Elsewhere(nodes) => write!(f, "on numa nodes {}", format_list(nodes)),
            Self::Unknown(reason) => write!(f, "unknown ({reason})"),
        }
    }
}

/// A region of memory bound to one NUMA node, handed out by bump allocation.
///
/// `Send` (build it on one thread, move it to its shard) but not `Sync`: the bump offset is a
/// plain `Cell`, so only one thread may carve.
///
/// ```compile_fail
/// fn shared<T: Sync>() {}
/// shared::<dataplane::arena::Arena>();
/// ```
pub struct Arena {
    /// Start of the mapping. Every access after construction goes through this pointer (never
    /// through `_map`), so carved `&mut` slices are the only references into the memory.
    base: NonNull<u8>,
    capacity: usize,
    /// Bytes handed out so far: `base + offset` is the first free byte.
    offset: Cell<usize>,
    /// The node the arena was made for (bound or not).
    target: usize,
    binding: Binding,
    hwloc: Option<Arc<hwlocality::Topology>>,
    /// Owns the mapping (unmapped on drop); not touched otherwise.
    _map: MmapMut,
}

// SAFETY: the arena exclusively owns its mapping and its `Cell` offset, which are reachable
// only through the arena, so moving it to another thread moves all access with it. Carved
// slices borrow `&self`, so none can outlive the move and be used on the old thread; values
// carved before a move are unreachable afterwards (the arena never reads or drops them).
unsafe impl Send for Arena {}

impl Arena {
    /// Maps `bytes` of memory for numa node `node` (OS index; `None` = the node of the cpu the
    /// calling thread last ran on, or the lowest-numbered node if that is unknown), binds it to
    /// the node with hwloc and faults every page in from the calling thread.
    ///
    /// Call it from the thread that will use the arena, after pinning it. Binding that is
    /// unsupported, refused, or impossible (no hwloc handle) leaves the memory unbound, with a
    /// warning and the reason in [`Arena::binding`]; it is not an error. A strictly bound
    /// arena larger than its node's free memory gets the process killed when it is touched, as
    /// any `MPOL_BIND` allocation would.
    ///
    /// # Errors
    /// [`ArenaError::UnknownNode`] if `node` is not in `topology`; [`ArenaError::Map`] if the
    /// OS refuses the mapping.
    pub fn new(topology: &Topology, node: Option<usize>, bytes: usize) -> Result<Self, ArenaError> {
        let target = match node {
            Some(n) if topology.node(n).is_some() => n,
            Some(n) => {
                let os: Vec<usize> = topology.nodes().iter().map(|n| n.os_index).collect();
                return Err(ArenaError::UnknownNode {
                    node: n,
                    nodes: format_list(&os),
                });
            }
            None => current_node(topology)
                .or_else(|| topology.nodes().first().map(|n| n.os_index))
                .unwrap_or(0),
        };

        let mut map = MmapMut::map_anon(bytes).map_err(|error| ArenaError::Map { bytes, error })?;
        // Ask for transparent huge pages before the first touch: the books are hundreds of
        // megabytes touched at random, and with 4 KiB pages nearly every touch also misses the
        // TLB (measured in BENCHMARKS.md). Only a hint: where the kernel refuses, 4 KiB pages
        // work the same, slower.
        #[cfg(all(target_os = "linux", not(miri)))]
        if let Err(error) = map.advise(memmap2::Advice::HugePage) {
            tracing::debug!(%error, "no transparent huge pages for the arena");
        }
        let hwloc = topology.hwloc_handle().cloned();
        // Bind before the first touch: fresh anonymous pages are not allocated yet, so there is
        // nothing to migrate (hwlocality rejects MIGRATE for area binding anyway).
        let binding = bind(hwloc.as_deref(), &map, target);
        match &binding {
            Binding::Bound { node } => tracing::debug!(node, bytes, "arena bound"),
            Binding::Unbound { reason } => {
                tracing::warn!(node = target, bytes, %reason, "arena memory is not numa-bound");
            }
        }
        // Fault every page in now, from this thread, so the hot path never page-faults. The
        // writes cannot be elided: the memory escapes to `munmap` and to hwloc.
        for byte in map.iter_mut().step_by(TOUCH_STRIDE) {
            *byte = 0;
        }
        let base = NonNull::from(&mut map[..]).cast::<u8>();

        Ok(Self {
            base,
            capacity: bytes,
            offset: Cell::new(0),
            target,
            binding,
            hwloc,
            _map: map,
        })
    }

    /// Carves `len` values of `T` from the arena, value `i` being `init(i)`, and returns them as
    /// a slice that lives as long as this borrow of the arena.
    ///
    /// Regions never overlap: the offset only grows (there is no reset), and it grows *before*
    /// `init` runs, so `init` may itself carve from this arena. The arena never runs `T`'s
    /// destructor; drop the contents yourself if they own resources. If `init` panics, the
    /// values written so far are leaked and the region stays used.
    ///
    /// Zero-sized `T` and `len == 0` take no room (and `init` still runs `len` times).
    ///
    /// # Errors
    /// [`ArenaError::Exhausted`] if `len` values (plus alignment padding) do not fit; the arena
    /// is unchanged then.
    #[allow(clippy::mut_from_ref)] // like any bump allocator: each call returns fresh memory
    pub fn carve_with<T>(
        &self,
        len: usize,
        mut init: impl FnMut(usize) -> T,
    ) -> Result<&mut [T], ArenaError> {
        let ptr = self.reserve::<T>(len)?;
        for i in 0..len {
            let value = init(i);
            // `reserve` returned room for `len` aligned `T`s that nothing else can reach (the
            // offset has moved past it for good).
            // SAFETY: so writing element `i < len` is in bounds and aliases nothing.
            unsafe { ptr.add(i).write(value) };
        }
        // All `len` elements were initialised above; the memory is aligned, inside the mapping
        // (or dangling and zero-sized), lives until the arena is dropped — which the `&self`
        // borrow prevents while the slice exists — and bump regions are never handed out twice.
        // SAFETY: so this is the only reference to `len` initialised, live values.
        Ok(unsafe { std::slice::from_raw_parts_mut(ptr.as_ptr(), len) })
    }

    /// Reserves room for `len` `T`s: returns a pointer aligned to `T` and to a cache line to it, or a dangling one when
    /// the room is zero bytes.
    fn reserve<T>(&self, len: usize) -> Result<NonNull<T>, ArenaError> {
        let used = self.offset.get();
        let free = self.capacity - used;
        let Some(size) = size_of::<T>().checked_mul(len) else {
            return Err(ArenaError::Exhausted {
                requested: usize::MAX,
                free,
            });
        };
        if size == 0 {
            return Ok(NonNull::dangling());
        }
        // Align the address, not the offset, so alignments above the page size work too. Every
        // carve starts on a cache line of its own: no two regions share a line, and values
        // whose size divides 64 never straddle one.
        let base = self.base.as_ptr().addr();
        let start = base
            .checked_add(used)
            .and_then(|addr| addr.checked_next_multiple_of(align_of::<T>().max(CACHE_LINE)))
            .map(|addr| addr - base);
        let Some((start, end)) = start
            .and_then(|s| Some((s, s.checked_add(size)?)))
            .filter(|&(_, end)| end <= self.capacity)
        else {
            return Err(ArenaError::Exhausted {
                requested: size,
                free,
            });
        };
        self.offset.set(end);
        // SAFETY: `start < end <= capacity`, so `base + start` is inside the mapping.
        Ok(unsafe { self.base.add(start) }.cast::<T>())
    }

    /// OS index of the node the memory is bound to; `None` if it is not bound.
    pub fn node(&self) -> Option<usize> {
        match self.binding {
            Binding::Bound { node } => Some(node),
            Binding::Unbound { .. } => None,
        }
    }

    /// Whether the memory is bound, and if not, why.
    pub fn binding(&self) -> &Binding {
        &self.binding
    }

    /// Size of the arena in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes carved so far, alignment padding included.
    pub fn used(&self) -> usize {
        self.offset.get()
    }

    /// Bytes left to carve (before alignment padding).
    pub fn free(&self) -> usize {
        self.capacity - self.offset.get()
    }

    /// Asks the kernel, through hwloc, on which nodes the arena's pages are now. The answer may
    /// be outdated as soon as it is returned (the kernel may migrate unbound pages).
    pub fn verify_placement(&self) -> Placement {
        let Some(hwloc) = self.hwloc.as_deref() else {
            return Placement::Unknown("no hwloc topology (built by hand or by fallback)".into());
        };
        if self.capacity == 0 {
            return Placement::Unknown("the arena is empty".into());
        }
        let supported = hwloc
            .feature_support()
            .memory_binding()
            .is_some_and(|s| s.get_area_memory_location());
        if !supported {
            return Placement::Unknown("hwloc cannot query page locations on this system".into());
        }
        // The pointer covers the `capacity` mapped bytes, which live as long as `self`.
        // `Cell<MaybeUninit<u8>>` has the layout of `u8`, claims nothing about the bytes
        // (carved values may have padding) and, being interior-mutable, creating it is no
        // access and does not invalidate carved `&mut` slices. hwloc only passes the address
        // range to the kernel; it never reads or writes the bytes.
        let (base, len) = (
            self.base.as_ptr().cast::<Cell<MaybeUninit<u8>>>(),
            self.capacity,
        );
        // SAFETY: so this view of the mapping is valid and aliases nothing it could break.
        let view = unsafe { std::slice::from_raw_parts(base, len) };
        match hwloc.area_memory_location::<_, NodeSet>(view, MemoryBindingFlags::empty()) {
            Ok(set) => {
                let nodes: Vec<usize> = set.iter_set().map(usize::from).collect();
                match nodes.as_slice() {
                    [] => Placement::Unknown("the kernel reported no resident page".into()),
                    &[node] if node == self.target => Placement::OnNode(node),
                    _ => Placement::Elsewhere(nodes),
                }
            }
            Err(e) => Placement::Unknown(format!("hwloc could not locate the pages: {e}")),
        }
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("capacity", &self.capacity)
            .field("used", &self.offset.get())
            .field("target", &self.target)
            .field("binding", &self.binding)
            .finish_non_exhaustive()
    }
}

/// The node of the cpu the calling thread last ran on, if hwloc can tell.
fn current_node(topology: &Topology) -> Option<usize> {
    let cpu = topology
        .hwloc()?
        .last_cpu_location(CpuBindingFlags::THREAD)
        .ok()?
        .first_set()?;
    topology.node_of_cpu(usize::from(cpu))
}

/// Binds `region` to `node`: strictly (`MPOL_BIND`) if the kernel allows, else as the node's
/// preferred memory; reports why not otherwise.
fn bind(hwloc: Option<&hwlocality::Topology>, region: &[u8], node: usize) -> Binding {
    let unbound = |reason: String| Binding::Unbound { reason };
    let Some(hwloc) = hwloc else {
        return unbound("no hwloc topology (built by hand or by fallback)".into());
    };
    let supported = hwloc
        .feature_support()
        .memory_binding()
        .is_some_and(|s| s.set_area() && s.bind_policy());
    if !supported {
        return unbound("hwloc cannot bind a memory area to a node on this system".into());
    }
    if !hwloc.nodeset().iter_set().any(|n| usize::from(n) == node) {
        return unbound(format!("hwloc does not know numa node {node}"));
    }
    let mut set = NodeSet::new();
    set.set(node);
    let policy = MemoryBindingPolicy::Bind;
    let strict = hwloc.bind_memory_area(region, &set, policy, MemoryBindingFlags::STRICT);
    let Err(strict_error) = strict else {
        return Binding::Bound { node };
    };
    match hwloc.bind_memory_area(region, &set, policy, MemoryBindingFlags::empty()) {
        Ok(()) => {
            tracing::warn!(
                node,
                error = %strict_error,
                "strict numa binding refused; the arena prefers the node, but the kernel may \
                 place pages elsewhere when the node is full"
            );
            Binding::Bound { node }
        }
        Err(e) => unbound(format!(
            "hwloc could not bind the memory to numa node {node}: {e} (strict: {strict_error}); \
             in a container, allow the mbind syscall (CAP_SYS_NICE / seccomp)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-node topology without hwloc: arenas on it only mmap, so Miri can run them.
    fn plain() -> Topology {
        Topology::fallback()
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls hwloc")]
    fn binds_to_node_zero_on_this_machine() {
        let topology = Topology::detect().unwrap();
        let arena = Arena::new(&topology, Some(0), 1 << 20).unwrap();
        eprintln!(
            "binding: {}, placement: {}",
            arena.binding(),
            arena.verify_placement()
        );
        match arena.binding() {
            Binding::Bound { node } => {
                assert_eq!(*node, 0);
                assert_eq!(arena.node(), Some(0));
            }
            Binding::Unbound { reason } => {
                assert!(!reason.is_empty());
                assert_eq!(arena.node(), None);
            }
        }
        let placement = arena.verify_placement();
        assert!(
            matches!(placement, Placement::OnNode(0) | Placement::Unknown(_)),
            "{placement:?}"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls hwloc")]
    fn default_node_is_the_callers() {
        let topology = Topology::detect().unwrap();
        let cpu = *topology.allowed_cpus().last().unwrap();
        assert!(core_affinity::set_for_current(core_affinity::CoreId {
            id: cpu
        }));
        let arena = Arena::new(&topology, None, 4096).unwrap();
        assert_eq!(Some(arena.target), topology.node_of_cpu(cpu));
    }

    #[test]
    fn unknown_node_is_an_error() {
        let node = |os_index, cpus: &[usize]| crate::topology::NumaNode {
            os_index,
            memory_bytes: None,
            cpus: cpus.to_vec(),
        };
        let cpu = |id, node| crate::topology::Cpu {
            id,
            core: id,
            node: Some(node),
            l3: None,
        };
        let two_nodes = Topology::from_parts(
            vec![node(0, &[0]), node(1, &[1])],
            vec![cpu(0, 0), cpu(1, 1)],
            vec![0, 1],
        )
        .unwrap();
        let err = Arena::new(&two_nodes, Some(7), 4096).unwrap_err();
        assert!(matches!(err, ArenaError::UnknownNode { node: 7, .. }));
        assert_eq!(
            err.to_string(),
            "numa node 7 does not exist on this machine (nodes 0-1); pick one of those"
        );
        // A hand-built topology has no hwloc handle: node 1 exists, but cannot be bound.
        let arena = Arena::new(&two_nodes, Some(1), 4096).unwrap();
        assert_eq!(arena.target, 1);
        assert_eq!(arena.node(), None);
    }

    #[test]
    #[cfg_attr(miri, ignore = "calls hwloc and faults in 64 MiB")]
    fn first_touch_of_64_mib() {
        let topology = Topology::detect_or_fallback();
        let arena = Arena::new(&topology, None, 64 << 20).unwrap();
        assert_eq!(arena.capacity(), 64 << 20);
        let pages = arena
            .carve_with((64 << 20) / 4096, |_| [0u8; 4096])
            .unwrap();
        assert!(pages.iter().all(|p| p[0] == 0 && p[4095] == 0));
        pages.last_mut().unwrap()[4095] = 1;
        assert_eq!(arena.free(), 0);
    }

    #[test]
    fn without_hwloc_the_arena_is_unbound() {
        let arena = Arena::new(&plain(), None, 8192).unwrap();
        assert!(matches!(arena.binding(), Binding::Unbound { reason } if reason.contains("hwloc")));
        assert_eq!(arena.node(), None);
        assert!(matches!(arena.verify_placement(), Placement::Unknown(_)));
    }

    #[test]
    fn carving_respects_alignment() {
        #[repr(align(64))]
        struct Line([u8; 64]);

        let arena = Arena::new(&plain(), None, 4096).unwrap();
        let bytes = arena.carve_with(3, |i| i as u8).unwrap();
        assert_eq!(bytes, &[0, 1, 2]);
        assert_eq!(arena.used(), 3);
        // Every carve starts on a line of its own.
        let words = arena.carve_with(2, |i| i as u64 + 10).unwrap();
        assert_eq!(words.as_ptr().addr() % CACHE_LINE, 0);
        assert_eq!(arena.used(), 64 + 16);
        let lines = arena.carve_with(2, |i| Line([i as u8; 64])).unwrap();
        assert_eq!(lines.as_ptr().addr() % 64, 0);
        assert_eq!(arena.used(), 128 + 128);
        // Earlier carves are intact and disjoint from later ones.
        bytes[2] = 9;
        words[1] = 99;
        assert_eq!(bytes, &[0, 1, 9]);
        assert_eq!(words, &[10, 99]);
        assert!(lines.iter().enumerate().all(|(i, l)| l.0 == [i as u8; 64]));
    }

    #[test]
    fn alignment_above_the_page_size() {
        #[repr(align(8192))]
        struct Huge(u8);

        let arena = Arena::new(&plain(), None, 4 * 8192).unwrap();
        arena.carve_with(1, |_| 1u8).unwrap();
        let huge = arena.carve_with(1, |_| Huge(5)).unwrap();
        assert_eq!(huge.as_ptr().addr() % 8192, 0);
        assert_eq!(huge[0].0, 5);
    }

    #[test]
    fn exhaustion_is_reported_and_changes_nothing() {
        let arena = Arena::new(&plain(), None, 100).unwrap();
        arena.carve_with(2, |_| 0u64).unwrap();
        let err = arena.carve_with(5, |_| 0u64).unwrap_err();
        assert!(matches!(
            err,
            ArenaError::Exhausted {
                requested: 40,
                free: 84
            }
        ));
        assert_eq!(
            err.to_string(),
            "arena exhausted: 40 bytes requested but 84 bytes free; raise the arena size in the \
             config"
        );
        assert_eq!(arena.used(), 16);
        // Overflowing sizes are exhaustion too, not a panic.
        let err = arena.carve_with(usize::MAX, |_| 0u64).unwrap_err();
        assert!(matches!(
            err,
            ArenaError::Exhausted {
                requested: usize::MAX,
                ..
            }
        ));
        // What is left after the next line boundary is still usable, exactly.
        assert_eq!(arena.carve_with(36, |i| i as u8).unwrap().len(), 36);
        assert_eq!(arena.free(), 0);
        assert!(arena.carve_with(1, |_| 0u8).is_err());
    }

    #[test]
    fn zero_sized_and_empty_carves_take_no_room() {
        let arena = Arena::new(&plain(), None, 64).unwrap();
        let n = if cfg!(miri) { 1_000 } else { 1_000_000 };
        let mut calls = 0;
        let units = arena.carve_with(n, |_| calls += 1).unwrap();
        assert_eq!(units.len(), n);
        assert_eq!(calls, n);
        assert!(arena.carve_with(0, |_| 0u64).unwrap().is_empty());
        assert_eq!(arena.used(), 0);
        // Even a zero-byte arena hands out zero-sized carves.
        let empty = Arena::new(&plain(), None, 0).unwrap();
        assert_eq!(empty.carve_with(3, |_| ()).unwrap().len(), 3);
        assert!(empty.carve_with(1, |_| 0u8).is_err());
        assert!(matches!(empty.verify_placement(), Placement::Unknown(_)));
    }

    #[test]
    fn accounting() {
        let arena = Arena::new(&plain(), None, 1024).unwrap();
        assert_eq!(
            (arena.capacity(), arena.used(), arena.free()),
            (1024, 0, 1024)
        );
        arena.carve_with(1, |_| 0u8).unwrap();
        arena.carve_with(1, |_| 0u32).unwrap(); // 63 bytes of padding: a line of its own
        assert_eq!((arena.used(), arena.free()), (68, 956));
    }

    #[test]
    fn init_may_carve_from_the_same_arena() {
        let arena = Arena::new(&plain(), None, 1024).unwrap();
        let outer = arena
            .carve_with(2, |i| {
                let inner = arena.carve_with(2, |j| (i * 10 + j) as u64).unwrap();
                inner[0] + inner[1]
            })
            .unwrap();
        assert_eq!(outer, &[1, 21]);
        // the outer carve reserved a line first; each inner one starts on a new line
        assert_eq!(arena.used(), 64 + 64 + 16);
    }

    #[test]
    fn a_panicking_init_leaks_and_leaves_the_arena_usable() {
        /// Counts its drops.
        struct Noisy<'a>(&'a Cell<usize>);
        impl Drop for Noisy<'_> {
            fn drop(&mut self) {
                self.0.set(self.0.get() + 1);
            }
        }

        let drops = Cell::new(0);
        let arena = Arena::new(&plain(), None, 1024).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            arena.carve_with(4, |i| {
                assert!(i < 2, "boom");
                Noisy(&drops)
            })
        }));
        assert!(result.is_err());
        // The two written values are leaked, not dropped; their room stays used.
        assert_eq!(drops.get(), 0);
        assert_eq!(arena.used(), 4 * size_of::<Noisy<'_>>());
        let next = arena.carve_with(1, |_| 5u8).unwrap();
        assert_eq!(next, &[5]);
        // Carved values are never dropped by the arena either.
        arena.carve_with(3, |_| Noisy(&drops)).unwrap();
        drop(arena);
        assert_eq!(drops.get(), 0);
    }

    #[test]
    fn the_arena_moves_between_threads() {
        fn send<T: Send>(_: &T) {}
        let arena = Arena::new(&plain(), None, 4096).unwrap();
        send(&arena);
        let arena = std::thread::spawn(move || {
            arena.carve_with(4, |i| i as u32).unwrap();
            arena
        })
        .join()
        .unwrap();
        assert_eq!(arena.used(), 16);
    }
}

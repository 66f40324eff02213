//! A bounded, wait-free single-producer single-consumer ring.
//!
//! [`ring`] returns a [`Producer`] and a [`Consumer`]. Each handle is `Send` but neither `Clone`
//! nor `Sync`, so the type system guarantees one writer and one reader. Every operation is a
//! bounded number of steps: no locks, no allocation, no syscall.
//!
//! Layout and protocol (the rtrb design):
//! - `head` (next slot to read, written only by the consumer) and `tail` (next slot to write,
//!   written only by the producer) live on separate 128-byte-padded lines, so the two cores never
//!   write the same line.
//! - Indices grow without wrapping modulo the capacity; a slot is `index & mask` of a power-of-two
//!   buffer at least `capacity` long. So `tail - head` is exactly the number of items, between
//!   `0` and `capacity`: a full ring is never confused with an empty one.
//! - Each side keeps a private copy of the other side's index and re-reads the shared one (an
//!   `Acquire` load) only when its copy says full (producer) or empty (consumer). Publishing is
//!   one `Release` store, once per item or once per batch.
//!
//! Items still in the ring when both handles are gone are dropped exactly once.
//!
//! ```
//! let (mut tx, mut rx) = dataplane::ring::ring::<String>(2);
//! tx.push("a".to_owned()).unwrap();
//! tx.push("b".to_owned()).unwrap();
//! assert!(tx.push("c".to_owned()).is_err()); // full: the value is handed back
//! assert_eq!(rx.pop().as_deref(), Some("a"));
//! assert_eq!(rx.len(), 1);
//! ```

use std::fmt;
use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

use crate::sync::{Arc, AtomicUsize, Ordering, UnsafeCell};

/// Creates a ring that holds at most `capacity` items.
///
/// The buffer is rounded up to a power of two so that a slot is found with a mask, but the ring
/// never holds more than `capacity` items.
///
/// # Panics
/// If `capacity` is 0, or so large that the rounded-up buffer would not fit in memory.
pub fn ring<T: Send>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    assert!(capacity > 0, "ring capacity must be at least 1");
    let len = capacity
        .checked_next_power_of_two()
        .filter(|len| *len <= isize::MAX as usize / std::mem::size_of::<T>().max(1))
        .expect("ring capacity too large for memory");
    // Zeroed, not merely uninitialised: writing every slot now faults its pages in here, so
    // the first lap of a busy-polling producer does not stall on page faults.
    let slots = (0..len)
        .map(|_| UnsafeCell::new(MaybeUninit::zeroed()))
        .collect();
    let shared = Arc::new(Shared {
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
        slots,
        mask: len - 1,
        capacity,
    });
    let producer = Producer {
        slots: Slots::of(&shared),
        shared: Arc::clone(&shared),
        tail: 0,
        cached_head: 0,
    };
    let consumer = Consumer {
        slots: Slots::of(&shared),
        shared,
        head: 0,
        cached_tail: 0,
    };
    (producer, consumer)
}

/// The state both handles point to.
struct Shared<T> {
    /// Index of the next item to pop. Written only by the consumer.
    head: CachePadded<AtomicUsize>,
    /// Index of the next slot to fill. Written only by the producer.
    tail: CachePadded<AtomicUsize>,
    /// `mask + 1` slots; slot `i & mask` is initialised iff `head <= i < tail`.
    slots: Box<[UnsafeCell<MaybeUninit<T>>]>,
    mask: usize,
    capacity: usize,
}

impl<T> Shared<T> {
    /// The slot that index `pos` maps to.
    #[inline(always)]
    fn slot(&self, pos: usize) -> &UnsafeCell<MaybeUninit<T>> {
        let i = pos & self.mask;
        debug_assert!(i < self.slots.len());
        // `slots.len() == mask + 1`, set in `ring` and never changed.
        // SAFETY: so `pos & mask` is in bounds.
        unsafe { self.slots.get_unchecked(i) }
    }
}

/// A handle's own copy of where the slots are, so the hot path reads its own line only
/// instead of chasing the `Arc` to the shared struct (see benches/ring.rs).
struct Slots<T> {
    first: std::ptr::NonNull<UnsafeCell<MaybeUninit<T>>>,
    mask: usize,
    capacity: usize,
}

impl<T> Slots<T> {
    fn of(shared: &Shared<T>) -> Self {
        Self {
            // from the whole slice, so the pointer may reach every slot
            first: std::ptr::NonNull::from(&*shared.slots).cast(),
            mask: shared.mask,
            capacity: shared.capacity,
        }
    }

    /// The slot that index `pos` maps to.
    #[inline(always)]
    fn slot(&self, pos: usize) -> &UnsafeCell<MaybeUninit<T>> {
        // `first` points at the first of `mask + 1` slots of the shared buffer, which the
        // handle holding this view keeps alive through its `Arc` (the buffer is never
        // reallocated). Slots are only accessed through `UnsafeCell`, so a shared reference
        // to one is fine.
        // SAFETY: hence `first + (pos & mask)` is a live, in-bounds slot.
        unsafe { self.first.add(pos & self.mask).as_ref() }
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        // Both handles are gone and `Arc`'s drop synchronised with their last writes, so
        // relaxed loads see the final indices.
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Relaxed);
        let mut pos = head;
        while pos != tail {
            self.slot(pos).with_mut(|p| {
                // `head <= pos < tail`: the slot holds an initialised item that no one else
                // can reach any more, and each index is visited once.
                // SAFETY: so the item is initialised and dropped exactly once.
                unsafe { (*p).assume_init_drop() }
            });
            pos = pos.wrapping_add(1);
        }
    }
}

/// The error of [`Producer::push`]: the ring was full. The value is handed back.
#[derive(Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum PushError<T> {
    /// The ring held `capacity` items; here is the value that did not fit.
    Full(T),
}

impl<T> PushError<T> {
    /// Returns the value that was not pushed.
    pub fn into_inner(self) -> T {
        match self {
            PushError::Full(value) => value,
        }
    }
}

impl<T> fmt::Debug for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Full(..)")
    }
}

impl<T> fmt::Display for PushError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is full: retry after the consumer catches up")
    }
}

impl<T> std::error::Error for PushError<T> {}

/// The writing end of a ring. Exactly one exists per ring.
pub struct Producer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// Our copy of `shared.tail`; we are its only writer.
    tail: usize,
    /// The consumer's `head` as last read; `head` only grows, so this is a lower bound.
    cached_head: usize,
}

// SAFETY: the producer only writes slots in `[tail, head + capacity)`, which the consumer never
// reads until `tail` is published with `Release`; moving the handle to another thread keeps it
// the only writer of `tail`. Items cross threads, hence `T: Send`.
unsafe impl<T: Send> Send for Producer<T> {}

impl<T> Producer<T> {
    /// Pushes `value`, or hands it back in [`PushError::Full`] if the ring is full.
    #[inline]
    pub fn push(&mut self, value: T) -> Result<(), PushError<T>> {
        if self.free_slots_cached() == 0 && self.refresh_free_slots() == 0 {
            return Err(PushError::Full(value));
        }
        self.write(self.tail, value);
        self.tail = self.tail.wrapping_add(1);
        self.shared.tail.store(self.tail, Ordering::Release);
        Ok(())
    }

    /// Pushes items from `iter` until it ends or the ring is full, publishing them all with one
    /// store. Returns how many were pushed. Items the ring had no room for are not taken from
    /// the iterator, so pass `iter.by_ref()` to keep them.
    ///
    /// If the iterator panics, the items pushed before the panic are published.
    pub fn push_iter<I: IntoIterator<Item = T>>(&mut self, iter: I) -> usize {
        let free = self.refresh_free_slots();
        let mut batch = Publish {
            producer: self,
            written: 0,
        };
        for value in iter.into_iter().take(free) {
            let pos = batch.producer.tail.wrapping_add(batch.written);
            batch.producer.write(pos, value);
            batch.written += 1;
        }
        batch.written
    }

    /// Copies as many items of `items` as fit, in order, publishing them with one store.
    /// Returns how many were pushed.
    ///
    /// The items go in with at most two `memcpy`s (the free run may wrap around the end of
    /// the buffer); see benches/ring.rs, batches of 64.
    pub fn push_slice(&mut self, items: &[T]) -> usize
    where
        T: Copy,
    {
        if cfg!(loom) {
            // loom's cells are not laid out like `T`: go through them one by one
            return self.push_iter(items.iter().copied());
        }
        let free = match self.free_slots_cached() {
            cached if cached >= items.len() => cached,
            _ => self.refresh_free_slots(),
        };
        let n = items.len().min(free);
        if n == 0 {
            return 0;
        }
        let start = self.tail & self.slots.mask;
        let first = n.min(self.slots.mask + 1 - start);
        let base = self.slots.first.as_ptr().cast::<T>();
        // `UnsafeCell<MaybeUninit<T>>` has the layout of `T` (both wrappers are
        // `repr(transparent)`), and `first` points at the start of the `mask + 1` slots, with
        // provenance over all of them (`Slots::of`). The `n` slots from `tail` on are free
        // (`n <= free`, counted against the consumer's head seen with Acquire), so the consumer
        // does not read them before the `Release` store below; they are written through the
        // cells' interior mutability. `start + first <= mask + 1` and `n - first <= start`,
        // so both copies stay in the buffer, and `items` cannot overlap it (it is borrowed
        // shared while the buffer is only reachable through this handle and the consumer).
        // SAFETY: so both copies write only free, in-bounds slots from a disjoint source.
        unsafe {
            std::ptr::copy_nonoverlapping(items.as_ptr(), base.add(start), first);
            std::ptr::copy_nonoverlapping(items.as_ptr().add(first), base, n - first);
        }
        self.tail = self.tail.wrapping_add(n);
        self.shared.tail.store(self.tail, Ordering::Release);
        n
    }

    /// The number of items the ring can take right now (re-reads the consumer's index).
    pub fn slots(&mut self) -> usize {
        self.refresh_free_slots()
    }

    /// The number of items in the ring. Exact when read, but the consumer may take more
    /// at any moment.
    pub fn len(&self) -> usize {
        self.tail
            .wrapping_sub(self.shared.head.load(Ordering::Acquire))
    }

    /// True when the ring holds no item.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the ring holds `capacity` items, so `push` would fail.
    pub fn is_full(&self) -> bool {
        self.len() == self.shared.capacity
    }

    /// The most items the ring can hold.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// True when the consumer has been dropped: nothing pushed will ever be read.
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) == 1
    }

    #[inline(always)]
    fn free_slots_cached(&self) -> usize {
        self.slots.capacity - self.tail.wrapping_sub(self.cached_head)
    }

    #[inline]
    fn refresh_free_slots(&mut self) -> usize {
        // Acquire: the consumer's reads of the slots below `head` happen before we reuse them.
        self.cached_head = self.shared.head.load(Ordering::Acquire);
        self.free_slots_cached()
    }

    /// Writes `value` into the slot of index `pos` without publishing it.
    #[inline(always)]
    fn write(&self, pos: usize, value: T) {
        debug_assert!(pos.wrapping_sub(self.cached_head) < self.slots.capacity);
        self.slots.slot(pos).with_mut(|p| {
            // Callers only pass `tail <= pos < cached_head + capacity` (checked against the
            // free count just before): the consumer finished with the slot (its `head` passed
            // it, seen with Acquire) and will not read it before we publish.
            // SAFETY: so the slot is empty and only this handle writes it.
            unsafe { p.write(MaybeUninit::new(value)) }
        });
    }
}

/// Publishes `written` items starting at the producer's tail when dropped, even on panic.
struct Publish<'a, T> {
    producer: &'a mut Producer<T>,
    written: usize,
}

impl<T> Drop for Publish<'_, T> {
    fn drop(&mut self) {
        if self.written > 0 {
            let p = &mut *self.producer;
            p.tail = p.tail.wrapping_add(self.written);
            p.shared.tail.store(p.tail, Ordering::Release);
        }
    }
}

impl<T> fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Producer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

/// The reading end of a ring. Exactly one exists per ring.
pub struct Consumer<T> {
    shared: Arc<Shared<T>>,
    slots: Slots<T>,
    /// Our copy of `shared.head`; we are its only writer.
    head: usize,
    /// The producer's `tail` as last read; `tail` only grows, so this is a lower bound.
    cached_tail: usize,
}

// SAFETY: the consumer only reads slots in `[head, tail)`, published by the producer with
// `Release` and seen with `Acquire`; moving the handle keeps it the only writer of `head`.
// Items cross threads, hence `T: Send`.
unsafe impl<T: Send> Send for Consumer<T> {}

impl<T> Consumer<T> {
    /// Takes the oldest item, or `None` if the ring is empty.
    #[inline]
    pub fn pop(&mut self) -> Option<T> {
        if self.available_cached() == 0 && self.refresh_available() == 0 {
            return None;
        }
        let value = self.read(self.head);
        self.head = self.head.wrapping_add(1);
        self.shared.head.store(self.head, Ordering::Release);
        Some(value)
    }

    /// A reference to the oldest item without taking it, or `None` if the ring is empty.
    pub fn peek(&mut self) -> Option<&T> {
        if self.available_cached() == 0 && self.refresh_available() == 0 {
            return None;
        }
        let slot = self.slots.slot(self.head);
        // The producer will not overwrite the slot until we advance `head`, which needs
        // `&mut self` and so ends this borrow.
        // SAFETY: `head < tail`, so the slot is initialised and stays so while borrowed.
        Some(slot.with(|p| unsafe { (*p).assume_init_ref() }))
    }

    /// Takes up to `max` items, oldest first, handing each to `f`, then frees their slots with
    /// one store. Returns how many were taken.
    ///
    /// If `f` panics, the items taken before the panic (and the one being handled) are gone from
    /// the ring; none is dropped twice.
    pub fn pop_batch(&mut self, max: usize, mut f: impl FnMut(T)) -> usize {
        let n = self.refresh_available().min(max);
        let mut batch = Release {
            consumer: self,
            taken: 0,
        };
        while batch.taken < n {
            let pos = batch.consumer.head.wrapping_add(batch.taken);
            let value = batch.consumer.read(pos);
            batch.taken += 1;
            f(value);
        }
        n
    }

    /// The number of items in the ring. Exact when read, but the producer may add more at any
    /// moment.
    pub fn len(&self) -> usize {
        self.shared
            .tail
            .load(Ordering::Acquire)
            .wrapping_sub(self.head)
    }

    /// True when the ring holds no item, so `pop` would return `None`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True when the ring holds `capacity` items.
    pub fn is_full(&self) -> bool {
        self.len() == self.shared.capacity
    }

    /// The most items the ring can hold.
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// True when the producer has been dropped: once empty, the ring stays empty.
    pub fn is_abandoned(&self) -> bool {
        Arc::strong_count(&self.shared) == 1
    }

    #[inline(always)]
    fn available_cached(&self) -> usize {
        self.cached_tail.wrapping_sub(self.head)
    }

    #[inline]
    fn refresh_available(&mut self) -> usize {
        // Acquire: the producer's writes of the slots below `tail` happen before we read them.
        self.cached_tail = self.shared.tail.load(Ordering::Acquire);
        self.available_cached()
    }

    /// Moves the item at index `pos` out of its slot without freeing the slot.
    #[inline(always)]
    fn read(&self, pos: usize) -> T {
        debug_assert!(self.cached_tail.wrapping_sub(pos) > 0);
        self.slots.slot(pos).with(|p| {
            // Callers only pass `head <= pos < cached_tail`: the producer initialised the slot
            // and published it (seen with Acquire), and callers advance `head` past `pos`
            // before anyone could read it again.
            // SAFETY: so the item is initialised and moved out exactly once.
            unsafe { (*p).assume_init_read() }
        })
    }
}

/// Frees `taken` slots starting at the consumer's head when dropped, even on panic.
struct Release<'a, T> {
    consumer: &'a mut Consumer<T>,
    taken: usize,
}

impl<T> Drop for Release<'_, T> {
    fn drop(&mut self) {
        if self.taken > 0 {
            let c = &mut *self.consumer;
            c.head = c.head.wrapping_add(self.taken);
            c.shared.head.store(c.head, Ordering::Release);
        }
    }
}

impl<T> fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Consumer")
            .field("capacity", &self.capacity())
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomic;

    /// Counts its drops, to prove each item is dropped exactly once.
    struct Counted<'a>(&'a StdAtomic);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    #[test]
    fn fifo_order_and_full_hands_value_back() {
        let (mut tx, mut rx) = ring::<u32>(3);
        assert_eq!(tx.capacity(), 3);
        for i in 0..3 {
            assert_eq!(tx.push(i), Ok(()));
        }
        assert_eq!(tx.push(9), Err(PushError::Full(9)));
        assert_eq!(rx.pop(), Some(0));
        assert_eq!(tx.push(3), Ok(()));
        assert_eq!(
            (rx.pop(), rx.pop(), rx.pop(), rx.pop()),
            (Some(1), Some(2), Some(3), None)
        );
    }

    #[test]
    fn len_is_exact_at_the_boundaries() {
        let (mut tx, mut rx) = ring::<u8>(4);
        assert!(tx.is_empty() && rx.is_empty() && !tx.is_full() && !rx.is_full());
        for i in 0..4 {
            tx.push(i).unwrap();
        }
        assert_eq!((tx.len(), rx.len()), (4, 4));
        assert!(tx.is_full() && rx.is_full() && !tx.is_empty() && !rx.is_empty());
        assert_eq!(tx.slots(), 0);
        rx.pop();
        assert_eq!((tx.len(), rx.len(), tx.slots()), (3, 3, 1));
    }

    #[test]
    fn wraps_around_many_times() {
        let (mut tx, mut rx) = ring::<usize>(5);
        let rounds = if cfg!(miri) { 50 } else { 10_000 };
        for i in 0..rounds {
            tx.push(i).unwrap();
            tx.push(i + 1).unwrap();
            assert_eq!(rx.pop(), Some(i));
            assert_eq!(rx.pop(), Some(i + 1));
        }
        assert!(rx.is_empty());
    }

    #[test]
    fn peek_does_not_consume() {
        let (mut tx, mut rx) = ring::<String>(2);
        assert!(rx.peek().is_none());
        tx.push("x".into()).unwrap();
        assert_eq!(rx.peek().map(String::as_str), Some("x"));
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.pop().as_deref(), Some("x"));
    }

    #[test]
    fn items_left_are_dropped_exactly_once() {
        let drops = StdAtomic::new(0);
        {
            let (mut tx, mut rx) = ring(4);
            for _ in 0..4 {
                assert!(tx.push(Counted(&drops)).is_ok());
            }
            drop(rx.pop());
            assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 1);
            drop(tx);
            assert!(rx.is_abandoned());
        }
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[test]
    fn batches_publish_what_fits() {
        let (mut tx, mut rx) = ring::<u32>(5);
        assert_eq!(tx.push_slice(&[1, 2, 3]), 3);
        let mut rest = [4, 5, 6, 7].into_iter();
        assert_eq!(tx.push_iter(rest.by_ref()), 2);
        assert_eq!(
            rest.next(),
            Some(6),
            "items that did not fit stay in the iterator"
        );
        let mut got = Vec::new();
        assert_eq!(rx.pop_batch(4, |v| got.push(v)), 4);
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(tx.push_slice(&[8, 9, 10, 11, 12]), 4);
        assert_eq!(rx.pop_batch(usize::MAX, |v| got.push(v)), 5);
        assert_eq!(got, [1, 2, 3, 4, 5, 8, 9, 10, 11]);
        assert_eq!(rx.pop_batch(8, |_| unreachable!()), 0);
    }

    #[test]
    fn panic_in_pop_batch_neither_leaks_nor_double_drops() {
        let drops = StdAtomic::new(0);
        let (mut tx, mut rx) = ring(4);
        for _ in 0..4 {
            assert!(tx.push(Counted(&drops)).is_ok());
        }
        let mut seen = 0;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rx.pop_batch(4, |item| {
                seen += 1;
                if seen == 2 {
                    panic!("consumer bug");
                }
                drop(item);
            })
        }));
        assert!(result.is_err());
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 2);
        assert_eq!(rx.len(), 2);
        drop((tx, rx));
        assert_eq!(drops.load(std::sync::atomic::Ordering::Relaxed), 4);
    }

    #[test]
    fn panic_in_push_iter_publishes_what_was_written() {
        let (mut tx, mut rx) = ring::<String>(8);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            tx.push_iter((0..8).map(|i| {
                assert!(i < 3, "producer bug");
                i.to_string()
            }))
        }));
        assert!(result.is_err());
        let mut got = Vec::new();
        rx.pop_batch(8, |s| got.push(s));
        assert_eq!(got, ["0", "1", "2"]);
    }

    #[test]
    fn capacity_one_and_non_power_of_two() {
        let (mut tx, mut rx) = ring::<u8>(1);
        tx.push(1).unwrap();
        assert!(tx.is_full());
        assert!(tx.push(2).is_err());
        assert_eq!(rx.pop(), Some(1));
        let (tx, _rx) = ring::<u8>(1000);
        assert_eq!(tx.capacity(), 1000);
    }

    #[test]
    #[should_panic(expected = "at least 1")]
    fn zero_capacity_is_refused() {
        let _ = ring::<u8>(0);
    }

    #[test]
    fn zero_sized_items() {
        let (mut tx, mut rx) = ring::<()>(3);
        assert_eq!(tx.push_iter(std::iter::repeat(())), 3);
        assert_eq!(rx.pop_batch(10, |()| {}), 3);
    }

    #[test]
    fn transfers_across_threads_in_order() {
        let n: u64 = if cfg!(miri) { 200 } else { 200_000 };
        let (mut tx, mut rx) = ring::<Box<u64>>(16);
        let producer = std::thread::spawn(move || {
            let mut next = 0;
            while next < n {
                if next % 3 == 0 {
                    let pushed = tx.push_iter((next..n.min(next + 5)).map(Box::new));
                    next += pushed as u64;
                } else if tx.push(Box::new(next)).is_ok() {
                    next += 1;
                }
                if next % 7 == 0 {
                    std::thread::yield_now();
                }
            }
        });
        let mut expect = 0;
        while expect < n {
            if expect % 2 == 0 {
                rx.pop_batch(4, |v| {
                    assert_eq!(*v, expect);
                    expect += 1;
                });
            } else if let Some(v) = rx.pop() {
                assert_eq!(*v, expect);
                expect += 1;
            } else {
                std::thread::yield_now();
            }
        }
        producer.join().unwrap();
        assert!(rx.is_abandoned() && rx.is_empty());
    }
}

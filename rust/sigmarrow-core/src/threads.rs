//! The thread pools matches run on: one per thread count, started once and kept.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};

/// The pools started by this process (`pid`): a `fork()`ed child inherits the map but not
/// the threads, so it starts its own.
struct Pools {
    pid: u32,
    by_threads: HashMap<usize, Arc<rayon::ThreadPool>>,
}

/// A thread pool of `threads` threads, started once and kept for later calls.
pub(crate) fn thread_pool(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Option<Pools>> = Mutex::new(None);
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    if pools.as_ref().is_some_and(|p| p.pid != pid) {
        // Forked: dropping the parent's pools would wait on threads that are not here.
        std::mem::forget(pools.take());
    }
    let pools = pools.get_or_insert_with(|| Pools { pid, by_threads: HashMap::new() });
    if let Some(pool) = pools.by_threads.get(&threads) {
        return Ok(pool.clone());
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| Error::Threads { threads, reason: e.to_string() })?;
    Ok(pools.by_threads.entry(threads).or_insert(Arc::new(pool)).clone())
}

//! Freed memory given back to the system when the process goes to rest.
//!
//! Both allocators keep what is freed for reuse. mimalloc (every Rust allocation) purges freed
//! pages a second after they are freed, but only from within a later allocator call, and a
//! process at rest makes none: what the start freed (the encrypted file store's key
//! derivation alone is tens of MiB) would stay resident for good. glibc's malloc (GTK's
//! allocations in the tray app) keeps the free top of each arena. After the burst that ends in
//! rest (the engine has started, with its tray) this returns both, once.

pub fn release_free_memory() {
    // SAFETY: callable from any thread at any time; `true` forces the pending purges now.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: callable at any time; it only returns free pages of the heap to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

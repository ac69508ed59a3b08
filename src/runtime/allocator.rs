//! The allocator's one setting, made before the runtime's threads start.
//!
//! The only `unsafe` in the crate (tests/architecture.rs keeps it here): one `mallopt` call.
#![allow(unsafe_code)]

/// Use one glibc heap arena for the whole process.
///
/// glibc gives each thread that finds the heap busy an arena of its own (up to eight per core),
/// and memory freed into an arena is reused only by that arena. The operator's caches are filled
/// on the async workers while reconciles and admission reviews run on the blocking pool, so with
/// the default every arena keeps its own free pages. With one arena, 10,000 PolicyVersions peak
/// at 99 MiB instead of 114 MiB, with no measurable change in convergence or CPU (BENCHMARKS.md).
/// `MALLOC_ARENA_MAX` or a `glibc.malloc.arena_max` tunable in the environment wins.
pub fn use_one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() && !tunables.contains("arena_max") {
            // SAFETY: mallopt takes no pointers and only changes allocator parameters, under
            // glibc's own lock; M_ARENA_MAX is a documented parameter and 1 a valid value.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
    }
}

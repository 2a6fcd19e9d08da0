//! Size limits enforced by `apply`, so no replica ever holds state the API would refuse.

/// Limits on what one app may hold. They are part of the replicated logic: changing them changes
/// which commands are accepted, so they are constants, not configuration.
pub struct Limits;

impl Limits {
    /// Largest value of one config var, in bytes.
    pub const CONFIG_VALUE_BYTES: usize = 32 * 1024;
    /// Largest total size of an app's config (keys and values), in bytes.
    pub const CONFIG_TOTAL_BYTES: usize = 256 * 1024;
    /// Most instances of one process type.
    pub const MAX_QUANTITY: u32 = 100;
    /// Smallest and largest memory limit of an instance, in bytes.
    pub const MIN_MEMORY_BYTES: u64 = 16 * 1024 * 1024;
    pub const MAX_MEMORY_BYTES: u64 = 64 * 1024 * 1024 * 1024;
    /// Smallest and largest CPU limit of an instance, in thousandths of a core.
    pub const MIN_CPU_MILLIS: u32 = 10;
    pub const MAX_CPU_MILLIS: u32 = 64_000;
    /// Most process types in a release, and most arguments in one process command.
    pub const MAX_PROCESSES: usize = 32;
    pub const MAX_ARGS: usize = 256;
    /// Longest image reference, in bytes.
    pub const MAX_REFERENCE_BYTES: usize = 512;
    /// Most custom domains of one app.
    pub const MAX_DOMAINS: usize = 100;
    /// Longest health check path, in bytes, and the range of its timeout in seconds.
    pub const MAX_HEALTH_PATH_BYTES: usize = 1024;
    pub const HEALTH_TIMEOUT_SECS: std::ops::RangeInclusive<u32> = 1..=600;
}

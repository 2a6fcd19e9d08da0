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
}

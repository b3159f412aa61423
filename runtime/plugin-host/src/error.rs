//! What can go wrong when loading or calling a plugin, each with a reason callers put into
//! the owning object's status.

use crate::world::World;

/// A plugin failure. `to_string()` is the message for a status condition; [`reason`] the
/// condition's machine-readable reason.
///
/// [`reason`]: PluginError::reason
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The bytes are not a WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Corrupt(String),

    /// The component does not export the declared world at a compatible version.
    #[error("wrong world: {0}")]
    WrongWorld(String),

    /// The component imports interfaces its world does not grant.
    #[error(
        "forbidden import: the component imports {}, which the {world} world does not grant (it may import {})",
        .imports.join(", "), .granted.join(", ")
    )]
    ForbiddenImport { world: World, imports: Vec<String>, granted: Vec<String> },

    /// Linking or instantiation failed (an import of the wrong type or version, a start
    /// function that failed, the pool exhausted).
    #[error("instantiation failed: {0}")]
    Instantiate(String),

    /// The plugin refused its configuration; the message is the plugin's own.
    #[error("configuration rejected by the plugin: {0}")]
    ConfigRejected(String),

    /// The plugin ran and reported an error of its own for this call.
    #[error("the plugin reported an error: {0}")]
    Failed(String),

    /// The plugin trapped: a panic, `unreachable`, an out-of-bounds access, a division by
    /// zero. `message` is the trap; `detail` what the plugin printed before it (a Rust panic
    /// message) and a short backtrace.
    #[error("the plugin trapped: {message}{}", .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Trap { message: String, detail: Option<String> },

    /// The plugin exhausted its wasm stack (unbounded recursion).
    #[error("the plugin exhausted its stack of {max_wasm_stack} bytes (unbounded recursion?)")]
    StackOverflow { max_wasm_stack: usize },

    /// The call ran past its deadline and was interrupted.
    #[error("the plugin did not finish within its deadline of {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },

    /// The plugin tried to grow a memory or table beyond its limit, or to create more
    /// instances, tables or memories than allowed.
    #[error("the plugin exceeded its {what} limit of {limit}{}", .requested.map(|r| format!(" (asked for {r})")).unwrap_or_default())]
    MemoryLimit { what: &'static str, limit: u64, requested: Option<u64> },

    /// The result is larger than the call's output limit.
    #[error("the plugin's result is {size} bytes, over the output limit of {limit} bytes")]
    OutputTooLarge { size: u64, limit: u64 },

    /// The result does not satisfy the world's contract (wrong length, a score out of range,
    /// a cluster that was not in the input, a manifest that is not a JSON object).
    #[error("the plugin returned an invalid result: {0}")]
    InvalidOutput(String),

    /// A plugin is used through the API of another world.
    #[error("plugin {plugin} implements {actual}, not {expected}")]
    WorldMismatch { plugin: String, expected: World, actual: World },

    /// A failure of the host itself (the compilation cache, a panic in host code); not the
    /// plugin's fault.
    #[error("plugin host error: {0}")]
    Host(String),
}

impl PluginError {
    /// A CamelCase reason for a status condition.
    pub fn reason(&self) -> &'static str {
        match self {
            PluginError::Corrupt(_) => "PluginCorrupt",
            PluginError::WrongWorld(_) => "PluginWrongWorld",
            PluginError::ForbiddenImport { .. } => "PluginForbiddenImport",
            PluginError::Instantiate(_) => "PluginInstantiateFailed",
            PluginError::ConfigRejected(_) => "PluginConfigRejected",
            PluginError::Failed(_) => "PluginFailed",
            PluginError::Trap { .. } => "PluginTrapped",
            PluginError::StackOverflow { .. } => "PluginStackOverflow",
            PluginError::Timeout { .. } => "PluginTimeout",
            PluginError::MemoryLimit { .. } => "PluginMemoryLimit",
            PluginError::OutputTooLarge { .. } => "PluginOutputTooLarge",
            PluginError::InvalidOutput(_) => "PluginInvalidOutput",
            PluginError::WorldMismatch { .. } => "PluginWorldMismatch",
            PluginError::Host(_) => "PluginHostError",
        }
    }

    /// Whether the failure is the plugin's behaviour at run time (as opposed to a component
    /// or a configuration that is wrong before any call): what a failure policy of `Ignore`
    /// skips.
    pub fn is_runtime(&self) -> bool {
        matches!(
            self,
            PluginError::Failed(_)
                | PluginError::Trap { .. }
                | PluginError::StackOverflow { .. }
                | PluginError::Timeout { .. }
                | PluginError::MemoryLimit { .. }
                | PluginError::OutputTooLarge { .. }
                | PluginError::InvalidOutput(_)
        )
    }
}

//! Errors of the model crate.

/// A message that is not a valid sample or event, or a value that cannot be encoded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message could not be decoded into a sample or event.
    #[error("decode error: {0}")]
    Decode(String),
    /// A value could not be encoded.
    #[error("encode error: {0}")]
    Encode(#[source] serde_json::Error),
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
